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
        ("/cloud-storage/auth/google_drive/callback", json!({ "code": "c", "state": "never-issued" }), "state"),
    ];
    for (path, body, field) in cases {
        let response = env.api(Method::POST, path).json(&body).send().await.expect("send");
        let error = error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
        assert_eq!(error["error"]["details"]["field"], field, "{path} {body}");
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
    error_of(response, StatusCode::BAD_REQUEST, "VALIDATION_ERROR").await;
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
    assert!(!html.contains("alert(1)"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_answer() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let live: Value = env.http.get(env.url("/livez")).send().await.expect("livez").json().await.expect("json");
    assert_eq!(live["status"], "ok");
    let ready = env.http.get(env.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["broker"], "ok");
    let metrics = env.http.get(env.url("/metrics")).send().await.expect("metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    env.shutdown().await;
}
