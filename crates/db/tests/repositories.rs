//! Repository behaviour against a real Postgres, one fresh database per test.

use std::time::Duration;

use chrono::Utc;
use ferry_core::{ConnectionId, ItemId, ItemStatus, JobId, JobStatus, TenantId};
use ferry_db::connections::{ConnectionFilter, ConnectionUpsert};
use ferry_db::jobs::{ClaimOutcome, ImportedBlob, NewImportJob};
use ferry_db::outbox::OutboxListener;
use ferry_db::testing::{TestDatabase, claimed_by};
use ferry_db::{Db, DbError, oauth_states::NewOAuthState};

async fn tenant_with_connection(db: &Db, name: &str) -> (TenantId, ConnectionId) {
    ferry_db::testing::tenant_with_connection(db, name).await.expect("tenant with a connection")
}

fn import_job(tenant: TenantId, connection: ConnectionId, files: usize) -> NewImportJob {
    ferry_db::testing::import_job(tenant, connection, files)
}

fn blob(key: &str) -> ImportedBlob<'_> {
    ImportedBlob {
        rename_to: None,
        size_bytes: 3,
        mime_type: "application/octet-stream",
        sha256: "s",
        md5: "m",
        blob_key: key,
    }
}

#[tokio::test]
async fn reconnecting_the_same_account_updates_the_connection_in_place() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, first) = tenant_with_connection(&test.db, "acme").await;
    let (again, is_new) = test
        .db
        .upsert_connection(ConnectionUpsert {
            id: ConnectionId::new(),
            tenant_id: tenant,
            provider: "google_drive",
            provider_user_id: "sub-1",
            provider_email: Some("new@example.com"),
            provider_display_name: Some("A"),
            access_token_sealed: "sealed-access-2",
            refresh_token_sealed: None,
            token_expires_at: Utc::now(),
            scopes: None,
        })
        .await
        .expect("upsert");
    assert!(!is_new);
    assert_eq!(again.id, first.0);
    assert_eq!(test.db.tenant(tenant).find_connection_id("google_drive", "sub-1").await.expect("find"), Some(first));
    assert_eq!(again.provider_email.as_deref(), Some("new@example.com"));
    let tokens = test.db.connection_tokens(first).await.expect("tokens").expect("exists");
    assert_eq!(tokens.refresh_token_sealed.as_deref(), Some("sealed-refresh"), "refresh token kept");

    let other = TenantId(test.db.ensure_tenant("other").await.expect("tenant").id);
    assert!(test.db.tenant(other).get_connection(first).await.expect("query").is_none());
    let filter = ConnectionFilter { provider: None, active_only: true, limit: 10, offset: 0 };
    assert_eq!(test.db.tenant(other).list_connections(&filter).await.expect("list").1, 0);
    assert!(test.db.tenant(tenant).disconnect_connection(first).await.expect("disconnect"));
    assert_eq!(test.db.tenant(tenant).list_connections(&filter).await.expect("list").1, 0);
}

#[tokio::test]
async fn oauth_states_are_single_use_and_bound_to_their_tenant() {
    let test = TestDatabase::create().await.expect("test database");
    let tenant = TenantId(test.db.ensure_tenant("acme").await.expect("tenant").id);
    let other = TenantId(test.db.ensure_tenant("other").await.expect("tenant").id);
    let new = |state| NewOAuthState {
        state,
        provider: "google_drive",
        pkce_verifier_sealed: "v",
        redirect_uri: None,
        expires_at: Utc::now() + chrono::Duration::minutes(10),
    };
    test.db.tenant(tenant).insert_oauth_state(new("s1")).await.expect("insert");
    assert!(test.db.consume_oauth_state("s1", "google_drive", Some(other)).await.expect("q").is_none());
    assert!(test.db.consume_oauth_state("s1", "google_drive", Some(tenant)).await.expect("q").is_some());
    assert!(test.db.consume_oauth_state("s1", "google_drive", Some(tenant)).await.expect("q").is_none());

    let mut expired = new("s2");
    expired.expires_at = Utc::now() - chrono::Duration::seconds(1);
    test.db.tenant(tenant).insert_oauth_state(expired).await.expect("insert");
    assert!(test.db.consume_oauth_state("s2", "google_drive", None).await.expect("q").is_none());
}

