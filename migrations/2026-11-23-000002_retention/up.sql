-- Retention: the TTL sweep finds ended jobs by when they ended.
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
