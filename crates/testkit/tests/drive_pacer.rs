//! The shared Drive pacer end to end: two importers (two processes as far as Postgres, RabbitMQ and Drive can
//! tell) import for one Google user whose emulated quota is 20 requests per second. The assertions are about
//! outcomes and bookkeeping, not about how fast the machine is.

use std::time::Duration;

use ferry_testkit::drive_emulator::seed::filler;
use ferry_testkit::{TestEnv, Workers};
use ferry_transfer::WorkerKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_importers_share_one_adaptive_pacer_under_a_users_quota() {
    let mut env =
        TestEnv::start_with(Workers { importer: true, exporter: false }, &[]).await.expect("test environment");
    env.start_another_worker(WorkerKind::Importer).expect("second importer");
    let drive = env.emulator.state();
    let email = "quota@example.com";
    drive.ensure_user(email, "Quota User");
    let folder = drive.create_folder(email, None, "Many");
    let files: Vec<Value> = (0..80)
        .map(|n| {
            let name = format!("f{n:03}.bin");
            let id = drive.create_file(email, Some(&folder), &name, "application/octet-stream", filler(1024, n));
            json!({ "id": id, "name": name, "mime_type": "application/octet-stream" })
        })
        .collect();
    let connected = env.connect_drive(email).await.expect("connect");
    let connection_id = connected["connection"]["id"].as_str().expect("connection id").to_owned();
    drive.update_faults(|faults| faults.user_requests_per_second = Some(20)).expect("quota");

    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection_id, "files": files }))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    let job: Value = response.json().await.expect("job");
    let job_id = job["job_id"].as_str().expect("job id").to_owned();
    let done = env.wait_for_job(&job_id, Duration::from_secs(300)).await.expect("the import ends");
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!((done["completed_files"].as_u64(), done["failed_files"].as_u64()), (Some(80), Some(0)), "{done}");

    // Every refusal Drive made reached the one shared pacer row, whichever importer saw it, and the rate came
    // down from its generous start.
    let counters = drive.counters();
    let user = counters.users.get(email).expect("the user's counters");
    let pacers = env.database.db.drive_pacers().await.expect("pacers");
    assert_eq!(pacers.len(), 1, "one row for the one Google user: {pacers:?}");
    let pacer = &pacers[0];
    assert!(user.injected_errors > 0, "the quota was reached: {user:?}");
    assert_eq!(pacer.refusals, i64::try_from(user.injected_errors).expect("count"), "{pacer:?} / {user:?}");
    assert!(pacer.ceiling.is_some() && pacer.rate < 200.0, "the rate adapted: {pacer:?}");
    println!(
        "requests {} refused {} ({:.1}%), final rate {:.1}/s, last refusal at {:?}/s",
        user.requests,
        user.injected_errors,
        100.0 * user.injected_errors as f64 / user.requests as f64,
        pacer.rate,
        pacer.ceiling
    );
    env.shutdown().await;
}
