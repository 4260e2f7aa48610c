-- The store becomes a tree of items with versions: `folders` are its directories and `files` its file items
-- (their ids are the API's `img_…` ids). A file's content is its latest version; `files.blob_key`, `size_bytes`,
-- `sha256`, `md5` and `last_version_id` cache that version, written in the same transaction as the version row
-- while the file row is locked. Items also get a description, trash state and share settings.
CREATE TABLE file_versions (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    file_id         uuid NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    -- `internal` for uploads, `drive` for imports.
    provider        text NOT NULL,
    blob_key        text NOT NULL,
    name            text NOT NULL,
    mime_type       text,
    size_bytes      bigint NOT NULL,
    sha256          text,
    md5             text,
    -- Where the bytes came from (`internal`, `drive`) and, for Drive, the Drive file id.
    source          text NOT NULL,
    external_id     text,
    thumbnails      jsonb NOT NULL DEFAULT '[]',
    creator_id      text,
    application_id  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX file_versions_file_idx ON file_versions (file_id, created_at DESC, id);

ALTER TABLE files ADD COLUMN last_version_id uuid REFERENCES file_versions(id) ON DELETE SET NULL;
ALTER TABLE files ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN trashed_at timestamptz;
ALTER TABLE files ADD COLUMN access_info jsonb;
ALTER TABLE folders ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE folders ADD COLUMN trashed_at timestamptz;
ALTER TABLE folders ADD COLUMN access_info jsonb;
ALTER TABLE folders ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

-- Every file that has content gets its first version (same id as the file: it names the same bytes).
INSERT INTO file_versions (id, tenant_id, file_id, provider, blob_key, name, mime_type, size_bytes, sha256, md5,
                           source, external_id, created_at)
SELECT f.id, f.tenant_id, f.id,
       CASE WHEN f.source_file_id IS NULL THEN 'internal' ELSE 'drive' END,
       f.blob_key, f.name, f.mime_type, COALESCE(f.size_bytes, 0), f.sha256, f.md5,
       CASE WHEN f.source_file_id IS NULL THEN 'internal' ELSE 'drive' END,
       f.source_file_id, f.updated_at
FROM files f
WHERE f.status = 'ready' AND f.blob_key IS NOT NULL;
UPDATE files SET last_version_id = id WHERE status = 'ready' AND blob_key IS NOT NULL;
