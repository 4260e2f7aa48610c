ALTER TABLE job_items DROP COLUMN sync_action;
DROP TABLE sync_runs;
DROP TABLE library_entries;
ALTER TABLE libraries DROP COLUMN synced_account_id;
ALTER TABLE libraries DROP COLUMN page_token;
