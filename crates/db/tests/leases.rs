//! The reaper, shutdown release and operator requeue against a real Postgres, one fresh database per test.

use std::time::Duration;

use ferry_core::{ConnectionId, ItemId, ItemStatus, JobKind, JobStatus, TenantId};
use ferry_db::Db;
use ferry_db::jobs::{ClaimOutcome, NewImportJob};
use ferry_db::leases::{ReapParams, RequeuedItem};
use ferry_db::testing::TestDatabase;

async fn tenant_with_connection(db: &Db, name: &str) -> (TenantId, ConnectionId) {
    ferry_db::testing::tenant_with_connection(db, name).await.expect("tenant with a connection")
}

fn import_job(tenant: TenantId, connection: ConnectionId, files: usize) -> NewImportJob {
    ferry_db::testing::import_job(tenant, connection, files)
}

/// Marks every outbox row published and returns their payloads.
async fn drain_outbox(db: &Db) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    db.relay_outbox_batch(1000, async |rows| {
        seen.extend(rows.into_iter().map(|row| row.payload));
        Ok::<(), std::io::Error>(())
    })
    .await
    .expect("relay");
    seen
}

fn encode(item: &RequeuedItem) -> Vec<u8> {
    item.item_id.as_bytes().to_vec()
}

fn params(stale_pending: Duration, max_attempts: i32) -> ReapParams<'static> {
    ReapParams {
        kind: JobKind::Import,
        command: "import.item",
        stale_pending,
        lost_messages: 100,
        max_attempts,
        limit: 100,
    }
}

#[tokio::test]
async fn the_reaper_requeues_expired_leases_with_an_outbox_row_and_leaves_live_ones() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "reaper").await;
    let job = import_job(tenant, connection, 3);
    let ids: Vec<ItemId> = job.items.iter().map(|item| item.item_id).collect();
    test.db.create_import_job(job).await.expect("job");
    drain_outbox(&test.db).await;

    // Item 0: its worker died (lease already over). Item 1: held with a live lease. Item 2: pending, fresh.
    assert!(matches!(test.db.claim_item(ids[0], "dead-worker", Duration::ZERO).await, Ok(ClaimOutcome::Claimed(_))));
    assert!(matches!(
        test.db.claim_item(ids[1], "live-worker", Duration::from_secs(600)).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;

    let report = test.db.reap_items(&params(Duration::from_secs(600), 10), encode).await.expect("reap");
    assert_eq!((report.expired_leases, report.stale_pending, report.exhausted), (1, 0, 0));
    assert_eq!(drain_outbox(&test.db).await, vec![ids[0].0.as_bytes().to_vec()], "one new message, for item 0");
    // The requeued item can be claimed by the next worker at once.
    assert!(matches!(test.db.claim_item(ids[0], "next", Duration::from_secs(60)).await, Ok(ClaimOutcome::Claimed(_))));
    assert!(matches!(
        test.db.claim_item(ids[1], "other", Duration::from_secs(60)).await,
        Ok(ClaimOutcome::LeasedElsewhere)
    ));
    // A second pass finds nothing: no duplicate messages.
    let again = test.db.reap_items(&params(Duration::from_secs(600), 10), encode).await.expect("reap");
    assert_eq!(again.total(), 0);
    assert!(drain_outbox(&test.db).await.is_empty());
}

#[tokio::test]
async fn the_reaper_requeues_stale_pending_items_and_fails_exhausted_ones() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "stale").await;
    let job = import_job(tenant, connection, 2);
    let job_id = job.job_id;
    let ids: Vec<ItemId> = job.items.iter().map(|item| item.item_id).collect();
    test.db.create_import_job(job).await.expect("job");
    drain_outbox(&test.db).await;
    // Item 1 has been claimed (and died) twice already.
    for _ in 0..2 {
        assert!(matches!(test.db.claim_item(ids[1], "w", Duration::ZERO).await, Ok(ClaimOutcome::Claimed(_))));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Exports are not touched by an import reaper.
    let export = ReapParams { kind: JobKind::Export, command: "export.item", ..params(Duration::ZERO, 2) };
    assert_eq!(test.db.reap_items(&export, encode).await.expect("reap").total(), 0);

    let report = test.db.reap_items(&params(Duration::ZERO, 2), encode).await.expect("reap");
    assert_eq!((report.expired_leases, report.stale_pending, report.exhausted), (0, 1, 1));
    assert_eq!(drain_outbox(&test.db).await, vec![ids[0].0.as_bytes().to_vec()]);
    let job = test.db.get_job(tenant, job_id).await.expect("get").expect("job");
    assert_eq!(job.failed_files, 1);
    let items = test.db.list_job_items(tenant, job_id).await.expect("items");
    assert_eq!(items[1].error_code.as_deref(), Some("attempts_exhausted"));
}

#[tokio::test]
async fn shutdown_release_and_operator_requeue_put_items_back_in_play() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "requeue").await;
    let job = import_job(tenant, connection, 2);
    let job_id = job.job_id;
    let ids: Vec<ItemId> = job.items.iter().map(|item| item.item_id).collect();
    test.db.create_import_job(job).await.expect("job");
    drain_outbox(&test.db).await;

    assert!(matches!(
        test.db.claim_item(ids[0], "stopping", Duration::from_secs(600)).await,
        Ok(ClaimOutcome::Claimed(_))
    ));
    assert_eq!(test.db.release_items_of_worker("stopping").await.expect("release"), 1);
    let Ok(ClaimOutcome::Claimed(next)) = test.db.claim_item(ids[0], "next", Duration::from_secs(60)).await else {
        panic!("the released item can be claimed at once");
    };

    test.db.fail_claimed_item(&next.claim, "drive_backend_error", "boom").await.expect("fail");
    test.db.fail_item_unclaimed(ids[1], None, "drive_backend_error", "boom").await.expect("fail");
    let job_row = test.db.get_job(tenant, job_id).await.expect("get").expect("job");
    assert_eq!(job_row.status, JobStatus::Failed);

    let requeued = test.db.requeue_failed_items(job_id, "import.item", encode).await.expect("requeue");
    assert_eq!(requeued.len(), 2);
    assert_eq!(drain_outbox(&test.db).await.len(), 2);
    let job_row = test.db.get_job(tenant, job_id).await.expect("get").expect("job");
    assert_eq!((job_row.failed_files, job_row.status), (0, JobStatus::Processing));
    let counts = test.db.item_status_counts(job_id).await.expect("counts");
    assert_eq!(counts, vec![(ItemStatus::Pending, 2)]);
    // Nothing failed any more: a second requeue is a no-op.
    assert!(test.db.requeue_failed_items(job_id, "import.item", encode).await.expect("requeue").is_empty());
}
