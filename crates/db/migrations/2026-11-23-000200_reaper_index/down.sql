DROP INDEX IF EXISTS job_items_reaper_idx;
