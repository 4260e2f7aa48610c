//! The sync scheduler against a real Postgres: many processes making passes at once start one run per due library,
//! and a library whose interval has not passed since its last run began is not started again. (Scheduled runs end
//! to end, and a revoked connection, are in the testkit's `library_sync.rs`.)

use ferry_core::TenantId;
use ferry_db::libraries::{LibraryChanges, LibraryLink, LibraryWrite, NewLibrary};
use ferry_db::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scheduler_passes_start_one_run_per_due_library() {
    let test = TestDatabase::create().await.expect("database");
    let db = test.db.clone();
    let tenant = TenantId(db.ensure_tenant("scheduled").await.expect("tenant").id);
    let connection = ferry_db::testing::drive_connection(&db, tenant, "sub-s").await.expect("connection");
    let mut libraries = Vec::new();
    for n in 0..5 {
        let name = format!("L{n}");
        let LibraryWrite::Done(library) = db
            .tenant(tenant)
            .create_library(NewLibrary { id: uuid::Uuid::now_v7(), natural_id: None, name: &name })
            .await
            .expect("library")
        else {
            panic!("library not created");
        };
        let link = LibraryLink { connection_id: connection.0, drive_folder_id: "root", drive_id: None };
        db.tenant(tenant).link_library(library.id, link).await.expect("link").expect("linked");
        let every_minute = LibraryChanges { sync_interval_secs: Some(Some(60)), ..LibraryChanges::default() };
        db.tenant(tenant).update_library(library.id, &every_minute).await.expect("schedule");
        libraries.push(library.id);
    }

    // Eight "replicas" make passes at the same moment, three times each.
    let mut passes = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        passes.push(tokio::spawn(async move {
            let mut started = 0;
            for _ in 0..3 {
                started += db.start_due_syncs("sync.run", |_, _| vec![1]).await.expect("pass");
            }
            started
        }));
    }
    let mut started = 0;
    for pass in passes {
        started += pass.await.expect("pass task");
    }
    assert_eq!(started, libraries.len(), "one run per due library, however many passes");
    let filter = ferry_db::job_control::JobFilter { statuses: None, kind: Some("sync"), limit: 100, offset: 0 };
    let (jobs, total) = db.tenant(tenant).list_jobs(&filter).await.expect("jobs");
    assert_eq!((jobs.len() as i64, total), (5, 5));
    // The interval has not passed (and the runs have not ended): later passes start nothing.
    assert_eq!(db.start_due_syncs("sync.run", |_, _| vec![1]).await.expect("pass"), 0);
}