/// Rows carry the status enums; a stored word this version does not know fails the read with a message naming
/// it, rather than passing through as a string some caller compares.
#[tokio::test]
async fn an_unknown_stored_status_word_is_a_read_error() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "acme").await;
    let new = import_job(tenant, connection, 1);
    let job_id = new.job_id;
    let job = test.db.create_import_job(new).await.expect("job");
    assert_eq!((job.kind, job.status), (ferry_core::JobKind::Import, JobStatus::Pending));
    ferry_db::testing::write_job_status_word(&test.db, job_id, "exploded").await.expect("write");
    let err = test.db.get_job(tenant, job_id).await.expect_err("an unknown word cannot be read");
    assert!(err.to_string().contains("unknown job status `exploded`"), "{err}");
    ferry_db::testing::write_job_status_word(&test.db, job_id, "completed").await.expect("write");
    assert_eq!(test.db.get_job(tenant, job_id).await.expect("read").expect("job").status, JobStatus::Completed);
}

#[tokio::test]
async fn items_finish_once_and_the_job_status_follows_its_counters() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "acme").await;
    let new = import_job(tenant, connection, 3);
    let items: Vec<ItemId> = new.items.iter().map(|i| i.item_id).collect();
    let job = test.db.create_import_job(new).await.expect("job");
    assert_eq!(job.status, JobStatus::Pending);
    assert_eq!(test.db.outbox_backlog().await.expect("backlog").0, 3);

    let ClaimOutcome::Claimed(claimed) =
        test.db.claim_item(items[0], "w1", Duration::from_secs(60)).await.expect("claim")
    else {
        panic!("expected a claim");
    };
    assert_eq!(claimed.item.attempts, 1);
    assert_eq!(claimed.job.status, JobStatus::Processing);
    assert!(matches!(
        test.db.claim_item(items[0], "w2", Duration::from_secs(60)).await.expect("claim"),
        ClaimOutcome::LeasedElsewhere
    ));

    let done = test.db.complete_import_item(&claimed.claim, blob("k0")).await.expect("complete");
    assert_eq!(done.job_status, Some(JobStatus::Processing));
    let duplicate = test.db.complete_import_item(&claimed.claim, blob("k0")).await;
    assert!(matches!(duplicate, Err(DbError::LeaseLost { .. })), "a duplicate completion is refused: {duplicate:?}");
    assert!(matches!(
        test.db.claim_item(items[0], "w2", Duration::from_secs(60)).await.expect("claim"),
        ClaimOutcome::AlreadyFinished
    ));

    // An expired lease lets another worker take the item over.
    assert!(matches!(
        test.db.claim_item(items[1], "w1", Duration::from_millis(1)).await.expect("claim"),
        ClaimOutcome::Claimed(_)
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = claimed_by(&test.db, items[1], "w2").await;
    test.db.complete_import_item(&second.claim, blob("k1")).await.expect("complete");
    let third = claimed_by(&test.db, items[2], "w1").await;
    let last = test.db.fail_claimed_item(&third.claim, "drive_not_found", "gone").await.expect("fail");
    assert_eq!(last.job_status, Some(JobStatus::CompletedWithErrors));

    let job = test.db.get_job(tenant, JobId(job.id)).await.expect("job").expect("exists");
    assert_eq!((job.completed_files, job.failed_files, job.status.as_str()), (2, 1, "completed_with_errors"));
    assert!(job.completed_at.is_some());
    let files = test.db.tenant(tenant).list_files(10, 0).await.expect("files").0;
    let mut statuses: Vec<_> = files.iter().map(|f| f.status.as_str()).collect();
    statuses.sort();
    assert_eq!(statuses, ["failed", "ready", "ready"]);
}

#[tokio::test]
async fn the_relay_marks_rows_published_only_when_publishing_succeeds() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "acme").await;
    let mut listener = OutboxListener::connect(&test.url).await.expect("listener");
    test.db.create_import_job(import_job(tenant, connection, 2)).await.expect("job");
    assert!(listener.wait(Duration::from_secs(10)).await.expect("notification"), "insert notifies the relay");

    let failed = test.db.relay_outbox_batch(10, async |_rows| Err::<(), _>(std::io::Error::other("broker down"))).await;
    assert!(failed.is_err());
    assert_eq!(test.db.outbox_backlog().await.expect("backlog").0, 2);

    let published = test
        .db
        .relay_outbox_batch(10, async |rows| {
            assert_eq!(rows.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(), [vec![0u8], vec![1u8]]);
            Ok::<(), std::io::Error>(())
        })
        .await
        .expect("relay");
    assert_eq!(published, 2);
    assert_eq!(test.db.outbox_backlog().await.expect("backlog").0, 0);
}

