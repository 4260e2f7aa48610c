DROP TABLE import_export_formats;
DROP TABLE picker_sessions;
ALTER TABLE job_items ADD CONSTRAINT job_items_file_id_fkey FOREIGN KEY (file_id) REFERENCES files(id) NOT VALID;
DROP INDEX files_tenant_folder_idx;
ALTER TABLE files DROP CONSTRAINT files_folder_id_fkey;
DROP TABLE folders;
