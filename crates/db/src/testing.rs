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
