-- The reaper looks for running items whose lease expired and pending items untouched for too long.
CREATE INDEX job_items_reaper_idx ON job_items (status, updated_at) WHERE status IN ('pending', 'running');
