-- A row can only point at a parent of its own tenant: every reference to a tenant-owned row carries the
-- tenant, and the parent is unique on (tenant_id, id).
ALTER TABLE folders ADD CONSTRAINT folders_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE connections ADD CONSTRAINT connections_tenant_id_id_key UNIQUE (tenant_id, id);
ALTER TABLE jobs ADD CONSTRAINT jobs_tenant_id_id_key UNIQUE (tenant_id, id);

-- Existing rows: a nullable pointer at a missing or foreign parent is cleared; an item takes its job's tenant;
-- picker sessions of a foreign connection and formats of vanished files are dropped.
UPDATE files f SET folder_id = NULL
WHERE folder_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM folders d WHERE d.id = f.folder_id AND d.tenant_id = f.tenant_id);
UPDATE folders f SET parent_id = NULL
WHERE parent_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM folders p WHERE p.id = f.parent_id AND p.tenant_id = f.tenant_id);
UPDATE files f SET source_connection_id = NULL
WHERE source_connection_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM connections c WHERE c.id = f.source_connection_id AND c.tenant_id = f.tenant_id);
UPDATE job_items i SET tenant_id = j.tenant_id FROM jobs j WHERE j.id = i.job_id AND i.tenant_id <> j.tenant_id;
DELETE FROM picker_sessions s
WHERE NOT EXISTS (SELECT 1 FROM connections c WHERE c.id = s.connection_id AND c.tenant_id = s.tenant_id);
DELETE FROM import_export_formats x WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = x.file_id);

ALTER TABLE files DROP CONSTRAINT IF EXISTS files_folder_id_fkey;
ALTER TABLE files ADD CONSTRAINT files_tenant_folder_fkey
    FOREIGN KEY (tenant_id, folder_id) REFERENCES folders (tenant_id, id);
ALTER TABLE folders DROP CONSTRAINT IF EXISTS folders_parent_id_fkey;
ALTER TABLE folders ADD CONSTRAINT folders_tenant_parent_fkey
    FOREIGN KEY (tenant_id, parent_id) REFERENCES folders (tenant_id, id);
ALTER TABLE files DROP CONSTRAINT IF EXISTS files_source_connection_id_fkey;
ALTER TABLE files ADD CONSTRAINT files_tenant_source_connection_fkey
    FOREIGN KEY (tenant_id, source_connection_id) REFERENCES connections (tenant_id, id);
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_connection_id_fkey;
ALTER TABLE jobs ADD CONSTRAINT jobs_tenant_connection_fkey
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id);
ALTER TABLE job_items DROP CONSTRAINT IF EXISTS job_items_job_id_fkey;
ALTER TABLE job_items ADD CONSTRAINT job_items_tenant_job_fkey
    FOREIGN KEY (tenant_id, job_id) REFERENCES jobs (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE picker_sessions DROP CONSTRAINT IF EXISTS picker_sessions_connection_id_fkey;
ALTER TABLE picker_sessions ADD CONSTRAINT picker_sessions_tenant_connection_fkey
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE;
-- Formats belong to a placeholder file and go with it.
ALTER TABLE import_export_formats ADD CONSTRAINT import_export_formats_file_fkey
    FOREIGN KEY (file_id) REFERENCES files (id) ON DELETE CASCADE;
