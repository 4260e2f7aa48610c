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

/// A tenant named `name` with one Google Drive connection holding placeholder sealed tokens.
pub async fn tenant_with_connection(
    db: &Db,
    name: &str,
) -> Result<(ferry_core::TenantId, ferry_core::ConnectionId), DbError> {
    use ferry_core::{ConnectionId, TenantId};
    let tenant = TenantId(db.ensure_tenant(name).await?.id);
    let (connection, _) = db
        .upsert_connection(crate::connections::ConnectionUpsert {
            id: ConnectionId::new(),
            tenant_id: tenant,
            provider: "google_drive",
            provider_user_id: "sub-1",
            provider_email: Some("a@example.com"),
            provider_display_name: Some("A"),
            access_token_sealed: "sealed-access",
            refresh_token_sealed: Some("sealed-refresh"),
            token_expires_at: chrono::Utc::now(),
            scopes: None,
        })
        .await?;
    Ok((tenant, ConnectionId(connection.id)))
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
    }
}
