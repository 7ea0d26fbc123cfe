-- The evidence behind each check's error-rate judgement: the error count k (requests is n), the Wilson
-- interval at the policy's confidence, and the time of the newest sample (freshness), each beside its raw text.
ALTER TABLE canary_metrics ADD COLUMN errors DOUBLE;
ALTER TABLE canary_metrics ADD COLUMN raw_errors TEXT;
ALTER TABLE canary_metrics ADD COLUMN error_rate_lower DOUBLE;
ALTER TABLE canary_metrics ADD COLUMN error_rate_upper DOUBLE;
ALTER TABLE canary_metrics ADD COLUMN newest_sample_at DOUBLE;  -- Unix seconds
ALTER TABLE canary_metrics ADD COLUMN raw_newest TEXT;
