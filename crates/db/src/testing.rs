//! A throwaway database per test: created and migrated on demand, dropped when the guard goes away, so tests
//! run in parallel without sharing state.

use crate::{Db, DbError, create_database_if_missing, drop_database, run_migrations};

/// Server URL without a database; `FERRY_TEST_DATABASE_URL` overrides it.
pub fn test_server_url() -> String {
    std::env::var("FERRY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub struct TestDatabase {
    pub url: String,
    pub db: Db,
}

impl TestDatabase {
    /// A database with only the migrations before `version` applied (see [`crate::run_migrations_before`]).
    pub async fn create_before(version: &str) -> Result<Self, DbError> {
        let name = format!("ferry_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{}", test_server_url().trim_end_matches('/'), name);
        create_database_if_missing(&url).await?;
        crate::run_migrations_before(&url, version).await?;
        let db = Db::connect(&url, 8)?;
        Ok(TestDatabase { url, db })
    }

    pub async fn create() -> Result<Self, DbError> {
        let name = format!("ferry_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{}", test_server_url().trim_end_matches('/'), name);
        create_database_if_missing(&url).await?;
        run_migrations(&url).await?;
        let db = Db::connect(&url, 8)?;
        Ok(TestDatabase { url, db })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived thread with its own
        // runtime does the cleanup instead.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            if let Err(err) = runtime.block_on(drop_database(&url)) {
                eprintln!("could not drop test database {url}: {err}");
            }
        });
        let _ = cleanup.join();
    }
}

/// A Google Drive connection of `tenant` to the Google user `google_user`, holding placeholder sealed tokens.
pub async fn drive_connection(
    db: &Db,
    tenant: ferry_core::TenantId,
    google_user: &str,
) -> Result<ferry_core::ConnectionId, DbError> {
    let (connection, _) = db
        .upsert_connection(crate::connections::ConnectionUpsert {
            id: ferry_core::ConnectionId::new(),
            tenant_id: tenant,
            provider: "google_drive",
            provider_user_id: google_user,
            provider_email: Some("a@example.com"),
            provider_display_name: Some("A"),
            access_token_sealed: "sealed-access",
            refresh_token_sealed: Some("sealed-refresh"),
            token_expires_at: chrono::Utc::now(),
            scopes: None,
        })
        .await?;
    Ok(ferry_core::ConnectionId(connection.id))
}

/// A tenant named `name` with one Google Drive connection holding placeholder sealed tokens.
pub async fn tenant_with_connection(
    db: &Db,
    name: &str,
) -> Result<(ferry_core::TenantId, ferry_core::ConnectionId), DbError> {
    let tenant = ferry_core::TenantId(db.ensure_tenant(name).await?.id);
    Ok((tenant, drive_connection(db, tenant, "sub-1").await?))
}

/// A new import job of `files` items whose commands are the item's position as one byte.
pub fn import_job(
    tenant: ferry_core::TenantId,
    connection: ferry_core::ConnectionId,
    files: usize,
) -> crate::jobs::NewImportJob {
    use ferry_core::{FileId, ItemId, JobId};
    crate::jobs::NewImportJob {
        job_id: JobId::new(),
        tenant_id: tenant,
        connection_id: connection,
        tags: vec![],
        folder_id: None,
        provider_metadata: None,
        items: (0..files)
            .map(|i| crate::jobs::NewImportItem {
                item_id: ItemId::new(),
                file_id: FileId::new(),
                drive_file_id: format!("drive-{i}"),
                name: format!("f{i}.bin"),
                mime_type: None,
                command: vec![i as u8],
            })
            .collect(),
        command_name: "import.item".into(),
        traceparent: None,
    }
}

/// Claims `item_id` for `worker` with a one-minute lease. Panics (failing the calling test) when the item cannot
/// be claimed: tests use it where a claim must succeed.
pub async fn claimed_by(db: &crate::Db, item_id: ferry_core::ItemId, worker: &str) -> Box<crate::jobs::ClaimedItem> {
    match db.claim_item(item_id, worker, std::time::Duration::from_secs(60)).await {
        Ok(crate::jobs::ClaimOutcome::Claimed(claimed)) => claimed,
        other => panic!("expected {worker} to claim item {item_id}, got {other:?}"),
    }
}

/// Deletes a stored file's row while job items still point at it, bypassing the foreign keys the way a damaged
/// database or a manual repair would: failure tests use it to prove such items fail instead of looping.
pub async fn delete_file_row_unchecked(db: &crate::Db, file_id: ferry_core::FileId) -> Result<(), crate::DbError> {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut conn = db.conn().await?;
    conn.transaction::<_, crate::DbError, _>(async |conn| {
        diesel::sql_query("SET LOCAL session_replication_role = replica").execute(conn).await?;
        diesel::sql_query("DELETE FROM files WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(file_id.0)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// Writes an outbox row as a foreign or corrupted writer could (any command name, any payload), so relay tests
/// can prove that such a row is parked instead of blocking the rows behind it.
pub async fn insert_outbox_row(db: &crate::Db, command: &str, payload: &[u8]) -> Result<(), crate::DbError> {
    use diesel::ExpressionMethods;
    use diesel_async::RunQueryDsl;
    let mut conn = db.conn().await?;
    diesel::insert_into(crate::schema::outbox::table)
        .values((crate::schema::outbox::command.eq(command), crate::schema::outbox::payload.eq(payload)))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Writes any word into a job's `status`, as a newer version (or a damaged row) could: tests use it to prove
/// that a word this version does not know is a read error, never a status of its own.
pub async fn write_job_status_word(
    db: &crate::Db,
    job_id: ferry_core::JobId,
    word: &str,
) -> Result<(), crate::DbError> {
    use diesel::{ExpressionMethods, QueryDsl};
    use diesel_async::RunQueryDsl;
    let mut conn = db.conn().await?;
    diesel::update(crate::schema::jobs::table.find(job_id.0))
        .set(crate::schema::jobs::status.eq(word))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Overwrites a library's changes-feed position (a position Drive no longer accepts, for tests of the fallback
/// to a full listing).
pub async fn set_library_page_token_unchecked(
    db: &crate::Db,
    library_id: uuid::Uuid,
    token: &str,
) -> Result<(), crate::DbError> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut conn = db.conn().await?;
    diesel::update(crate::schema::libraries::table.find(library_id))
        .set(crate::schema::libraries::page_token.eq(token))
        .execute(&mut conn)
        .await?;
    Ok(())
}
