//! Fenced worker writes against a real Postgres: once a worker's lease was taken over, nothing it writes about
//! the item changes anything, and a claim that finds its file row gone fails the item instead of looping.

use std::time::Duration;

use ferry_core::{ItemId, JobId, JobStatus, TenantId};
use ferry_db::jobs::{ClaimOutcome, ImportedBlob};
use ferry_db::leases::ReapParams;
use ferry_db::testing::{TestDatabase, claimed_by, delete_file_row_unchecked};
use ferry_db::{Db, DbError};

fn blob(key: &str) -> ImportedBlob<'_> {
    ImportedBlob { rename_to: None, size_bytes: 3, mime_type: "text/plain", sha256: "s", md5: "m", blob_key: key }
}

async fn job_with_items(db: &Db, count: usize) -> (TenantId, JobId, Vec<ItemId>) {
    let (tenant, connection) = ferry_db::testing::tenant_with_connection(db, "fencing").await.expect("tenant");
    let new = ferry_db::testing::import_job(tenant, connection, count);
    let items = new.items.iter().map(|item| item.item_id).collect();
    let job = db.create_import_job(new).await.expect("job");
    (tenant, JobId(job.id), items)
}

fn refused<T: std::fmt::Debug>(result: Result<T, DbError>, what: &str) {
    assert!(matches!(result, Err(DbError::LeaseLost { .. })), "{what} by a stale claim must be refused: {result:?}");
}

#[tokio::test]
async fn a_stale_owner_can_change_nothing_once_its_lease_was_taken_over() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, job_id, items) = job_with_items(&test.db, 1).await;

    // The first worker's lease runs out (it stalled); the next worker takes the item over.
    let ClaimOutcome::Claimed(stale) = test.db.claim_item(items[0], "stalled", Duration::ZERO).await.expect("claim")
    else {
        panic!("first claim");
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let live = claimed_by(&test.db, items[0], "live").await;
    assert_eq!(live.claim.attempt, 2);

    refused(test.db.complete_import_item(&stale.claim, blob("stale")).await, "complete");
    refused(test.db.fail_claimed_item(&stale.claim, "drive_not_found", "stale").await, "fail");
    refused(test.db.release_item(&stale.claim, "drive_backend_error", "stale").await, "release");
    refused(test.db.set_item_upload_session(&stale.claim, Some("sealed-stale")).await, "upload session");
    refused(test.db.set_item_drive_file_id(&stale.claim, "drive-stale").await, "drive id");
    refused(test.db.claim_job_folder(&stale.claim, job_id, "folder-stale").await, "job folder");
    assert!(!test.db.extend_lease(&stale.claim, Duration::from_secs(600)).await.expect("extend"));

    // Nothing moved: the job counts nothing and the item is still the live worker's.
    let job = test.db.get_job(tenant, job_id).await.expect("job").expect("exists");
    assert_eq!((job.completed_files, job.failed_files, job.created_folder_id.as_deref()), (0, 0, None));
    let item = &test.db.list_job_items(tenant, job_id).await.expect("items")[0];
    assert_eq!((item.status.as_str(), item.lease_owner.as_deref()), ("running", Some("live")));
    assert_eq!((item.upload_session_sealed.as_deref(), item.drive_file_id.as_deref()), (None, Some("drive-0")));

    // The live worker's writes go through.
    assert!(test.db.extend_lease(&live.claim, Duration::from_secs(60)).await.expect("extend"));
    let done = test.db.complete_import_item(&live.claim, blob("live")).await.expect("complete");
    assert_eq!(done.job_status, Some(JobStatus::Completed));
    let job = test.db.get_job(tenant, job_id).await.expect("job").expect("exists");
    assert_eq!((job.completed_files, job.failed_files), (1, 0));
}

#[tokio::test]
async fn the_same_worker_reclaiming_an_item_fences_off_its_own_earlier_attempt() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, job_id, items) = job_with_items(&test.db, 1).await;
    let ClaimOutcome::Claimed(first) = test.db.claim_item(items[0], "w", Duration::ZERO).await.expect("claim") else {
        panic!("first claim");
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = claimed_by(&test.db, items[0], "w").await;
    assert_eq!((first.claim.owner.as_str(), second.claim.owner.as_str()), ("w", "w"));
    refused(test.db.complete_import_item(&first.claim, blob("first")).await, "complete by the earlier attempt");
    test.db.release_item(&second.claim, "drive_backend_error", "503").await.expect("release by the live attempt");
    let item = &test.db.list_job_items(tenant, job_id).await.expect("items")[0];
    assert_eq!((item.status.as_str(), item.attempts), ("pending", 2));
}

