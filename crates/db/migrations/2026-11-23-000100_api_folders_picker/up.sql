-- Folders of Ferry's own store (the files API and an import's `folder_id`). Nested through parent_id;
-- a folder can only be deleted when empty.
CREATE TABLE folders (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    parent_id   uuid REFERENCES folders(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX folders_tenant_parent_idx ON folders (tenant_id, parent_id, name);

-- Files may name a folder. NOT VALID: rows written before folders existed may carry ids never created here.
ALTER TABLE files ADD CONSTRAINT files_folder_id_fkey FOREIGN KEY (folder_id) REFERENCES folders(id) NOT VALID;
CREATE INDEX files_tenant_folder_idx ON files (tenant_id, folder_id);

-- A stored file can be deleted once no unfinished job needs it; finished job items keep its id as history,
-- so the reference from job_items is no longer enforced.
ALTER TABLE job_items DROP CONSTRAINT IF EXISTS job_items_file_id_fkey;

-- Google Picker sessions: the id handed to the browser is stored only as a SHA-256 hash, bound to the
-- tenant and connection, and expires.
CREATE TABLE picker_sessions (
    session_hash    text PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id   uuid NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX picker_sessions_expiry_idx ON picker_sessions (expires_at);

-- Export formats an import request chose for Google Workspace files (workspace MIME type, or `*` for any,
-- → target MIME type), written before the job so a worker always sees them. Absent: the defaults.
CREATE TABLE import_export_formats (
    file_id     uuid PRIMARY KEY,
    formats     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
