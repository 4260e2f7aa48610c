-- What an API key may do: NULL is every scope (keys made before scopes existed keep working).
ALTER TABLE api_keys ADD COLUMN scopes text[];

-- A library is a named directory item of the store that mirrors one Drive folder through a connection.
CREATE TABLE libraries (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- The client's own name for it, usable in paths instead of the id; unique per tenant when given.
    natural_id          text,
    name                text NOT NULL,
    -- The directory item holding the library's content.
    root_folder_id      uuid NOT NULL,
    -- The integration (`google-drive`: the configured OAuth client) and, once linked, the connection and the
    -- Drive folder it mirrors (`root` or a folder id) with the shared drive that holds it (NULL: My Drive).
    integration_id      uuid,
    connection_id       uuid,
    drive_folder_id     text,
    drive_id            text,
    linked_at           timestamptz,
    sync_interval_secs  integer CHECK (sync_interval_secs IS NULL OR sync_interval_secs >= 60),
    last_sync_at        timestamptz,
    last_sync_error     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((connection_id IS NULL) = (drive_folder_id IS NULL)),
    -- A library's directory and connection are its own tenant's, whatever a query forgets to check. Deleting the
    -- directory forever (documents API) ends the library with it.
    FOREIGN KEY (tenant_id, root_folder_id) REFERENCES folders (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id)
);
CREATE UNIQUE INDEX libraries_natural_id_idx ON libraries (tenant_id, natural_id) WHERE natural_id IS NOT NULL;
CREATE INDEX libraries_tenant_idx ON libraries (tenant_id, created_at);
