//! Reliability behaviour that needs no broker or database restarts, so it runs with every other test: lost
//! messages and dead workers are reaped, Drive rate limits and 5xx are retried with backoff, and cut downloads
//! resume with Range. (The process-killing scenarios are in the `ferry-chaos` binary, run by `make chaos`.)

use std::time::Duration;

use bytes::Bytes;
use ferry_chaos::test_bytes;
use ferry_core::ItemStatus;
use ferry_testkit::{TestEnv, Workers};
use ferry_transfer::{WorkerKind, WorkerService};
use reqwest::Method;
use serde_json::{Value, json};

async fn import(env: &TestEnv, connection_id: &str, files: &[(String, String)]) -> (String, Vec<String>) {
    let files: Vec<Value> = files.iter().map(|(id, name)| json!({ "id": id, "name": name })).collect();
    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection_id, "files": files }))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let image_ids = body["image_ids"].as_array().expect("ids").iter().map(|v| v.as_str().expect("id").to_owned());
    (body["job_id"].as_str().expect("job").to_owned(), image_ids.collect())
}

async fn content(env: &TestEnv, image_id: &str) -> Bytes {
    let response = env.api(Method::GET, &format!("/files/{image_id}/content")).send().await.expect("download");
    assert_eq!(response.status(), 200, "{image_id}");
    response.bytes().await.expect("bytes")
}

