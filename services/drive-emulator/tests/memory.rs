//! Memory stays flat for any file size: 128 MiB goes up (multipart and resumable) and down without the
//! process's peak resident memory growing by anything near that. Its own test binary (one process,
//! one test), so nothing else running moves the peak.

use std::net::TcpListener;

use bytes::Bytes;
use drive_emulator::EmulatorConfig;
use futures::StreamExt;
use md5::Digest;
use reqwest::StatusCode;
use serde_json::Value;

const MIB: usize = 1024 * 1024;
const SIZE: usize = 128 * MIB;

/// Peak resident set size so far (Linux: VmHWM in /proc/self/status), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM value");
    kib * 1024
}

/// The same MiB again and again, as a streamed body of `SIZE` bytes (never all in memory).
fn body(prefix: Vec<u8>, suffix: Vec<u8>) -> reqwest::Body {
    let piece = Bytes::from((0..MIB).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let pieces = std::iter::once(Bytes::from(prefix))
        .chain(std::iter::repeat_n(piece, SIZE / MIB))
        .chain(std::iter::once(Bytes::from(suffix)))
        .map(Ok::<_, std::io::Error>);
    reqwest::Body::wrap_stream(futures::stream::iter(pieces))
}

fn expected_md5() -> String {
    let piece: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let mut h = md5::Md5::new();
    for _ in 0..SIZE / MIB {
        h.update(&piece);
    }
    hex::encode(h.finalize())
}

#[tokio::test]
async fn big_uploads_and_downloads_keep_memory_flat() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let emu = drive_emulator::spawn(EmulatorConfig::default(), listener).await.expect("spawn");
    let http = reqwest::Client::new();
    let base = emu.base_url().to_owned();
    let me = "memory@ferry.test";
    emu.state().ensure_user(me, "Memory");
    // A token without the browser dance: authorize + exchange.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{base}/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "ferry-dev-client"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("response_type", "code"),
            ("scope", "https://www.googleapis.com/auth/drive"),
            ("login_hint", me),
        ])
        .send()
        .await
        .expect("authorize");
    let location = url::Url::parse(res.headers()["location"].to_str().expect("ascii")).expect("url");
    let code = location.query_pairs().find(|(k, _)| k == "code").expect("code").1.into_owned();
    let token: Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("client_id", "ferry-dev-client"),
            ("client_secret", "ferry-dev-secret"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let access = token["access_token"].as_str().expect("access").to_owned();
    let md5 = expected_md5();
    let before = peak_rss();

    // Multipart, streamed (Python-style LF framing).
    let res = http
        .post(format!("{base}/upload/drive/v3/files"))
        .bearer_auth(&access)
        .query(&[("uploadType", "multipart"), ("fields", "id,size,md5Checksum")])
        .header("Content-Type", "multipart/related; boundary=\"==big==\"")
        .body(body(
            b"--==big==\nContent-Type: application/json\n\n{\"name\":\"big.bin\"}\n--==big==\nContent-Type: application/octet-stream\n\n".to_vec(),
            b"\n--==big==--".to_vec(),
        ))
        .send()
        .await
        .expect("multipart");
    assert_eq!(res.status(), StatusCode::OK);
    let file: Value = res.json().await.expect("json");
    assert_eq!(file["size"], SIZE.to_string());
    assert_eq!(file["md5Checksum"], md5.as_str());

    // Resumable, in one streamed PUT.
    let res = http
        .post(format!("{base}/upload/drive/v3/files"))
        .bearer_auth(&access)
        .query(&[("uploadType", "resumable"), ("fields", "id,size")])
        .json(&serde_json::json!({"name": "big2.bin"}))
        .send()
        .await
        .expect("start");
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = http
        .put(&session)
        .header("Content-Range", format!("bytes 0-{}/{SIZE}", SIZE - 1))
        .body(body(Vec::new(), Vec::new()))
        .send()
        .await
        .expect("chunk");
    assert_eq!(res.status(), StatusCode::OK);
    let second: Value = res.json().await.expect("json");
    assert_eq!(second["size"], SIZE.to_string());

    // Download, streamed and hashed on the way.
    let id = file["id"].as_str().expect("id");
    let res =
        http.get(format!("{base}/drive/v3/files/{id}?alt=media")).bearer_auth(&access).send().await.expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.bytes_stream();
    let mut h = md5::Md5::new();
    let mut total = 0;
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("piece");
        total += piece.len();
        h.update(&piece);
    }
    assert_eq!(total, SIZE);
    assert_eq!(hex::encode(h.finalize()), md5);

    let grown = peak_rss().saturating_sub(before);
    println!("peak RSS grew by {} KiB over 3 x {} MiB transfers", grown / 1024, SIZE / MIB);
    // Three 128 MiB transfers: holding any of them in memory would add at least 128 MiB.
    assert!(grown < 48 * MIB as u64, "peak RSS grew by {} MiB", grown / MIB as u64);
    emu.stop().await;
}
