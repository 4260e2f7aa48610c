//! Table definitions matching `migrations/`.

diesel::table! {
    tenants (id) {
        id -> Uuid,
        name -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        key_hash -> Text,
        key_prefix -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        scopes -> Nullable<Array<Text>>,
    }
}

diesel::table! {
    libraries (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        natural_id -> Nullable<Text>,
        name -> Text,
        root_folder_id -> Uuid,
        integration_id -> Nullable<Uuid>,
        connection_id -> Nullable<Uuid>,
        drive_folder_id -> Nullable<Text>,
        drive_id -> Nullable<Text>,
        linked_at -> Nullable<Timestamptz>,
        sync_interval_secs -> Nullable<Int4>,
        last_sync_at -> Nullable<Timestamptz>,
        last_sync_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        page_token -> Nullable<Text>,
        synced_account_id -> Nullable<Text>,
    }
}

diesel::table! {
    library_entries (library_id, drive_file_id) {
        library_id -> Uuid,
        drive_file_id -> Text,
        tenant_id -> Uuid,
        is_folder -> Bool,
        item_id -> Uuid,
        drive_parent_id -> Text,
        name -> Text,
        content -> Nullable<Text>,
        in_trash -> Bool,
    }
}

diesel::table! {
    sync_runs (job_id) {
        job_id -> Uuid,
        tenant_id -> Uuid,
        library_id -> Uuid,
        purge -> Bool,
        progress -> Nullable<Text>,
        planned -> Bool,
        finished -> Bool,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        next_page_token -> Nullable<Text>,
        account_id -> Nullable<Text>,
        renamed_files -> Int4,
        restored_files -> Int4,
        deleted_files -> Int4,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_states (state) {
        state -> Text,
        tenant_id -> Uuid,
        provider -> Text,
        pkce_verifier_sealed -> Text,
        redirect_uri -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        consumed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    connections (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        provider -> Text,
        provider_user_id -> Text,
        provider_email -> Nullable<Text>,
        provider_display_name -> Nullable<Text>,
        access_token_sealed -> Nullable<Text>,
        refresh_token_sealed -> Nullable<Text>,
        token_expires_at -> Nullable<Timestamptz>,
        scopes -> Nullable<Text>,
        is_active -> Bool,
        needs_reauth -> Bool,
        connected_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        disconnected_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    files (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        mime_type -> Nullable<Text>,
        size_bytes -> Nullable<Int8>,
        sha256 -> Nullable<Text>,
        md5 -> Nullable<Text>,
        blob_key -> Nullable<Text>,
        status -> Text,
        folder_id -> Nullable<Uuid>,
        tags -> Array<Text>,
        source_connection_id -> Nullable<Uuid>,
        source_file_id -> Nullable<Text>,
        import_job_id -> Nullable<Uuid>,
        error_code -> Nullable<Text>,
        error_message -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_version_id -> Nullable<Uuid>,
        description -> Text,
        trashed_at -> Nullable<Timestamptz>,
        access_info -> Nullable<Jsonb>,
    }
}

diesel::table! {
    file_versions (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        file_id -> Uuid,
        provider -> Text,
        blob_key -> Text,
        name -> Text,
        mime_type -> Nullable<Text>,
        size_bytes -> Int8,
        sha256 -> Nullable<Text>,
        md5 -> Nullable<Text>,
        source -> Text,
        external_id -> Nullable<Text>,
        thumbnails -> Jsonb,
        creator_id -> Nullable<Text>,
        application_id -> Nullable<Text>,
        created_at -> Timestamptz,
        image -> Nullable<Jsonb>,
        image_refusal -> Nullable<Text>,
        described_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    document_tabs (tenant_id, tab_id) {
        tenant_id -> Uuid,
        tab_id -> Text,
        channel_id -> Text,
        item_id -> Text,
        level -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    jobs (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        connection_id -> Uuid,
        kind -> Text,
        status -> Text,
        total_files -> Int4,
        completed_files -> Int4,
        failed_files -> Int4,
        cancelled_files -> Int4,
        error -> Nullable<Text>,
        target_folder_id -> Nullable<Text>,
        target_folder_name -> Nullable<Text>,
        created_folder_id -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        cancel_requested_at -> Nullable<Timestamptz>,
        provider_metadata -> Nullable<Json>,
    }
}

diesel::table! {
    job_items (id) {
        id -> Uuid,
        job_id -> Uuid,
        tenant_id -> Uuid,
        position -> Int4,
        file_id -> Uuid,
        drive_file_id -> Nullable<Text>,
        name -> Text,
        mime_type -> Nullable<Text>,
        status -> Text,
        attempts -> Int4,
        error_code -> Nullable<Text>,
        error_message -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        upload_session_sealed -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        sync_action -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        command -> Text,
        payload -> Bytea,
        created_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
        parked_at -> Nullable<Timestamptz>,
        park_reason -> Nullable<Text>,
        traceparent -> Nullable<Text>,
    }
}

diesel::table! {
    folders (id) {
        id -> Uuid,
        tenant_id -> Uuid,
        name -> Text,
        parent_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        description -> Text,
        trashed_at -> Nullable<Timestamptz>,
        access_info -> Nullable<Jsonb>,
        tags -> Array<Text>,
    }
}

diesel::table! {
    picker_sessions (session_hash) {
        session_hash -> Text,
        tenant_id -> Uuid,
        connection_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    import_export_formats (file_id) {
        file_id -> Uuid,
        formats -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(connections -> tenants (tenant_id));
diesel::joinable!(jobs -> connections (connection_id));
diesel::joinable!(job_items -> jobs (job_id));
diesel::joinable!(job_items -> files (file_id));
diesel::joinable!(file_versions -> files (file_id));
diesel::joinable!(libraries -> folders (root_folder_id));
diesel::joinable!(sync_runs -> jobs (job_id));
diesel::joinable!(sync_runs -> libraries (library_id));

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    api_keys,
    oauth_states,
    connections,
    files,
    file_versions,
    jobs,
    job_items,
    outbox,
    folders,
    picker_sessions,
    import_export_formats,
    document_tabs,
    libraries,
    library_entries,
    sync_runs
);
