-- provider_metadata is stored once per job (it was copied onto every file of an import). A file created by
-- an import remembers its job, through which it reads the metadata.
ALTER TABLE jobs ADD COLUMN provider_metadata jsonb;
ALTER TABLE files ADD COLUMN import_job_id uuid;
UPDATE files f SET import_job_id = i.job_id
FROM job_items i JOIN jobs j ON j.id = i.job_id
WHERE i.file_id = f.id AND j.kind = 'import' AND j.tenant_id = f.tenant_id;
UPDATE jobs j SET provider_metadata = (
    SELECT f.provider_metadata FROM files f WHERE f.import_job_id = j.id AND f.provider_metadata IS NOT NULL LIMIT 1
)
WHERE j.kind = 'import';
ALTER TABLE files ADD CONSTRAINT files_tenant_import_job_fkey
    FOREIGN KEY (tenant_id, import_job_id) REFERENCES jobs (tenant_id, id);
ALTER TABLE files DROP COLUMN provider_metadata;
