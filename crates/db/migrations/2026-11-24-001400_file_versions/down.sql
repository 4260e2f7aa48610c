ALTER TABLE folders DROP COLUMN tags;
ALTER TABLE folders DROP COLUMN access_info;
ALTER TABLE folders DROP COLUMN trashed_at;
ALTER TABLE folders DROP COLUMN description;
ALTER TABLE files DROP COLUMN access_info;
ALTER TABLE files DROP COLUMN trashed_at;
ALTER TABLE files DROP COLUMN description;
ALTER TABLE files DROP COLUMN last_version_id;
DROP TABLE file_versions;
