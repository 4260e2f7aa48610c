//! `ferryctl` as an operator runs it: a real process against a real Postgres.

use std::process::Command;

use ferry_db::testing::test_server_url;

fn ferryctl(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferryctl"))
        .args(["--database-url", database_url])
        .args(args)
        .output()
        .expect("ferryctl runs")
}

#[tokio::test]
async fn migrate_creates_the_database_and_api_keys_print_only_the_key() {
    let url = format!("{}/ferryctl_test_{}", test_server_url().trim_end_matches('/'), uuid::Uuid::new_v4().simple());

    let migrated = ferryctl(&url, &["migrate"]);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(String::from_utf8_lossy(&migrated.stderr).contains("created database"));
    let again = ferryctl(&url, &["migrate"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("applied 0 migration(s)"), "migrate is idempotent");

    let created = ferryctl(&url, &["api-key", "create", "--tenant", "acme"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the key on stdout: {stdout:?}");
    let key = lines[0];
    assert!(key.starts_with("fry_") && key.len() >= 36, "{key}");
    assert!(key[4..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));

    let db = ferry_db::Db::connect(&url, 1).expect("pool");
    let owner = db.find_api_key(&ferry_crypto::hash_api_key(key)).await.expect("lookup").expect("key stored");
    let tenant = db.ensure_tenant("acme").await.expect("tenant");
    assert_eq!(owner.tenant_id.0, tenant.id);
    assert_ne!(owner.key_hash, key, "stored hashed");

    assert_eq!(owner.scopes, None, "a key made without --scopes may do everything");

    let scoped = ferryctl(&url, &["api-key", "create", "--tenant", "acme", "--scopes", "library:read,files:*"]);
    assert!(scoped.status.success(), "{}", String::from_utf8_lossy(&scoped.stderr));
    let scoped_key = String::from_utf8(scoped.stdout).expect("utf-8").trim().to_owned();
    let owner = db.find_api_key(&ferry_crypto::hash_api_key(&scoped_key)).await.expect("lookup").expect("stored");
    use ferry_core::Scope;
    assert_eq!(owner.scopes, Some(vec![Scope::LibraryRead, Scope::FilesRead, Scope::FilesWrite]));
    let unknown = ferryctl(&url, &["api-key", "create", "--tenant", "acme", "--scopes", "library:delete"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown scope \"library:delete\""));

    let empty = ferryctl(&url, &["api-key", "create", "--tenant", "  "]);
    assert!(!empty.status.success());
    drop(db);
    ferry_db::drop_database(&url).await.expect("cleanup");
}

fn amqp_url() -> String {
    std::env::var("FERRY_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn run(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferryctl")).args(args).output().expect("ferryctl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn requeue_failed_puts_a_jobs_failed_items_back_through_the_outbox() {
    use ferry_core::{ConnectionId, FileId, ItemId, JobId, TenantId};
    use ferry_db::jobs::{NewImportItem, NewImportJob};

    let test = ferry_db::testing::TestDatabase::create().await.expect("database");
    let tenant = TenantId(test.db.ensure_tenant("ops").await.expect("tenant").id);
    let (connection, _) = test
        .db
        .upsert_connection(ferry_db::connections::ConnectionUpsert {
            id: ConnectionId::new(),
            tenant_id: tenant,
            provider: "google_drive",
            provider_user_id: "sub-ops",
            provider_email: Some("ops@example.com"),
            provider_display_name: None,
            access_token_sealed: "sealed",
            refresh_token_sealed: None,
            token_expires_at: chrono_now(),
            scopes: None,
        })
        .await
        .expect("connection");
    let job_id = JobId::new();
    let items: Vec<NewImportItem> = (0..3)
        .map(|i| NewImportItem {
            item_id: ItemId::new(),
            file_id: FileId::new(),
            drive_file_id: format!("d{i}"),
            name: format!("f{i}"),
            mime_type: None,
            command: vec![],
        })
        .collect();
    let ids: Vec<ItemId> = items.iter().map(|item| item.item_id).collect();
    test.db
        .create_import_job(NewImportJob {
            job_id,
            tenant_id: tenant,
            connection_id: ConnectionId(connection.id),
            tags: vec![],
            folder_id: None,
            provider_metadata: None,
            items,
            command_name: "import.item".into(),
            traceparent: None,
        })
        .await
        .expect("job");
    test.db.relay_outbox_batch(100, async |_| Ok::<(), std::io::Error>(())).await.expect("drain");
    test.db.fail_item_unclaimed(ids[0], None, "drive_backend_error", "x").await.expect("fail");
    test.db.fail_item_unclaimed(ids[2], None, "drive_backend_error", "x").await.expect("fail");

    let (ok, stdout, stderr) = run(&["--database-url", &test.url, "jobs", "requeue-failed", &job_id.to_string()]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "2");
    assert_eq!(test.db.outbox_backlog().await.expect("backlog").0, 2, "one new message per requeued item");
    let job = test.db.get_job(tenant, job_id).await.expect("get").expect("job");
    assert_eq!((job.failed_files, job.status.as_str()), (0, "processing"));

    let (ok, _, stderr) = run(&["--database-url", &test.url, "jobs", "requeue-failed", "job_nope"]);
    assert!(!ok && stderr.contains("invalid job id"), "{stderr}");
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_list_and_requeue_against_rabbitmq() {
    use ferry_queue::{Broker, CommandKind, ConsumerConfig, Outcome, Publisher, Topology};

    let prefix = format!("ferryctl-{}", uuid::Uuid::new_v4().simple());
    let broker = Broker::connect(&amqp_url(), "ferryctl-test").await.expect("broker");
    let topology = Topology::new(prefix.clone(), 5);
    topology.declare(&broker).await.expect("declare");
    let publisher = Publisher::new(&broker, &topology).await.expect("publisher");
    let payload = ferry_messages::Message::encode_to_vec(&ferry_messages::ImportItem {
        job_id: "job-1".into(),
        item_id: "item-1".into(),
        tenant_id: "t".into(),
        traceparent: String::new(),
    });
    publisher.publish(CommandKind::ImportItem, "41", &payload).await.expect("publish");
    publisher.publish(CommandKind::ImportItem, "42", b"\xff\xff").await.expect("publish");
    let shutdown = ferry_queue::CancellationToken::new();
    let consumer = {
        let (broker, shutdown, queue) = (broker.clone(), shutdown.clone(), topology.queue(CommandKind::ImportItem));
        tokio::spawn(async move {
            let config = ConsumerConfig { queue, consumer_tag: "rejecter".into(), prefetch: 2, retry_queues: vec![] };
            ferry_queue::run_consumer(&broker, config, shutdown, |_| async { Outcome::Reject }).await
        })
    };
    let dead = topology.dead_letter_queue(CommandKind::ImportItem);
    for _ in 0..300 {
        if ferry_queue::queue_depth(&broker, &dead).await.expect("depth") == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    consumer.await.expect("join").expect("consumer");

    let url = amqp_url();
    let common = [
        "--database-url",
        "postgres://unused@127.0.0.1:1/x",
        "--amqp-url",
        url.as_str(),
        "--queue-prefix",
        prefix.as_str(),
    ];
    let (ok, stdout, stderr) = run(&[&common[..], &["dead-letters", "list", "--queue", "import"]].concat());
    assert!(ok, "{stderr}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("41\trejected\t") && lines[0].ends_with("\tjob-1\titem-1"), "{}", lines[0]);
    assert!(lines[1].starts_with("42\trejected\t") && lines[1].contains("undecodable"), "{}", lines[1]);

    let (ok, stdout, stderr) = run(&[&common[..], &["dead-letters", "requeue", "--queue", "import"]].concat());
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "2");
    assert_eq!(ferry_queue::queue_depth(&broker, &dead).await.expect("depth"), 0);
    assert_eq!(ferry_queue::queue_depth(&broker, &topology.queue(CommandKind::ImportItem)).await.expect("depth"), 2);
    topology.delete(&broker).await.expect("cleanup");
    broker.close().await;
}
