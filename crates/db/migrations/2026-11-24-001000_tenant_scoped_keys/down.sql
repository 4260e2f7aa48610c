ALTER TABLE import_export_formats DROP CONSTRAINT import_export_formats_file_fkey;
ALTER TABLE picker_sessions DROP CONSTRAINT picker_sessions_tenant_connection_fkey;
ALTER TABLE picker_sessions ADD CONSTRAINT picker_sessions_connection_id_fkey
    FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE;
ALTER TABLE job_items DROP CONSTRAINT job_items_tenant_job_fkey;
ALTER TABLE job_items ADD CONSTRAINT job_items_job_id_fkey FOREIGN KEY (job_id) REFERENCES jobs (id) ON DELETE CASCADE;
ALTER TABLE jobs DROP CONSTRAINT jobs_tenant_connection_fkey;
ALTER TABLE jobs ADD CONSTRAINT jobs_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES connections (id);
ALTER TABLE files DROP CONSTRAINT files_tenant_source_connection_fkey;
ALTER TABLE files ADD CONSTRAINT files_source_connection_id_fkey
    FOREIGN KEY (source_connection_id) REFERENCES connections (id);
ALTER TABLE folders DROP CONSTRAINT folders_tenant_parent_fkey;
ALTER TABLE folders ADD CONSTRAINT folders_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES folders (id);
ALTER TABLE files DROP CONSTRAINT files_tenant_folder_fkey;
ALTER TABLE files ADD CONSTRAINT files_folder_id_fkey FOREIGN KEY (folder_id) REFERENCES folders (id) NOT VALID;
ALTER TABLE jobs DROP CONSTRAINT jobs_tenant_id_id_key;
ALTER TABLE connections DROP CONSTRAINT connections_tenant_id_id_key;
ALTER TABLE folders DROP CONSTRAINT folders_tenant_id_id_key;
