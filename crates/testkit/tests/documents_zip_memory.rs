//! A zip download's memory stays flat whatever the total size: 1 GiB in a three-level tree streams out of the
//! gateway (running in this process) while its peak resident memory grows by less than 64 MiB.
//!
//! The peak is the kernel's high-water mark (`VmHWM`), reset with `/proc/self/clear_refs` just before the download,
//! so the uploads that made the files do not count.

mod api_support;

use api_support::json_of;
use bytes::Bytes;
use ferry_testkit::{TestEnv, Workers};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

const FILE_BYTES: usize = 64 * 1024 * 1024;
const FILES: usize = 16;
const EXTRA_PEAK_LIMIT_KIB: u64 = 64 * 1024;

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_gib_zip_streams_with_flat_memory() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("start");
    let company = env.tenant_id.0.to_string();
    let url = |path: &str| env.url(&format!("/internal/services/documents/v1/companies/{company}{path}"));
    let owner = |method: Method, path: &str| env.http.request(method, url(path)).bearer_auth(&env.api_key);
    let directory = async |name: &str, parent: &str| -> String {
        let body = json!({ "item": { "name": name, "parent_id": parent, "is_directory": true } });
        let created =
            json_of(owner(Method::POST, "/item").json(&body).send().await.expect("create directory"), StatusCode::OK)
                .await;
        created["id"].as_str().expect("id").to_owned()
    };
    let top = directory("footage", "root").await;
    let middle = directory("2026", &top).await;
    let bottom = directory("november", &middle).await;

    // Not compressible and already-compressed by name: each entry is stored, so the zip is as big as its files.
    let mut content = vec![0u8; FILE_BYTES];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in content.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let content = Bytes::from(content);
    for n in 0..FILES {
        let parent = [&top, &middle, &bottom][n % 3];
        let name = format!("clip-{n:02}.mp4");
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::from(content.clone()), FILE_BYTES as u64)
                .file_name(name.clone())
                .mime_str("video/mp4")
                .expect("mime");
        let form = reqwest::multipart::Form::new()
            .text("item", json!({ "name": name, "parent_id": parent }).to_string())
            .part("file", part);
        json_of(owner(Method::POST, "/item").multipart(form).send().await.expect("upload"), StatusCode::OK).await;
    }
    drop(content);

    let baseline = status_kib("VmRSS:");
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak resident memory");
    let response = owner(Method::GET, &format!("/item/{top}/download")).send().await.expect("zip download");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.bytes_stream();
    let mut total = 0u64;
    let mut tail: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("zip chunk");
        total += chunk.len() as u64;
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 * 1024 {
            tail.drain(..tail.len() - 64 * 1024);
        }
    }
    let peak = status_kib("VmHWM:");

    let files_total = (FILES * FILE_BYTES) as u64;
    assert!(total > files_total, "the zip holds every byte stored: {total} bytes for {files_total} of files");
    // A zip64 archive ends with the zip64 end record, its locator and the classic end record (22 bytes).
    let end = &tail[tail.len() - 22..];
    assert_eq!(&end[..4], b"PK\x05\x06", "the zip ends with its end-of-central-directory record");
    let locator = &tail[tail.len() - 42..tail.len() - 22];
    assert_eq!(&locator[..4], b"PK\x06\x07", "a zip64 locator precedes it");
    let grew = peak.saturating_sub(baseline);
    println!("zip of {total} bytes: resident {baseline} KiB before, peak {peak} KiB during (+{grew} KiB)");
    assert!(
        grew < EXTRA_PEAK_LIMIT_KIB,
        "streaming a {total}-byte zip raised peak resident memory by {grew} KiB (limit {EXTRA_PEAK_LIMIT_KIB} KiB)"
    );
    env.shutdown().await;
}
