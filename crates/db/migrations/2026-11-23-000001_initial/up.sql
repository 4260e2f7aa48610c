-- Tenants own API keys, connections, files and jobs. Every query is scoped by tenant_id.
CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored only as a SHA-256 hash; the key itself is shown once at creation.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_hash    text NOT NULL UNIQUE,
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- OAuth authorization requests in flight: single use, expiring, bound to the tenant. The PKCE verifier is sealed.
CREATE TABLE oauth_states (
    state               text PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    provider            text NOT NULL,
    pkce_verifier_sealed text NOT NULL,
    redirect_uri        text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    consumed_at         timestamptz
);

-- A connected cloud account. Tokens are sealed with AES-256-GCM (key id inside the sealed value).
CREATE TABLE connections (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    provider                text NOT NULL,
    provider_user_id        text NOT NULL,
    provider_email          text,
    provider_display_name   text,
    access_token_sealed     text,
    refresh_token_sealed    text,
    token_expires_at        timestamptz,
    scopes                  text,
    is_active               boolean NOT NULL DEFAULT true,
    needs_reauth            boolean NOT NULL DEFAULT false,
    connected_at            timestamptz NOT NULL DEFAULT now(),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    last_used_at            timestamptz,
    disconnected_at         timestamptz,
    UNIQUE (tenant_id, provider, provider_user_id)
);
CREATE INDEX connections_tenant_idx ON connections (tenant_id, connected_at DESC);

-- Files in Ferry's store. An import creates a `pending` placeholder that becomes `ready` when its bytes land.
CREATE TABLE files (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                    text NOT NULL,
    mime_type               text,
    size_bytes              bigint,
    sha256                  text,
    md5                     text,
    blob_key                text,
    status                  text NOT NULL,
    folder_id               uuid,
    tags                    text[] NOT NULL DEFAULT '{}',
    source_connection_id    uuid REFERENCES connections(id),
    source_file_id          text,
    provider_metadata       jsonb,
    error_code              text,
    error_message           text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_tenant_idx ON files (tenant_id, created_at DESC);

CREATE TABLE jobs (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    connection_id       uuid NOT NULL REFERENCES connections(id),
    kind                text NOT NULL,
    status              text NOT NULL,
    total_files         integer NOT NULL,
    completed_files     integer NOT NULL DEFAULT 0,
    failed_files        integer NOT NULL DEFAULT 0,
    cancelled_files     integer NOT NULL DEFAULT 0,
    error               text,
    -- export only: an existing Drive folder, or the name of one to create once for the job
    target_folder_id    text,
    target_folder_name  text,
    -- export only: the pre-generated Drive id of the folder created for this job (set once, then reused)
    created_folder_id   text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    completed_at        timestamptz
);
CREATE INDEX jobs_tenant_idx ON jobs (tenant_id, created_at DESC);

-- One row per file of a job: the unit of work, leased by a worker while it runs.
CREATE TABLE job_items (
    id                      uuid PRIMARY KEY,
    job_id                  uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id               uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    position                integer NOT NULL,
    -- import: the placeholder file being filled; export: the stored file being uploaded
    file_id                 uuid NOT NULL REFERENCES files(id),
    -- import: the Drive file read; export: the Drive file created (pre-generated id)
    drive_file_id           text,
    name                    text NOT NULL,
    mime_type               text,
    status                  text NOT NULL,
    attempts                integer NOT NULL DEFAULT 0,
    error_code              text,
    error_message           text,
    lease_owner             text,
    lease_expires_at        timestamptz,
    upload_session_sealed   text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    completed_at            timestamptz,
    UNIQUE (job_id, position)
);
CREATE INDEX job_items_job_idx ON job_items (job_id, position);

-- Commands waiting to be published to RabbitMQ, written in the same transaction as the job they belong to.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    command       text NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- Wake the relay as soon as a transaction that wrote outbox rows commits (NOTIFY is delivered at commit).
CREATE FUNCTION ferry_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ferry_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION ferry_outbox_notify();
