ALTER TABLE jobs ALTER COLUMN provider_metadata TYPE jsonb USING provider_metadata::jsonb;
