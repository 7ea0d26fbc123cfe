ALTER TABLE canary_metrics DROP COLUMN raw_newest;
ALTER TABLE canary_metrics DROP COLUMN newest_sample_at;
ALTER TABLE canary_metrics DROP COLUMN error_rate_upper;
ALTER TABLE canary_metrics DROP COLUMN error_rate_lower;
ALTER TABLE canary_metrics DROP COLUMN raw_errors;
ALTER TABLE canary_metrics DROP COLUMN errors;
