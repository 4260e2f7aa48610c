//! Imports check every byte against Drive's checksums, hashing each byte once: bytes damaged on the way (the
//! emulator flips the first byte of a download) are never kept, the item is retried, and what is kept carries
//! the MD5 and SHA-256 of the real content.

use std::time::Duration;

use ferry_testkit::drive_emulator::seed::filler;
use ferry_testkit::{TestEnv, Workers};
use md5::Md5;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn json_of(response: reqwest::Response, expected: StatusCode) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(status, expected, "unexpected status; body: {body}");
    body
}

/// Starts an import of one file of `bytes` and returns the job and the image ids.
async fn import_one(env: &TestEnv, email: &str, bytes: &[u8]) -> (String, String) {
    let drive = env.emulator.state();
    drive.ensure_user(email, "Integrity User");
    let id =
        drive.create_file(email, None, "data.bin", "application/octet-stream", bytes::Bytes::copy_from_slice(bytes));
    let connected = env.connect_drive(email).await.expect("connect");
    let connection_id = connected["connection"]["id"].as_str().expect("connection id").to_owned();
    let created = json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": connection_id, "files": [{ "id": id, "name": "data.bin" }] }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let job_id = created["job_id"].as_str().expect("job id").to_owned();
    let image_id = created["image_ids"][0].as_str().expect("image id").to_owned();
    (job_id, image_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_download_damaged_on_the_way_is_retried_and_the_kept_copy_has_the_real_checksums() {
    let env = TestEnv::start_with(Workers { importer: true, exporter: false }, &[]).await.expect("test environment");
    let drive = env.emulator.state();
    drive.update_faults(|faults| faults.corrupt_downloads = Some(1)).expect("faults");
    let bytes = filler(3 * 1024 * 1024 + 11, 7);
    let (job_id, image_id) = import_one(&env, "damaged@example.com", &bytes).await;

    let job = env.wait_for_job(&job_id, Duration::from_secs(120)).await.expect("the import ends");
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(drive.counters().injected.get("corrupt_download"), Some(&1), "the first download was damaged");
    let items = json_of(
        env.api(Method::GET, &format!("/cloud-storage/jobs/{job_id}/items")).send().await.expect("items"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(items["items"][0]["attempts"], 2, "the damaged attempt was not kept: {items}");

    let record =
        json_of(env.api(Method::GET, &format!("/files/{image_id}")).send().await.expect("file"), StatusCode::OK).await;
    assert_eq!(record["md5"], hex::encode(Md5::digest(&bytes)), "{record}");
    assert_eq!(record["sha256"], hex::encode(Sha256::digest(&bytes)), "{record}");
    let content = env.api(Method::GET, &format!("/files/{image_id}/content")).send().await.expect("download");
    assert_eq!(content.status(), StatusCode::OK);
    assert!(content.bytes().await.expect("bytes") == bytes, "the kept bytes are the file's");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_that_always_arrives_damaged_fails_with_checksum_mismatch_and_never_becomes_ready() {
    let env =
        TestEnv::start_with(Workers { importer: true, exporter: false }, &[("reliability.max_item_attempts", "2")])
            .await
            .expect("test environment");
    let drive = env.emulator.state();
    drive.update_faults(|faults| faults.corrupt_downloads = Some(100)).expect("faults");
    let (job_id, image_id) = import_one(&env, "always-damaged@example.com", &filler(64 * 1024, 9)).await;

    let job = env.wait_for_job(&job_id, Duration::from_secs(120)).await.expect("the import ends");
    assert_eq!(job["status"], "failed", "{job}");
    let items = json_of(
        env.api(Method::GET, &format!("/cloud-storage/jobs/{job_id}/items")).send().await.expect("items"),
        StatusCode::OK,
    )
    .await;
    let item = &items["items"][0];
    assert_eq!(item["error_code"], "checksum_mismatch", "{item}");
    assert!(item["error_message"].as_str().is_some_and(|m| m.contains("SHA-256")), "{item}");
    assert_eq!(drive.counters().injected.get("corrupt_download"), Some(&2), "one damaged download per attempt");
    let record =
        json_of(env.api(Method::GET, &format!("/files/{image_id}")).send().await.expect("file"), StatusCode::OK).await;
    assert_ne!(record["status"], "ready", "{record}");
    assert_eq!(record["md5"], Value::Null, "{record}");
    env.shutdown().await;
}