#[tokio::test]
async fn export_folders_are_claimed_once_per_job() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "acme").await;
    let new = import_job(tenant, connection, 2);
    let items: Vec<ItemId> = new.items.iter().map(|i| i.item_id).collect();
    let job = test.db.create_import_job(new).await.expect("job");
    let (a, b) = (claimed_by(&test.db, items[0], "w1").await, claimed_by(&test.db, items[1], "w2").await);
    let first = test.db.claim_job_folder(&a.claim, JobId(job.id), "folder-a").await.expect("claim");
    let second = test.db.claim_job_folder(&b.claim, JobId(job.id), "folder-b").await.expect("claim");
    assert_eq!((first.as_str(), second.as_str()), ("folder-a", "folder-a"));
}

#[tokio::test]
async fn an_item_handed_out_again_after_a_cancel_is_cancelled_not_run() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "acme").await;
    let new = import_job(tenant, connection, 3);
    let items: Vec<ItemId> = new.items.iter().map(|i| i.item_id).collect();
    let job = test.db.create_import_job(new).await.expect("job");
    let job_id = JobId(job.id);

    let running = claimed_by(&test.db, items[0], "w1").await;
    test.db.tenant(tenant).cancel_job(job_id).await.expect("cancel");
    let job = test.db.get_job(tenant, job_id).await.expect("job").expect("exists");
    assert_eq!((job.status.as_str(), job.cancelled_files), ("processing", 2), "the running item may finish");

    // The running item hits a transient failure and is given back: it must not run again.
    test.db.release_item(&running.claim, "drive_backend_error", "503").await.expect("release");
    assert!(matches!(
        test.db.claim_item(items[0], "w2", Duration::from_secs(60)).await.expect("claim"),
        ClaimOutcome::AlreadyFinished
    ));
    let job = test.db.get_job(tenant, job_id).await.expect("job").expect("exists");
    assert_eq!((job.status, job.cancelled_files, job.completed_files), (JobStatus::Cancelled, 3, 0));
    assert!(job.completed_at.is_some());
    let statuses: Vec<ItemStatus> =
        test.db.list_job_items(tenant, job_id).await.expect("items").into_iter().map(|i| i.status).collect();
    assert_eq!(statuses, [ItemStatus::Cancelled; 3]);
}

#[tokio::test]
async fn a_job_cancelled_while_an_item_runs_ends_cancelled_when_it_finishes() {
    let test = TestDatabase::create().await.expect("test database");
    let (tenant, connection) = tenant_with_connection(&test.db, "acme").await;
    let new = import_job(tenant, connection, 2);
    let items: Vec<ItemId> = new.items.iter().map(|i| i.item_id).collect();
    let job_id = JobId(test.db.create_import_job(new).await.expect("job").id);
    let (first, second) = (claimed_by(&test.db, items[0], "w1").await, claimed_by(&test.db, items[1], "w1").await);
    test.db.tenant(tenant).cancel_job(job_id).await.expect("cancel");
    test.db.complete_import_item(&first.claim, blob("k0")).await.expect("complete");
    let last = test.db.complete_import_item(&second.claim, blob("k1")).await.expect("complete");
    assert_eq!(last.job_status, Some(JobStatus::Cancelled));
}
