//! The API's answers to bad input and its edges: authentication, validation, the OAuth browser page,
//! health endpoints. Each error has the documented shape and a stable code.

use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn error_of(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"]["details"].is_object(), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_key_are_refused() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let url = env.url("/api/v2/cloud-storage/connections");
    error_of(env.http.get(&url).send().await.expect("send"), StatusCode::UNAUTHORIZED, "AUTH_ERROR").await;
    error_of(
        env.http.get(&url).bearer_auth("fry_notarealkeyatallnotarealkey00000").send().await.expect("send"),
        StatusCode::UNAUTHORIZED,
        "AUTH_ERROR",
    )
    .await;
    error_of(
        env.http.get(&url).header("Authorization", "Basic abc").send().await.expect("send"),
        StatusCode::UNAUTHORIZED,
        "AUTH_ERROR",
    )
    .await;
    let ok = env.api(Method::GET, "/cloud-storage/connections").send().await.expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_validation_errors_naming_the_field() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    env.emulator.state().ensure_user("carol@example.com", "Carol");
    let connection = env.connect_drive("carol@example.com").await.expect("connect")["connection"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let cases: Vec<(&str, Value, &str)> = vec![
        ("/cloud-storage/import", json!({ "files": [{ "id": "a", "name": "a" }] }), "connection_id"),
        (
            "/cloud-storage/import",
            json!({ "connection_id": "not-a-uuid", "files": [{ "id": "a", "name": "a" }] }),
            "connection_id",
        ),
        ("/cloud-storage/import", json!({ "connection_id": connection, "files": [] }), "files"),
        ("/cloud-storage/import", json!({ "connection_id": connection, "files": [{ "name": "a" }] }), "files[0].id"),
        (
            "/cloud-storage/import",
            json!({ "connection_id": connection, "files": [{ "id": "a", "name": "a" }, { "id": "b" }] }),
            "files[1].name",
        ),
        (
            "/cloud-storage/import",
            json!({ "connection_id": connection, "files": [{ "id": "a", "name": "a" }], "folder_id": "x" }),
            "folder_id",
        ),
        (
            "/cloud-storage/import",
            json!({ "connection_id": connection, "files": [{ "id": "a", "name": "a" }], "tags": [""] }),
            "tags",
        ),
        ("/cloud-storage/export", json!({ "connection_id": connection, "image_ids": [] }), "image_ids"),
        ("/cloud-storage/export", json!({ "connection_id": connection, "image_ids": ["img_zz"] }), "image_ids"),
        ("/cloud-storage/auth/google_drive/callback", json!({ "state": "s" }), "code"),
    ];
    for (path, body, field) in cases {
        let response = env.api(Method::POST, path).json(&body).send().await.expect("send");
        let error = error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(error["error"]["details"]["field"], field, "{path} {body}");
    }
    // A state that was never issued (or one with NUL, which cannot have been) names no pending authorisation.
    for state in ["never-issued", "nul\u{0}state"] {
        let response = env
            .api(Method::POST, "/cloud-storage/auth/google_drive/callback")
            .json(&json!({ "code": "c", "state": state }))
            .send()
            .await
            .expect("send");
        let error = error_of(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_eq!(error["error"]["details"]["field"], "state");
    }

    let too_many: Vec<Value> = (0..1001).map(|i| json!({ "id": format!("f{i}"), "name": "x" })).collect();
    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": too_many }))
        .send()
        .await
        .expect("send");
    error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;

    let duplicated =
        json!({ "connection_id": connection, "files": [{ "id": "same", "name": "a" }, { "id": "same", "name": "b" }] });
    let response = env.api(Method::POST, "/cloud-storage/import").json(&duplicated).send().await.expect("send");
    let error = error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(error["error"]["details"]["duplicate_ids"], json!(["same"]));

    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;

    let response = env.api(Method::POST, "/cloud-storage/auth/dropbox").send().await.expect("send");
    let error = error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(error["error"]["details"]["field"], "provider");

    let missing = uuid::Uuid::new_v4();
    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": missing, "files": [{ "id": "a", "name": "a" }] }))
        .send()
        .await
        .expect("send");
    error_of(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let response =
        env.api(Method::GET, "/cloud-storage/jobs/job_00000000000000000000000000000000").send().await.expect("send");
    error_of(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let response = env.api(Method::GET, "/cloud-storage/jobs/nonsense").send().await.expect("send");
    error_of(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let response = env.api(Method::GET, "/cloud-storage/connections?limit=101").send().await.expect("send");
    error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    let response = env
        .api(Method::GET, &format!("/cloud-storage/connections/{connection}/browse?page_size=201"))
        .send()
        .await
        .expect("send");
    error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    let response = env.api(Method::GET, "/no/such/endpoint").send().await.expect("send");
    error_of(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // Export checks the Drive folder and the files before any job exists.
    let upload = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"abc".to_vec()).file_name("a.txt").mime_str("text/plain").expect("mime"),
    );
    let uploaded: Value =
        env.api(Method::POST, "/files").multipart(upload).send().await.expect("upload").json().await.expect("json");
    assert_eq!(uploaded["status"], "ready");
    assert_eq!(uploaded["size_bytes"], 3);
    let image = uploaded["id"].as_str().expect("id");
    let response = env
        .api(Method::POST, "/cloud-storage/export")
        .json(&json!({ "connection_id": connection, "image_ids": [image], "folder_id": "no-such-folder" }))
        .send()
        .await
        .expect("send");
    let error = error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(error["error"]["details"]["field"], "folder_id");
    let response = env
        .api(Method::POST, "/cloud-storage/export")
        .json(&json!({ "connection_id": connection, "image_ids": [image, "img_00000000000000000000000000000000"] }))
        .send()
        .await
        .expect("send");
    let error = error_of(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    assert_eq!(error["error"]["details"]["missing_ids"], json!(["img_00000000000000000000000000000000"]));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_callback_posts_to_the_configured_origin_only() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    env.emulator.state().ensure_user("dan@example.com", "Dan <b>Bold</b>");
    let started: Value = env
        .api(Method::POST, "/cloud-storage/auth/google_drive")
        .json(&json!({ "login_hint": "dan@example.com" }))
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    assert_eq!(started["provider"], "google_drive");
    let authorization_url = started["authorization_url"].as_str().expect("url");
    assert!(authorization_url.contains("code_challenge_method=S256"));
    assert!(authorization_url.contains("access_type=offline"));
    let (code, state) = env.authorize(authorization_url).await.expect("authorize");
    assert_eq!(state, started["state"].as_str().expect("state"));

    let callback = env.url("/api/v2/cloud-storage/auth/google_drive/callback");
    let page = env
        .http
        .get(&callback)
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .expect("callback");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().expect("ct").starts_with("text/html"));
    assert!(page.headers()["content-security-policy"].to_str().expect("csp").contains("script-src 'nonce-"));
    let html = page.text().await.expect("html");
    assert!(html.contains("\"type\":\"oauth-complete\""));
    assert!(html.contains("\"success\":true"));
    assert!(html.contains("\"provider_email\":\"dan@example.com\""));
    assert!(html.contains("\"is_token_expired\":false"));
    assert!(html.contains("postMessage(payload, origin)"));
    assert!(html.contains("var origin = \"http://app.example.test\";"), "{html}");
    assert!(!html.contains("\"*\""));
    assert!(!html.contains("<b>"), "the display name is not markup: {html}");

    // The state was consumed: replaying the redirect fails, and says so without echoing the input.
    let replay = env
        .http
        .get(&callback)
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .expect("replay");
    let html = replay.text().await.expect("html");
    assert!(html.contains("\"success\":false"));

    let denied = env
        .http
        .get(&callback)
        .query(&[("error", "access_denied"), ("state", "whatever"), ("error_description", "<script>alert(1)</script>")])
        .send()
        .await
        .expect("denied");
    let html = denied.text().await.expect("html");
    assert!(html.contains("\"error\":\"User denied access\""));
    // The provider's description is passed on for the opener to show as text, never as markup here.
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(html.contains("\"error_description\":\"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\""), "{html}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_answer() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let live: Value = env.http.get(env.url("/livez")).send().await.expect("livez").json().await.expect("json");
    assert_eq!(live["status"], "ok");
    // Readiness does not wait for the broker; its state shows once the relay connected.
    let mut ready = Value::Null;
    for _ in 0..100 {
        let response = env.http.get(env.url("/readyz")).send().await.expect("readyz");
        assert_eq!(response.status(), StatusCode::OK);
        ready = response.json().await.expect("json");
        if ready["reported"]["broker"] == "ok" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["reported"]["broker"], "ok", "{ready}");
    // Metrics are for operators: on the ops port, not on the public API port.
    let public = env.http.get(env.url("/metrics")).send().await.expect("public metrics");
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let metrics = env.http.get(format!("{}/metrics", env.ops_url)).send().await.expect("ops metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.expect("text");
    assert!(text.contains("# TYPE") || text.is_empty(), "Prometheus text expected: {text}");
    for probe in ["/livez", "/readyz"] {
        let response = env.http.get(format!("{}{probe}", env.ops_url)).send().await.expect("ops probe");
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_the_gateway_stays_ready_and_queues_jobs_in_the_outbox() {
    // Nothing listens on port 1: the relay can never connect.
    let env = TestEnv::start_with(Workers::NONE, &[("amqp.url", "amqp://guest:guest@127.0.0.1:1/%2f")])
        .await
        .expect("env starts and becomes ready without a broker");
    let ready = env.http.get(env.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["reported"]["broker"], "failing", "{ready}");

    env.emulator.state().ensure_user("outbox@example.com", "Outbox");
    let connection = env.connect_drive("outbox@example.com").await.expect("connect")["connection"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": [{ "id": "a", "name": "a.bin" }, { "id": "b", "name": "b.bin" }] }))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "pending");
    let (waiting, _) = env.database.db.outbox_backlog().await.expect("outbox");
    assert_eq!(waiting, 2, "both commands wait in the outbox for the broker");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_path_ids_name_nothing_and_are_404_like_unknown_ids() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let unknown_uuid = uuid::Uuid::new_v4();
    let unknown_hex = uuid::Uuid::new_v4().simple();
    let pairs: Vec<(Method, String, String)> = vec![
        (Method::GET, format!("/cloud-storage/jobs/job_{unknown_hex}"), "/cloud-storage/jobs/job_doesnotexist".into()),
        (Method::GET, format!("/cloud-storage/jobs/job_{unknown_hex}/items"), "/cloud-storage/jobs/x/items".into()),
        (Method::POST, format!("/cloud-storage/jobs/job_{unknown_hex}/cancel"), "/cloud-storage/jobs/x/cancel".into()),
        (Method::GET, format!("/cloud-storage/jobs/job_{unknown_hex}/events"), "/cloud-storage/jobs/x/events".into()),
        (Method::GET, format!("/files/img_{unknown_hex}"), "/files/x".into()),
        (Method::GET, format!("/files/img_{unknown_hex}/content"), "/files/x/content".into()),
        (Method::DELETE, format!("/files/img_{unknown_hex}"), "/files/img_nothex".into()),
        (Method::GET, format!("/folders/{unknown_uuid}"), "/folders/not-a-uuid".into()),
        (Method::DELETE, format!("/folders/{unknown_uuid}"), "/folders/x".into()),
        (Method::DELETE, format!("/cloud-storage/connections/{unknown_uuid}"), "/cloud-storage/connections/x".into()),
        (
            Method::GET,
            format!("/cloud-storage/connections/{unknown_uuid}/browse"),
            "/cloud-storage/connections/x/browse".into(),
        ),
        (
            Method::GET,
            format!("/cloud-storage/connections/{unknown_uuid}/picker-token"),
            "/cloud-storage/connections/x/picker-token".into(),
        ),
    ];
    for (method, unknown, malformed) in pairs {
        let a = env.api(method.clone(), &unknown).send().await.expect("unknown");
        let a = error_of(a, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        let b = env.api(method.clone(), &malformed).send().await.expect("malformed");
        let b = error_of(b, StatusCode::NOT_FOUND, "NOT_FOUND").await;
        assert_eq!(a, b, "{method} {malformed} must answer exactly like {unknown}");
    }
    let renamed = env.api(Method::PATCH, "/folders/x").json(&json!({ "name": "n" })).send().await.expect("patch");
    error_of(renamed, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let updated = env.api(Method::PATCH, "/files/x").json(&json!({ "name": "n" })).send().await.expect("patch");
    error_of(updated, StatusCode::NOT_FOUND, "NOT_FOUND").await;

    // Malformed ids in bodies and query strings still say what to fix.
    let body = env
        .api(Method::POST, "/cloud-storage/export")
        .json(&json!({ "connection_id": "x", "image_ids": ["img_x"] }))
        .send()
        .await
        .expect("export");
    let body = error_of(body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["details"]["field"], "connection_id");
    let query = env.api(Method::GET, "/files?folder_id=x").send().await.expect("files");
    let query = error_of(query, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(query["error"]["details"]["field"], "folder_id");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_metadata_is_capped_and_stored_once_per_job() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    env.emulator.state().ensure_user("meta@example.com", "Meta");
    let connection = env.connect_drive("meta@example.com").await.expect("connect")["connection"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let files = json!([{ "id": "a", "name": "a.bin" }, { "id": "b", "name": "b.bin" }]);

    // 16 KiB serialized is the most; one byte more is a 413 that says what to do.
    let padding = |len: usize| json!({ "p": "x".repeat(len - r#"{"p":""}"#.len()) });
    let too_big = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": files, "provider_metadata": padding(16 * 1024 + 1) }))
        .send()
        .await
        .expect("import");
    let error = error_of(too_big, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(error["error"]["details"]["field"], "provider_metadata");
    assert!(error["error"]["message"].as_str().unwrap_or_default().contains("16384 bytes"), "{error}");

    let metadata = padding(16 * 1024);
    let created = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": files, "provider_metadata": metadata }))
        .send()
        .await
        .expect("import");
    assert_eq!(created.status(), StatusCode::OK);
    let created: Value = created.json().await.expect("json");
    // Stored on the job once; every file of the job shows it.
    let job_id = ferry_core::JobId::parse(created["job_id"].as_str().expect("job id")).expect("job id");
    let job = env.database.db.get_job(env.tenant_id, job_id).await.expect("job").expect("exists");
    assert_eq!(job.provider_metadata.as_ref(), Some(&metadata));
    for image in created["image_ids"].as_array().expect("ids") {
        let file: Value = env
            .api(Method::GET, &format!("/files/{}", image.as_str().expect("id")))
            .send()
            .await
            .expect("file")
            .json()
            .await
            .expect("json");
        assert_eq!(file["provider_metadata"], metadata);
    }
    let listed: Value = env.api(Method::GET, "/files").send().await.expect("files").json().await.expect("json");
    assert!(listed["items"].as_array().expect("items").iter().all(|f| f["provider_metadata"] == metadata));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_legal_import_fits_the_body_limit() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    env.emulator.state().ensure_user("big@example.com", "Big");
    let connection = env.connect_drive("big@example.com").await.expect("connect")["connection"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Names of 1024 bytes that JSON must escape (a quote becomes two bytes), ids and MIME types at their limits.
    let name = "\"".repeat(1024);
    let mime = format!("application/{}", "x".repeat(255 - "application/".len()));
    let files: Vec<Value> = (0..1000)
        .map(|i| json!({ "id": format!("{i:0>256}"), "name": name, "mime_type": mime, "size_bytes": u64::MAX }))
        .collect();
    let metadata = json!({ "p": "x".repeat(16 * 1024 - r#"{"p":""}"#.len()) });
    let tags: Vec<String> = (0..50).map(|i| format!("{i:0>100}")).collect();
    let body = json!({ "connection_id": connection, "files": files, "provider_metadata": metadata, "tags": tags });
    assert!(serde_json::to_vec(&body).expect("json").len() > 2 * 1024 * 1024, "larger than the old 2 MiB limit");
    let response = env.api(Method::POST, "/cloud-storage/import").json(&body).send().await.expect("import");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_files"], 1000);

    // One more byte of name is refused for what it is, not for the body size.
    let long = json!({ "connection_id": connection, "files": [{ "id": "a", "name": "n".repeat(1025) }] });
    let response = env.api(Method::POST, "/cloud-storage/import").json(&long).send().await.expect("import");
    let error = error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(error["error"]["details"]["field"], "files[0].name");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_path_lacks_is_405_with_allow() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    for (method, path, allow) in [
        (Method::DELETE, "/cloud-storage/jobs", "GET"),
        (Method::GET, "/cloud-storage/import", "POST"),
        (Method::PUT, "/files/img_00000000000000000000000000000000", "GET, PATCH, DELETE"),
        (Method::PUT, "/cloud-storage/auth/google_drive/callback", "GET, POST"),
    ] {
        let response = env.api(method.clone(), path).send().await.expect("send");
        assert_eq!(response.headers().get("allow").and_then(|v| v.to_str().ok()), Some(allow), "{method} {path}");
        let error = error_of(response, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
        assert_eq!(error["error"]["details"]["allowed"], json!(allow.split(", ").collect::<Vec<_>>()));
    }
    let response = env.api(Method::GET, "/no/such/path").send().await.expect("send");
    error_of(response, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_row_naming_no_known_command_is_parked_and_the_rows_behind_it_flow() {
    let env = TestEnv::start().await.expect("env");
    // Written before the job, so the relay meets it first.
    ferry_db::testing::insert_outbox_row(&env.database.db, "bogus.item", b"\x01").await.expect("row");
    let email = "parking@example.com";
    let drive = env.emulator.state();
    drive.ensure_user(email, "Parking");
    let file = drive.create_file(email, None, "p.txt", "text/plain", bytes::Bytes::from_static(b"parked ahead"));
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": [{ "id": file, "name": "p.txt" }] }))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    let job_id = response.json::<Value>().await.expect("json")["job_id"].as_str().expect("job id").to_owned();
    let job = env.wait_for_job(&job_id, std::time::Duration::from_secs(60)).await.expect("the job behind finishes");
    assert_eq!(job["status"], "completed", "{job}");
    let parked = env.database.db.parked_outbox_rows(10).await.expect("parked");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].1, "bogus.item");
    assert!(parked[0].2.contains("unknown command"), "{parked:?}");
    assert_eq!(env.database.db.outbox_backlog().await.expect("backlog").0, 0);
    env.shutdown().await;
}

/// Postgres text cannot hold NUL. Every place a client's text is stored or looked up answers a 400 naming the
/// field (or, for a lookup, 404): never a 500. JSON that the caller keeps as metadata keeps it as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_nul_is_refused_by_field_and_metadata_keeps_it() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    env.emulator.state().ensure_user("nul@example.com", "Nul");
    let connection = env.connect_drive("nul@example.com").await.expect("connect")["connection"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let nul = "a\u{0}b";
    let cases = [
        (
            Method::POST,
            "/cloud-storage/import",
            json!({ "connection_id": connection, "files": [{ "id": "x", "name": nul }] }),
            "files[0].name",
        ),
        (
            Method::POST,
            "/cloud-storage/import",
            json!({ "connection_id": connection, "files": [{ "id": nul, "name": "n" }] }),
            "files[0].id",
        ),
        (
            Method::POST,
            "/cloud-storage/import",
            json!({ "connection_id": connection, "files": [{ "id": "x", "name": "n" }], "tags": [nul] }),
            "tags",
        ),
        (Method::POST, "/folders", json!({ "name": nul }), "name"),
    ];
    for (method, path, body, field) in cases {
        let response = env.api(method, path).json(&body).send().await.expect("send");
        let error = error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(error["error"]["details"]["field"], field, "{path} {body}");
    }
    let listed = env.api(Method::GET, "/files").query(&[("tag", nul)]).send().await.expect("list");
    let error = error_of(listed, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
    assert_eq!(error["error"]["details"]["field"], "tag");

    let metadata = json!({ "note": nul, nul: [nul] });
    let imported: Value = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": [{ "id": "x", "name": "n" }], "provider_metadata": metadata }))
        .send()
        .await
        .expect("import")
        .json()
        .await
        .expect("json");
    let image_id = imported["image_ids"][0].as_str().expect("an image id");
    let file: Value =
        env.api(Method::GET, &format!("/files/{image_id}")).send().await.expect("get").json().await.expect("json");
    assert_eq!(file["provider_metadata"], metadata, "{file}");
    env.shutdown().await;
}
