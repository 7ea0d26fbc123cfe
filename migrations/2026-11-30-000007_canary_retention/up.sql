-- Retention for canaries: the sweep finds ended canaries by when they ended.
CREATE INDEX canaries_finished_at ON canaries (finished_at) WHERE finished_at IS NOT NULL;