async fn connect(env: &TestEnv, email: &str) -> String {
    let connected = env.connect_drive(email).await.expect("connect");
    connected["connection"]["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imports_complete_under_30_percent_drive_errors_with_backoff_not_a_hot_loop() {
    let env = TestEnv::start_with(Workers::ALL, &[("importer.concurrency", "8")]).await.expect("env");
    let drive = env.emulator.state();
    let email = "flaky@example.com";
    drive.ensure_user(email, "Flaky");
    let files: Vec<(String, String, Bytes)> = (0..40)
        .map(|n| {
            let bytes = test_bytes(20_000 + n * 997, n as u64);
            let name = format!("f{n}.bin");
            (drive.create_file(email, None, &name, "application/octet-stream", bytes.clone()), name, bytes)
        })
        .collect();
    let connection_id = connect(&env, email).await;
    drive
        .update_faults(|faults| {
            faults.error_rates.rate_limit_429 = 0.1;
            faults.error_rates.user_rate_limit_403 = 0.05;
            faults.error_rates.rate_limit_403 = 0.05;
            faults.error_rates.backend_error_503 = 0.1;
        })
        .expect("faults");
    drive.reset_counters();

    let pairs: Vec<(String, String)> = files.iter().map(|(id, name, _)| (id.clone(), name.clone())).collect();
    let (job_id, image_ids) = import(&env, &connection_id, &pairs).await;
    let job = env.wait_for_job(&job_id, Duration::from_secs(240)).await.expect("job finishes");
    let counters = drive.counters();
    drive.update_faults(|faults| *faults = Default::default()).expect("clear faults");
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["completed_files"], 40);
    for (image_id, (_, name, bytes)) in image_ids.iter().zip(&files) {
        assert!(content(&env, image_id).await == *bytes, "{name} differs");
    }
    let injected: u64 = counters.injected.values().sum();
    let per_file = counters.total as f64 / files.len() as f64;
    println!(
        "requests {} for {} files ({per_file:.1}/file), injected errors {injected}: {:?}",
        counters.total,
        files.len(),
        counters.injected
    );
    assert!(injected > 0, "faults were injected");
    // Two calls per file when nothing fails; with 30% failures and at most 4 tries per call and bounded
    // attempts per item, a hot loop would show up as hundreds of requests per file.
    assert!(per_file < 12.0, "{per_file} requests per file looks like a retry loop");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_messages_and_dead_workers_items_are_reaped_and_finish() {
    let overrides = [
        ("reliability.reaper_interval_secs", "1"),
        ("reliability.stale_pending_secs", "2"),
        ("reliability.lease_secs", "3"),
    ];
    let env = TestEnv::start_with(Workers::NONE, &overrides).await.expect("env");
    let drive = env.emulator.state();
    let email = "reaped@example.com";
    drive.ensure_user(email, "Reaped");
    let files: Vec<(String, String)> = (0..6)
        .map(|n| {
            let name = format!("r{n}.txt");
            (drive.create_file(email, None, &name, "text/plain", Bytes::from(format!("file {n}"))), name)
        })
        .collect();
    let connection_id = connect(&env, email).await;
    let (job_id, image_ids) = import(&env, &connection_id, &files).await;

    // The relay publishes the six messages; then the broker "loses" them all.
    let broker = ferry_queue::Broker::connect(&ferry_testkit::test_amqp_url(), "chaos-test").await.expect("broker");
    let topology = ferry_queue::Topology::new(env.settings.amqp.queue_prefix.clone(), env.settings.amqp.delivery_limit);
    let queue = topology.queue(ferry_queue::CommandKind::ImportItem);
    let mut purged = 0;
    for _ in 0..200 {
        purged += ferry_queue::purge_queue(&broker, &queue).await.expect("purge");
        if purged >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(purged, 6, "all six messages were published, then lost");
    // And one item is held by a worker that died (its lease is already over).
    let db = &env.database.db;
    let items = db.list_job_items(env.tenant_id, ferry_core::JobId::parse(&job_id).expect("id")).await.expect("items");
    let claimed = db.claim_item(items[0].item_id(), "dead-worker", Duration::ZERO).await.expect("claim");
    assert!(matches!(claimed, ferry_db::jobs::ClaimOutcome::Claimed(_)));

    let worker = WorkerService::start(&env.settings, WorkerKind::Importer).expect("worker");
    let job = env.wait_for_job(&job_id, Duration::from_secs(60)).await.expect("job finishes after reaping");
    assert_eq!(job["status"], "completed", "{job}");
    for (image_id, (_, name)) in image_ids.iter().zip(&files) {
        let n = name.trim_start_matches('r').trim_end_matches(".txt");
        assert_eq!(content(&env, image_id).await, Bytes::from(format!("file {n}")));
    }
    worker.stop(Duration::from_secs(10)).await;
    broker.close().await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cut_downloads_resume_with_range_in_the_same_attempt() {
    let env = TestEnv::start().await.expect("env");
    let drive = env.emulator.state();
    let email = "cut@example.com";
    drive.ensure_user(email, "Cut");
    let bytes = test_bytes(3 * 1024 * 1024 + 123, 7);
    let file_id = drive.create_file(email, None, "big.bin", "application/octet-stream", bytes.clone());
    let connection_id = connect(&env, email).await;
    drive
        .update_faults(|faults| {
            faults.cut_download_after_bytes = Some(1024 * 1024);
            faults.cut_download_times = Some(2);
        })
        .expect("faults");
    drive.reset_counters();

    let (job_id, image_ids) = import(&env, &connection_id, &[(file_id, "big.bin".to_owned())]).await;
    let job = env.wait_for_job(&job_id, Duration::from_secs(60)).await.expect("job finishes");
    assert_eq!(job["status"], "completed", "{job}");
    assert!(content(&env, &image_ids[0]).await == bytes, "bytes identical after two cuts");
    let counters = drive.counters();
    assert_eq!(counters.injected.get("cut_download"), Some(&2), "{:?}", counters.injected);
    let items = env
        .database
        .db
        .list_job_items(env.tenant_id, ferry_core::JobId::parse(&job_id).expect("id"))
        .await
        .expect("items");
    assert_eq!(items[0].attempts, 1, "resumed within the first attempt, not retried from scratch");
    // Downloaded bytes: the whole file once plus nothing re-sent (Range continues where the cut happened).
    println!(
        "downloaded {} bytes for a {}-byte file",
        counters.users.get(email).map_or(0, |u| u.downloaded_bytes),
        bytes.len()
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_stopped_past_its_deadline_hands_its_items_back() {
    let env = TestEnv::start_with(Workers::NONE, &[("importer.concurrency", "4")]).await.expect("env");
    let drive = env.emulator.state();
    let email = "stopping@example.com";
    drive.ensure_user(email, "Stopping");
    let files: Vec<(String, String)> = (0..6)
        .map(|n| {
            let name = format!("s{n}.txt");
            (drive.create_file(email, None, &name, "text/plain", Bytes::from(format!("slow {n}"))), name)
        })
        .collect();
    let connection_id = connect(&env, email).await;
    // Every Drive request takes 2 s, so items are in flight when the worker is told to stop.
    drive.update_faults(|faults| faults.latency_ms = 2000).expect("faults");
    let (job_id, _) = import(&env, &connection_id, &files).await;
    let job = ferry_core::JobId::parse(&job_id).expect("id");

    let worker = WorkerService::start(&env.settings, WorkerKind::Importer).expect("worker");
    let mut running = 0;
    for _ in 0..200 {
        running = env
            .database
            .db
            .item_status_counts(job)
            .await
            .expect("counts")
            .into_iter()
            .find(|(s, _)| *s == ItemStatus::Running)
            .map_or(0, |(_, n)| n);
        if running > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running > 0, "items are in flight");
    worker.stop(Duration::from_millis(100)).await;
    let counts = env.database.db.item_status_counts(job).await.expect("counts");
    assert!(
        counts.iter().all(|(status, _)| *status != ItemStatus::Running),
        "no item left leased by the stopped worker: {counts:?}"
    );

    drive.update_faults(|faults| faults.stall_upload_after_bytes = None).expect("faults");
    let next = WorkerService::start(&env.settings, WorkerKind::Importer).expect("worker");
    let finished = env.wait_for_job(&job_id, Duration::from_secs(60)).await.expect("job finishes");
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["completed_files"], 6);
    next.stop(Duration::from_secs(10)).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daily_caps_and_missing_files_fail_at_once_without_a_retry_loop() {
    let env = TestEnv::start().await.expect("env");
    let drive = env.emulator.state();
    let email = "capped@example.com";
    drive.ensure_user(email, "Capped");
    let existing = drive.create_file(email, None, "real.bin", "application/octet-stream", test_bytes(50_000, 3));
    let connection_id = connect(&env, email).await;

    // A file that does not exist (404) fails without retries; the real one imports.
    let (job_id, image_ids) = import(
        &env,
        &connection_id,
        &[(existing, "real.bin".to_owned()), ("no-such-file".to_owned(), "gone.bin".to_owned())],
    )
    .await;
    let job = env.wait_for_job(&job_id, Duration::from_secs(60)).await.expect("import finishes");
    assert_eq!((job["completed_files"].as_i64(), job["failed_files"].as_i64()), (Some(1), Some(1)), "{job}");
    let items = env
        .database
        .db
        .list_job_items(env.tenant_id, ferry_core::JobId::parse(&job_id).expect("id"))
        .await
        .expect("items");
    assert_eq!(items[1].error_code.as_deref(), Some("drive_not_found"));
    assert_eq!(items[1].attempts, 1, "a 404 is not retried");

    // The daily upload cap is reached: the export fails with a clear code on its first attempt.
    drive.update_faults(|faults| faults.daily_upload_bytes = Some(10)).expect("faults");
    drive.reset_counters();
    let response = env
        .api(Method::POST, "/cloud-storage/export")
        .json(&json!({ "connection_id": connection_id, "image_ids": [image_ids[0]] }))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let export_id = body["job_id"].as_str().expect("job").to_owned();
    let job = env.wait_for_job(&export_id, Duration::from_secs(60)).await.expect("export finishes");
    assert_eq!(job["status"], "failed", "{job}");
    let items = env
        .database
        .db
        .list_job_items(env.tenant_id, ferry_core::JobId::parse(&export_id).expect("id"))
        .await
        .expect("items");
    assert_eq!(items[0].error_code.as_deref(), Some("drive_daily_limit"), "{:?}", items[0].error_message);
    assert_eq!(items[0].attempts, 1, "a daily cap is not retried in a loop");
    let requests = drive.counters().total;
    assert!(requests < 10, "{requests} Drive requests for one capped upload");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_export_resumes_its_upload_session_instead_of_starting_over() {
    let overrides = [("reliability.lease_secs", "3"), ("reliability.reaper_interval_secs", "1")];
    let env = TestEnv::start_with(Workers::NONE, &overrides).await.expect("env");
    let drive = env.emulator.state();
    let email = "resume@example.com";
    drive.ensure_user(email, "Resume");
    let bytes = test_bytes(4 * 1024 * 1024 + 777, 11);
    let file_id = drive.create_file(email, None, "large.bin", "application/octet-stream", bytes.clone());
    let connection_id = connect(&env, email).await;
    let importer = WorkerService::start(&env.settings, WorkerKind::Importer).expect("importer");
    let (import_id, image_ids) = import(&env, &connection_id, &[(file_id, "large.bin".to_owned())]).await;
    env.wait_for_job(&import_id, Duration::from_secs(60)).await.expect("import finishes");
    importer.stop(Duration::from_secs(5)).await;

    // Drive stops reading the upload after 1 MiB: the exporter is stopped (past a 10 ms deadline) part-way through.
    drive
        .update_faults(|faults| {
            faults.stall_upload_after_bytes = Some(1024 * 1024);
            faults.stall_for_ms = None;
        })
        .expect("faults");
    drive.reset_counters();
    let response = env
        .api(Method::POST, "/cloud-storage/export")
        .json(&json!({ "connection_id": connection_id, "image_ids": [image_ids[0]], "folder_name": "Resumed" }))
        .send()
        .await
        .expect("export");
    let export_id = response.json::<Value>().await.expect("json")["job_id"].as_str().expect("job").to_owned();
    let first = WorkerService::start(&env.settings, WorkerKind::Exporter).expect("exporter");
    let mut uploaded_before = 0;
    for _ in 0..200 {
        uploaded_before = drive.counters().users.get(email).map_or(0, |u| u.uploaded_bytes);
        if uploaded_before >= 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(uploaded_before >= 1024 * 1024, "the upload was under way");
    first.stop(Duration::from_millis(10)).await;

    drive.update_faults(|faults| faults.stall_upload_after_bytes = None).expect("faults");
    let second = WorkerService::start(&env.settings, WorkerKind::Exporter).expect("exporter");
    let job = env.wait_for_job(&export_id, Duration::from_secs(60)).await.expect("export finishes");
    assert_eq!(job["status"], "completed", "{job}");
    let uploaded = drive.counters().users.get(email).map_or(0, |u| u.uploaded_bytes);
    println!("uploaded {uploaded} bytes for a {}-byte file (stopped after {uploaded_before})", bytes.len());
    // Starting over would send the bytes before the interruption twice; resuming asks Drive what it holds and
    // sends only the rest.
    assert_eq!(uploaded, bytes.len() as u64, "{uploaded} bytes uploaded for {}", bytes.len());
    let root = drive.root_folder_id(email);
    let folder = drive.children(&root).into_iter().find(|f| f.name == "Resumed").expect("export folder");
    let exported = drive.children(&folder.id);
    assert_eq!(exported.len(), 1, "exactly one file in Drive");
    use md5::Digest;
    assert_eq!(exported[0].md5.as_deref(), Some(hex::encode(md5::Md5::digest(&bytes)).as_str()));
    second.stop(Duration::from_secs(5)).await;
    env.shutdown().await;
}
