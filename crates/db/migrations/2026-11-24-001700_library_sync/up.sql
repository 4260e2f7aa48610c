-- Where a library's changes feed continues (NULL: the next run lists the whole folder), and the Drive account it
-- was listed with (a connection now pointing at another account forces a full listing).
ALTER TABLE libraries ADD COLUMN page_token text;
ALTER TABLE libraries ADD COLUMN synced_account_id text;

-- What the mirror recorded of each Drive item of a library: the Ferry item it became and the Drive state it was
-- last brought to (parent, name, content), so the next run can tell renames, moves and edits apart.
CREATE TABLE library_entries (
    library_id      uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    drive_file_id   text NOT NULL,
    tenant_id       uuid NOT NULL,
    is_folder       boolean NOT NULL,
    -- The directory (folders.id) or file item (files.id).
    item_id         uuid NOT NULL,
    drive_parent_id text NOT NULL,
    name            text NOT NULL,
    -- md5 (or a Workspace file's version) of the content last asked for.
    content         text,
    in_trash        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (library_id, drive_file_id)
);
CREATE INDEX library_entries_item_idx ON library_entries (item_id);

-- One sync run: the job that carries its transfers, and the state of its planning. The planning is leased like
-- an item (owner, attempt) so a worker killed mid-run leaves it to the next one, and a stale one writes nothing.
CREATE TABLE sync_runs (
    job_id            uuid PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id         uuid NOT NULL,
    library_id        uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    purge             boolean NOT NULL DEFAULT false,
    -- The client's own name for following the run (`GET /api/progress/{progress}`).
    progress          text,
    planned           boolean NOT NULL DEFAULT false,
    finished          boolean NOT NULL DEFAULT false,
    lease_owner       text,
    lease_expires_at  timestamptz,
    attempts          integer NOT NULL DEFAULT 0,
    -- Set by the planning: the feed position once this run's changes are applied, the account listed, and what
    -- was done without a transfer.
    next_page_token   text,
    account_id        text,
    renamed_files     integer NOT NULL DEFAULT 0,
    restored_files    integer NOT NULL DEFAULT 0,
    deleted_files     integer NOT NULL DEFAULT 0,
    error             text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- One run per library at a time.
CREATE UNIQUE INDEX sync_runs_one_open_per_library ON sync_runs (library_id) WHERE NOT finished;
CREATE INDEX sync_runs_progress_idx ON sync_runs (tenant_id, progress, created_at) WHERE progress IS NOT NULL;

-- A sync run's transfer is a new file (`add`) or new content for a file the library has (`update`).
ALTER TABLE job_items ADD COLUMN sync_action text CHECK (sync_action IN ('add', 'update'));