#[tokio::test]
async fn the_reaper_does_not_fail_an_item_a_worker_claimed_after_it_looked() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, job_id, items) = job_with_items(&test.db, 1).await;
    let ClaimOutcome::Claimed(dead) = test.db.claim_item(items[0], "dead", Duration::ZERO).await.expect("claim") else {
        panic!("claim");
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    // A worker takes the expired item over before the reaper's decision (made on attempt 1) is applied.
    let live = claimed_by(&test.db, items[0], "live").await;
    let failed = test
        .db
        .fail_item_unclaimed(items[0], Some(dead.claim.attempt), "attempts_exhausted", "gave up")
        .await
        .expect("fail");
    assert!(!failed.applied, "the item is held by a live claim now");
    test.db.complete_import_item(&live.claim, blob("live")).await.expect("complete");
    let job = test.db.get_job(tenant, job_id).await.expect("job").expect("exists");
    assert_eq!((job.completed_files, job.failed_files), (1, 0));
}

#[tokio::test]
async fn an_item_whose_file_row_is_gone_fails_with_file_missing_and_the_job_ends() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = ferry_db::testing::tenant_with_connection(&test.db, "missing").await.expect("tenant");
    let new = ferry_db::testing::import_job(tenant, connection, 2);
    let items: Vec<ItemId> = new.items.iter().map(|item| item.item_id).collect();
    let files: Vec<_> = new.items.iter().map(|item| item.file_id).collect();
    let job_id = JobId(test.db.create_import_job(new).await.expect("job").id);
    for file in &files {
        delete_file_row_unchecked(&test.db, *file).await.expect("delete");
    }
    for item in &items {
        let outcome = test.db.claim_item(*item, "w", Duration::from_secs(60)).await.expect("claim");
        assert!(matches!(outcome, ClaimOutcome::Failed { code: "file_missing" }), "{outcome:?}");
    }
    let job = test.db.get_job(tenant, job_id).await.expect("job").expect("exists");
    assert_eq!((job.status, job.failed_files), (JobStatus::Failed, 2));
    let listed = test.db.list_job_items(tenant, job_id).await.expect("items");
    assert!(listed.iter().all(|item| item.error_code.as_deref() == Some("file_missing")));
    // A redelivery finds the item finished: acknowledged, never looped.
    let again = test.db.claim_item(items[0], "w", Duration::from_secs(60)).await.expect("claim");
    assert!(matches!(again, ClaimOutcome::AlreadyFinished));
}

#[tokio::test]
async fn a_long_queue_is_not_mistaken_for_lost_messages() {
    let test = TestDatabase::create().await.expect("test database");
    let (_, _, items) = job_with_items(&test.db, 4).await;
    let kind = ferry_core::JobKind::Import;
    let lost = |queued| test.db.estimate_lost_messages(kind, "import.item", queued);

    // Four pending items and four unpublished outbox rows: every item's message is on its way.
    assert_eq!(lost(0).await.expect("estimate"), 0);
    test.db.relay_outbox_batch(100, async |_| Ok::<(), std::io::Error>(())).await.expect("publish");
    // Published, and the broker holds all four: a long queue, nothing lost.
    assert_eq!(lost(4).await.expect("estimate"), 0);
    // The broker holds only one: three messages were lost.
    assert_eq!(lost(1).await.expect("estimate"), 3);

    // The reaper re-enqueues exactly as many stale pending items as it is told were lost.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let params = ReapParams {
        kind,
        command: "import.item",
        stale_pending: Duration::ZERO,
        lost_messages: 3,
        max_attempts: 10,
        limit: 100,
    };
    let encode = |item: &ferry_db::leases::RequeuedItem| item.item_id.as_bytes().to_vec();
    assert_eq!(test.db.reap_items(&params, encode).await.expect("reap").stale_pending, 3);
    assert_eq!(test.db.outbox_backlog().await.expect("backlog").0, 3);
    // The new rows are on their way: the estimate drops to nothing.
    assert_eq!(lost(1).await.expect("estimate"), 0);
    assert_eq!(items.len(), 4);
}
