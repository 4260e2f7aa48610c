ALTER TABLE files ADD COLUMN provider_metadata jsonb;
UPDATE files f SET provider_metadata = j.provider_metadata FROM jobs j WHERE j.id = f.import_job_id;
ALTER TABLE files DROP CONSTRAINT files_tenant_import_job_fkey;
ALTER TABLE files DROP COLUMN import_job_id;
ALTER TABLE jobs DROP COLUMN provider_metadata;
