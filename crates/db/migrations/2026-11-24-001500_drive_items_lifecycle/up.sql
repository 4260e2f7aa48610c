-- Deleting forever removes bytes through the queue, and only bytes no version still uses: the removal task
-- looks a blob key up among versions and files.
CREATE INDEX file_versions_blob_idx ON file_versions (blob_key);
CREATE INDEX files_blob_idx ON files (blob_key) WHERE blob_key IS NOT NULL;

-- What the image worker found in a version's bytes: dimensions and EXIF facts, or why it refused them.
ALTER TABLE file_versions ADD COLUMN image jsonb;
ALTER TABLE file_versions ADD COLUMN image_refusal text;
ALTER TABLE file_versions ADD COLUMN described_at timestamptz;

-- Tab configurations: a channel tab shows one item's subtree at one level.
CREATE TABLE document_tabs (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    tab_id      text NOT NULL,
    channel_id  text NOT NULL,
    item_id     text NOT NULL,
    level       text NOT NULL CHECK (level IN ('read', 'write')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tab_id)
);
