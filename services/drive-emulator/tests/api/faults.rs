//! Every fault knob, set through the admin API and through `EmulatorState`, and the counters.

use std::time::{Duration, Instant};

use bytes::Bytes;
use drive_emulator::{EmulatorConfig, Faults};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestEmulator, assert_google_error, start, start_with};

async fn admin(t: &TestEmulator, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = t.http.request(method, t.url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("admin request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn media_upload(t: &TestEmulator, token: &str, len: usize) -> (StatusCode, Value) {
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(token)
        .query(&[("uploadType", "media")])
        .header("Content-Type", "application/octet-stream")
        .body(vec![7u8; len])
        .send()
        .await
        .expect("upload");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn error_rates_inject_google_shaped_errors_for_each_reason() {
    let t = start().await;
    let tokens = t.login("faulty@ferry.test").await;
    let cases = [
        ("rate_limit_429", 429, "rateLimitExceeded", "usageLimits"),
        ("user_rate_limit_403", 403, "userRateLimitExceeded", "usageLimits"),
        ("rate_limit_403", 403, "rateLimitExceeded", "usageLimits"),
        ("backend_error_500", 500, "backendError", "global"),
        ("backend_error_503", 503, "backendError", "global"),
    ];
    for (kind, status, reason, domain) in cases {
        let (s, body) =
            admin(&t, reqwest::Method::PUT, "/__emulator/faults", Some(json!({"error_rates": {kind: 1.0}}))).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (s, body) = t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
        assert_google_error(s, &body, status, reason);
        assert_eq!(body["error"]["errors"][0]["domain"], domain, "{body}");
        // Uploads (session URLs included) are Drive requests too; OAuth is not.
        let (s, body) = media_upload(&t, &tokens.access, 10).await;
        assert_google_error(s, &body, status, reason);
        let res = t
            .http
            .post(t.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens.refresh.as_deref().expect("refresh")),
                ("client_id", "ferry-dev-client"),
                ("client_secret", "ferry-dev-secret"),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(res.status(), StatusCode::OK);
    }
    let counters = t.emu.state().counters();
    for (kind, ..) in cases {
        assert_eq!(counters.injected.get(kind), Some(&2), "{counters:?}");
    }
    assert_eq!(counters.users["faulty@ferry.test"].injected_errors, 10);

    // Off again: requests go through.
    let (s, _) = admin(&t, reqwest::Method::DELETE, "/__emulator/faults", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
    assert_eq!(s, StatusCode::OK);
    // Rates that cannot be are refused and change nothing.
    let (s, body) = admin(
        &t,
        reqwest::Method::PUT,
        "/__emulator/faults",
        Some(json!({"error_rates": {"rate_limit_429": 0.8, "backend_error_500": 0.8}})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("add up")), "{body}");
    let (s, body) = admin(&t, reqwest::Method::PUT, "/__emulator/faults", Some(json!({"nonsense": 1}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(t.emu.state().faults(), Faults::default());
}

#[tokio::test]
async fn partial_error_rates_fail_some_requests() {
    let t = start().await;
    let tokens = t.login("half@ferry.test").await;
    t.emu.state().update_faults(|f| f.error_rates.backend_error_503 = 0.5).expect("valid faults");
    let mut failed = 0;
    for _ in 0..200 {
        let (s, _) = t.get_json(&tokens.access, "/drive/v3/about", &[("fields", "user")]).await;
        if s == StatusCode::SERVICE_UNAVAILABLE {
            failed += 1;
        } else {
            assert_eq!(s, StatusCode::OK);
        }
    }
    // 200 draws at p=0.5: outside 40..=160 has a probability far below 1e-15.
    assert!((40..=160).contains(&failed), "{failed} of 200 failed");
    assert_eq!(t.emu.state().counters().injected.get("backend_error_503"), Some(&failed));
}

#[tokio::test]
async fn latency_and_jitter_delay_requests() {
    let t = start().await;
    let tokens = t.login("slow@ferry.test").await;
    let (s, body) =
        admin(&t, reqwest::Method::PATCH, "/__emulator/faults", Some(json!({"latency_ms": 150, "jitter_ms": 50})))
            .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["latency_ms"], 150);
    assert_eq!(body["jitter_ms"], 50);
    let started = Instant::now();
    let (s, _) = t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
    assert_eq!(s, StatusCode::OK);
    // A lower bound only: the delay is a sleep, so at least this long, never flaky.
    assert!(started.elapsed() >= Duration::from_millis(150));
    // The admin API itself is never delayed or failed; a PATCH changes only what it names.
    let (s, body) = admin(&t, reqwest::Method::PATCH, "/__emulator/faults", Some(json!({"jitter_ms": null}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["latency_ms"], 150);
    assert_eq!(body["jitter_ms"], 0);
    let (_, body) = admin(&t, reqwest::Method::GET, "/__emulator/faults", None).await;
    assert_eq!(body["latency_ms"], 150);
}

#[tokio::test]
async fn per_user_requests_per_second_quota() {
    let t = start().await;
    let busy = t.login("busy@ferry.test").await;
    let calm = t.login("calm@ferry.test").await;
    t.emu.state().update_faults(|f| f.user_requests_per_second = Some(1)).expect("faults");
    let mut limited = 0u64;
    for _ in 0..8 {
        let (s, body) = t.get_json(&busy.access, "/drive/v3/files", &[]).await;
        if s == StatusCode::FORBIDDEN {
            assert_google_error(s, &body, 403, "userRateLimitExceeded");
            assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
            limited += 1;
        } else {
            assert_eq!(s, StatusCode::OK);
        }
    }
    // At most one request per second window passes; 8 quick requests span few windows.
    assert!(limited >= 4, "only {limited} of 8 were limited");
    // The quota is per user: another user's first request is not affected by the first one's.
    let (s, _) = t.get_json(&calm.access, "/drive/v3/files", &[]).await;
    assert_eq!(s, StatusCode::OK);
    let counters = t.emu.state().counters();
    assert_eq!(counters.injected.get("user_requests_per_second"), Some(&limited));
    assert_eq!(counters.users["busy@ferry.test"].injected_errors, limited);
}

#[tokio::test]
async fn daily_upload_cap() {
    let t = start().await;
    let tokens = t.login("uploader@ferry.test").await;
    let other = t.login("other-uploader@ferry.test").await;
    let (s, _) =
        admin(&t, reqwest::Method::PATCH, "/__emulator/faults", Some(json!({"daily_upload_bytes": 1000}))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = media_upload(&t, &tokens.access, 600).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = media_upload(&t, &tokens.access, 600).await;
    assert_google_error(s, &body, 403, "uploadLimitExceeded");
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    // Per user.
    let (s, _) = media_upload(&t, &other.access, 600).await;
    assert_eq!(s, StatusCode::OK);
    // Resumable chunks count too: 400 more fit, the rest is refused.
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "resumable")])
        .json(&json!({"name": "big.bin"}))
        .send()
        .await
        .expect("start");
    assert_eq!(res.status(), StatusCode::OK);
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let res = t
        .http
        .put(&session)
        .header("Content-Range", "bytes 0-499/500")
        .body(vec![1u8; 500])
        .send()
        .await
        .expect("chunk");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_google_error(status, &body, 403, "uploadLimitExceeded");
    assert_eq!(t.emu.state().counters().users["uploader@ferry.test"].uploaded_bytes, 600);
    // Resetting the counters starts a new "day".
    let (s, _) = admin(&t, reqwest::Method::DELETE, "/__emulator/counters", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = media_upload(&t, &tokens.access, 600).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn daily_download_cap() {
    let t = start().await;
    let me = "downloader@ferry.test";
    let file = t.emu.state().create_file(me, None, "d.bin", "application/octet-stream", Bytes::from(vec![3u8; 700]));
    let tokens = t.login(me).await;
    t.emu.state().update_faults(|f| f.daily_download_bytes = Some(1000)).expect("faults");
    let get = |range: Option<&'static str>| {
        let mut req = t.http.get(t.url(&format!("/drive/v3/files/{file}"))).bearer_auth(&tokens.access);
        req = req.query(&[("alt", "media")]);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        req.send()
    };
    let res = get(None).await.expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.expect("body").len(), 700);
    // A range is charged for what it serves: 300 more fit exactly.
    let res = get(Some("bytes=0-299")).await.expect("download");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    let res = get(Some("bytes=0-0")).await.expect("download");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert_google_error(status, &body, 403, "downloadQuotaExceeded");
    assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    let counters = t.emu.state().counters();
    assert_eq!(counters.users[me].downloaded_bytes, 1000);
    assert_eq!(counters.injected.get("daily_download_bytes"), Some(&1));
}

#[tokio::test]
async fn downloads_are_cut_after_n_bytes() {
    let t = start().await;
    let me = "cut@ferry.test";
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let file = t.emu.state().create_file(me, None, "c.bin", "application/octet-stream", Bytes::from(content.clone()));
    let tokens = t.login(me).await;
    let (s, _) = admin(
        &t,
        reqwest::Method::PATCH,
        "/__emulator/faults",
        Some(json!({"cut_download_after_bytes": 100_000, "cut_download_times": 1})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let url = t.url(&format!("/drive/v3/files/{file}?alt=media"));
    let mut res = t.http.get(&url).bearer_auth(&tokens.access).send().await.expect("download");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.content_length(), Some(300_000));
    let mut got = Vec::new();
    let mut failed = false;
    loop {
        match res.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end with an error, not cleanly");
    assert_eq!(got.len(), 100_000);
    assert_eq!(&got[..], &content[..100_000]);
    // Resuming with a Range works, and the second download is not cut (times = 1).
    let res =
        t.http.get(&url).bearer_auth(&tokens.access).header("Range", "bytes=100000-").send().await.expect("resume");
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&res.bytes().await.expect("rest")[..], &content[100_000..]);
    assert_eq!(t.emu.state().faults().cut_download_times, Some(0));
    assert_eq!(t.emu.state().counters().injected.get("cut_download"), Some(&1));
}

#[tokio::test]
async fn revoking_a_users_tokens_kills_access_and_refresh() {
    let t = start().await;
    let victim = t.login("revoked@ferry.test").await;
    let bystander = t.login("kept@ferry.test").await;
    let (s, _) = t.get_json(&victim.access, "/drive/v3/files", &[]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = admin(&t, reqwest::Method::POST, "/__emulator/users/revoked@ferry.test/revoke", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["revoked_grants"], 1);
    let (s, body) = t.get_json(&victim.access, "/drive/v3/files", &[]).await;
    assert_google_error(s, &body, 401, "authError");
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", victim.refresh.as_deref().expect("refresh"))])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    // Others keep theirs; the state method does the same.
    let (s, _) = t.get_json(&bystander.access, "/drive/v3/files", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t.emu.state().revoke_user_tokens("kept@ferry.test"), 1);
    let (s, _) = t.get_json(&bystander.access, "/drive/v3/files", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(t.emu.state().revoke_user_tokens("nobody@ferry.test"), 0);
}

#[tokio::test]
async fn counters_per_user_and_endpoint_read_and_reset() {
    let t = start().await;
    let me = "counted@ferry.test";
    let file = t.emu.state().create_file(me, None, "n.txt", "text/plain", Bytes::from_static(b"hello"));
    let tokens = t.login(me).await;
    let other = t.login("counted-too@ferry.test").await;
    t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
    t.get_json(&tokens.access, "/drive/v3/files", &[("pageSize", "5")]).await;
    t.get_json(&tokens.access, &format!("/drive/v3/files/{file}"), &[]).await;
    let res = t.http.get(t.url(&format!("/drive/v3/files/{file}?alt=media"))).bearer_auth(&tokens.access).send().await;
    assert_eq!(res.expect("media").bytes().await.expect("body").len(), 5);
    media_upload(&t, &tokens.access, 42).await;
    t.get_json(&other.access, "/drive/v3/about", &[("fields", "user")]).await;

    let (s, body) = admin(&t, reqwest::Method::GET, "/__emulator/counters", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["endpoints"]["files.list"], 2, "{body}");
    assert_eq!(body["endpoints"]["files.get"], 1);
    assert_eq!(body["endpoints"]["files.get.media"], 1);
    assert_eq!(body["endpoints"]["upload.media.create"], 1);
    assert_eq!(body["endpoints"]["about.get"], 1);
    // Two logins: authorize and token each twice.
    assert_eq!(body["endpoints"]["oauth.token"], 2);
    let mine = &body["users"][me];
    assert_eq!(mine["requests"], 5, "{body}");
    assert_eq!(mine["endpoints"]["files.list"], 2);
    assert_eq!(mine["uploaded_bytes"], 42);
    assert_eq!(mine["downloaded_bytes"], 5);
    assert_eq!(body["users"]["counted-too@ferry.test"]["requests"], 1);
    let total = body["total"].as_u64().expect("total");
    assert!(total >= 10, "{body}");
    // The state method sees the same; the admin API is not counted.
    let counters = t.emu.state().counters();
    assert_eq!(counters.total, total);

    t.emu.state().reset_counters();
    let (_, body) = admin(&t, reqwest::Method::GET, "/__emulator/counters", None).await;
    assert_eq!(body["total"], 0, "{body}");
    assert_eq!(body["users"], json!({}));
    t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
    assert_eq!(t.emu.state().counters().users[me].requests, 1);
}

#[tokio::test]
async fn faults_from_the_config_apply_from_the_start() {
    let mut config = EmulatorConfig::default();
    config.faults.error_rates.rate_limit_429 = 1.0;
    let t = start_with(config).await;
    let tokens = t.login("configured@ferry.test").await;
    let (s, body) = t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
    assert_google_error(s, &body, 429, "rateLimitExceeded");
}

/// The binary's flags set the same knobs (read back through the admin API).
#[tokio::test]
async fn binary_flags_set_faults() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    // The child is killed (no clean shutdown), so its contents go to a directory this test owns.
    let data_dir = tempfile::tempdir().expect("dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drive-emulator"))
        .arg("--data-dir")
        .arg(data_dir.path())
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--latency-ms",
            "5",
            "--jitter-ms",
            "3",
            "--error-rate",
            "rate_limit_429=0.25",
            "--error-rate",
            "backend_error_500=0.5",
            "--user-rps",
            "7",
            "--retry-after-secs",
            "2",
            "--daily-upload-bytes",
            "1000",
            "--daily-download-bytes",
            "2000",
            "--cut-download-after",
            "300",
            "--cut-download-times",
            "2",
            "--stall-download-after",
            "400",
            "--stall-upload-after",
            "500",
            "--stall-for-ms",
            "600",
            "--stall-times",
            "3",
            "--corrupt-downloads",
            "4",
            "--log-filter",
            "warn",
        ])
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the emulator binary");
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/__emulator/faults");
    let mut body = Value::Null;
    for _ in 0..200 {
        if let Ok(res) = http.get(&url).send().await {
            body = res.json().await.expect("json");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill().await;
    assert_eq!(
        body,
        json!({
            "latency_ms": 5,
            "jitter_ms": 3,
            "error_rates": {
                "rate_limit_429": 0.25,
                "user_rate_limit_403": 0.0,
                "rate_limit_403": 0.0,
                "backend_error_500": 0.5,
                "backend_error_503": 0.0,
            },
            "error_count": null,
            "endpoints": [],
            "retry_after_secs": 2,
            "user_requests_per_second": 7,
            "daily_upload_bytes": 1000,
            "daily_download_bytes": 2000,
            "cut_download_after_bytes": 300,
            "cut_download_times": 2,
            "stall_download_after_bytes": 400,
            "stall_upload_after_bytes": 500,
            "stall_for_ms": 600,
            "stall_times": 3,
            "corrupt_downloads": 4,
        })
    );
}

#[tokio::test]
async fn errors_can_target_endpoints_and_stop_after_a_count() {
    let t = start().await;
    let me = "targeted@ferry.test";
    let file = t.emu.state().create_file(me, None, "t.bin", "application/octet-stream", Bytes::from_static(b"data"));
    let tokens = t.login(me).await;
    // Fail the next two media downloads with 503, nothing else.
    let (s, body) = admin(
        &t,
        reqwest::Method::PATCH,
        "/__emulator/faults",
        Some(json!({"error_rates": {"backend_error_503": 1.0}, "error_count": 2, "endpoints": ["files.get.media"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let media = || t.http.get(t.url(&format!("/drive/v3/files/{file}?alt=media"))).bearer_auth(&tokens.access).send();
    for _ in 0..2 {
        let (s, _) = t.get_json(&tokens.access, &format!("/drive/v3/files/{file}"), &[]).await;
        assert_eq!(s, StatusCode::OK, "metadata is not targeted");
        let res = media().await.expect("media");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let res = media().await.expect("media");
    assert_eq!(res.status(), StatusCode::OK, "the budget is spent");
    assert_eq!(res.bytes().await.expect("body"), "data");
    assert_eq!(t.emu.state().faults().error_count, Some(0));
    assert_eq!(t.emu.state().counters().injected.get("backend_error_503"), Some(&2));
}

#[tokio::test]
async fn downloads_and_upload_chunks_stall_after_n_bytes() {
    let t = start().await;
    let me = "stall@ferry.test";
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let file = t.emu.state().create_file(me, None, "s.bin", "application/octet-stream", Bytes::from(content.clone()));
    let tokens = t.login(me).await;
    let url = t.url(&format!("/drive/v3/files/{file}?alt=media"));

    // A stall without an end: the first 100 000 bytes arrive, then nothing (the connection stays open).
    t.emu
        .state()
        .set_faults(Faults { stall_download_after_bytes: Some(100_000), stall_times: Some(1), ..Faults::default() })
        .expect("faults");
    let mut res = t.http.get(&url).bearer_auth(&tokens.access).send().await.expect("download");
    let mut got = Vec::new();
    let silent = loop {
        match tokio::time::timeout(Duration::from_millis(700), res.chunk()).await {
            Ok(Ok(Some(piece))) => got.extend_from_slice(&piece),
            Ok(other) => panic!("the stalled body must neither end nor fail: {other:?}"),
            Err(_) => break true,
        }
    };
    assert!(silent);
    assert_eq!(&got[..], &content[..100_000]);
    drop(res);
    // Only one transfer was to stall: the next download is whole.
    let whole = t.http.get(&url).bearer_auth(&tokens.access).send().await.expect("download");
    assert_eq!(&whole.bytes().await.expect("body")[..], &content[..]);

    // A stall with a duration: the body pauses, then completes byte-identical.
    t.emu
        .state()
        .set_faults(Faults { stall_download_after_bytes: Some(50_000), stall_for_ms: Some(400), ..Faults::default() })
        .expect("faults");
    let started = Instant::now();
    let res = t.http.get(&url).bearer_auth(&tokens.access).send().await.expect("download");
    assert_eq!(&res.bytes().await.expect("body")[..], &content[..]);
    assert!(started.elapsed() >= Duration::from_millis(400), "the body paused for the stall");

    // Upload chunks: the server stops reading after 64 KiB; a client that gives up leaves the session
    // resumable with what arrived before the stall.
    t.emu
        .state()
        .set_faults(Faults { stall_upload_after_bytes: Some(65_536), stall_times: Some(1), ..Faults::default() })
        .expect("faults");
    let total = content.len();
    let res = t
        .http
        .post(t.url("/upload/drive/v3/files"))
        .bearer_auth(&tokens.access)
        .query(&[("uploadType", "resumable")])
        .header("X-Upload-Content-Length", total.to_string())
        .json(&json!({"name": "up.bin"}))
        .send()
        .await
        .expect("start");
    let session = res.headers()["location"].to_str().expect("location").to_owned();
    let put = |body: Vec<u8>, range: String| {
        t.http.put(&session).bearer_auth(&tokens.access).header("Content-Range", range).body(body).send()
    };
    let stalled = tokio::time::timeout(
        Duration::from_millis(800),
        put(content.clone(), format!("bytes 0-{}/{total}", total - 1)),
    )
    .await;
    assert!(stalled.is_err(), "the chunk upload must hang while the server stops reading");
    let status = put(Vec::new(), format!("bytes */{total}")).await.expect("status");
    assert_eq!(status.status(), StatusCode::PERMANENT_REDIRECT);
    let committed = status
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes=0-"))
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(0, |last| last + 1);
    assert!(committed < total, "the stalled chunk did not complete ({committed} of {total})");
    let done =
        put(content[committed..].to_vec(), format!("bytes {committed}-{}/{total}", total - 1)).await.expect("rest");
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(t.emu.state().counters().injected.get("stall_download"), Some(&2));
    assert_eq!(t.emu.state().counters().injected.get("stall_upload"), Some(&1));
}
