//! The picker session and the picker proxy: what a session carries, which Drive calls the proxy makes, and
//! a table of hostile `endpoint` values that must be refused without any request reaching Drive.

mod api_support;

use api_support::{assert_snapshot, json_of};
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SETTINGS: &[(&str, &str)] =
    &[("google.picker_app_id", "1234567890"), ("google.picker_developer_key", "AIza-test-developer-key")];

async fn session(env: &TestEnv, connection: &str) -> Value {
    json_of(
        env.api(Method::GET, &format!("/cloud-storage/connections/{connection}/picker-token"))
            .send()
            .await
            .expect("token"),
        StatusCode::OK,
    )
    .await
}

async fn proxy(env: &TestEnv, key: Option<&str>, body: Value) -> reqwest::Response {
    let key = key.unwrap_or(&env.api_key);
    env.api_as(key, Method::POST, "/cloud-storage/picker-proxy").json(&body).send().await.expect("proxy")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picker_sessions_proxy_only_the_allowed_drive_calls() {
    let env = TestEnv::start_with(Workers::NONE, SETTINGS).await.expect("env");
    let email = "picker@example.com";
    let drive = env.emulator.state();
    drive.ensure_user(email, "Picker");
    let file_id = drive.create_file(email, None, "photo.jpg", "image/jpeg", vec![1u8; 2048].into());
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();

    let created = session(&env, &connection).await;
    assert_snapshot(
        &created,
        &["access_token"],
        json!({ "session": {
            "session_id": "[picker_sess]",
            "access_token": "[redacted]",
            "app_id": "1234567890",
            "developer_key": "AIza-test-developer-key",
            "expires_at": "[time]",
        } }),
    );
    let session_id = created["session"]["session_id"].as_str().expect("session").to_owned();
    assert!(session_id.starts_with("picker_sess_"));
    let listed: Value =
        env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list").json().await.expect("json");
    assert!(listed["items"][0]["last_used_at"].is_string(), "the picker marks the connection used");

    // The seed's example call.
    let got = json_of(
        proxy(
            &env,
            None,
            json!({ "session_id": session_id, "endpoint": format!("files/{file_id}"), "params": { "fields": "id,name,mimeType,size" } }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        got,
        json!({ "data": { "id": file_id, "name": "photo.jpg", "mimeType": "image/jpeg", "size": "2048" } })
    );
    let list = json_of(
        proxy(&env, None, json!({ "session_id": session_id, "endpoint": "files", "params": { "pageSize": 10, "fields": "files(id,name)" } }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(list["data"]["files"].as_array().expect("files").iter().any(|f| f["id"] == file_id.as_str()));
    let about = json_of(
        proxy(&env, None, json!({ "session_id": session_id, "endpoint": "about", "params": { "fields": "user" } }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(about["data"]["user"]["emailAddress"], email);
    let missing = proxy(&env, None, json!({ "session_id": session_id, "endpoint": "files/doesNotExist123" })).await;
    assert_eq!(json_of(missing, StatusCode::NOT_FOUND).await["error"]["code"], "NOT_FOUND");

    // Parameters outside the endpoint's allowlist are refused before Drive is called.
    let before = drive.request_counts();
    for (endpoint, params) in [
        (format!("files/{file_id}"), json!({ "alt": "media" })),
        (format!("files/{file_id}"), json!({ "access_token": "x" })),
        ("files".to_owned(), json!({ "uploadType": "media" })),
        ("files".to_owned(), json!({ "key": "x" })),
        ("about".to_owned(), json!({ "q": "x" })),
        (format!("files/{file_id}/export"), json!({ "fields": "*" })),
    ] {
        let response =
            proxy(&env, None, json!({ "session_id": session_id, "endpoint": endpoint, "params": params })).await;
        let body = json_of(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["error"]["code"], "PICKER_PARAM_NOT_ALLOWED", "{endpoint} {params}");
    }
    for params in [json!({ "fields": { "nested": 1 } }), json!({ "fields": "a\nb" }), json!(["fields"])] {
        let response =
            proxy(&env, None, json!({ "session_id": session_id, "endpoint": "files", "params": params })).await;
        assert_eq!(json_of(response, StatusCode::BAD_REQUEST).await["error"]["code"], "VALIDATION_ERROR");
    }
    let response =
        proxy(&env, None, json!({ "session_id": session_id, "endpoint": format!("files/{file_id}/export") })).await;
    assert_eq!(json_of(response, StatusCode::BAD_REQUEST).await["error"]["details"]["field"], "params");
    assert_eq!(drive.request_counts(), before, "no refused call reached Drive");

    // Sessions: unknown, malformed, another tenant's, expired, or of a disconnected connection are all 404/400.
    let other = env.second_tenant_key("picker-other").await.expect("key");
    let good = json!({ "session_id": session_id, "endpoint": "about" });
    assert_eq!(proxy(&env, Some(&other), good.clone()).await.status(), StatusCode::NOT_FOUND);
    let unknown = json!({ "session_id": "picker_sess_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "endpoint": "about" });
    assert_eq!(proxy(&env, None, unknown).await.status(), StatusCode::NOT_FOUND);
    let malformed = proxy(&env, None, json!({ "session_id": "ya29.token", "endpoint": "about" })).await;
    assert_eq!(json_of(malformed, StatusCode::BAD_REQUEST).await["error"]["details"]["field"], "session_id");
    let foreign_token = env
        .api_as(&other, Method::GET, &format!("/cloud-storage/connections/{connection}/picker-token"))
        .send()
        .await
        .expect("foreign");
    assert_eq!(foreign_token.status(), StatusCode::NOT_FOUND);
    let hash = ferry_crypto::hash_api_key(&session_id);
    assert!(
        env.database
            .db
            .set_picker_session_expiry(&hash, chrono::Utc::now() - chrono::Duration::seconds(1))
            .await
            .expect("expire")
    );
    let expired = proxy(&env, None, good.clone()).await;
    assert_snapshot(
        &json_of(expired, StatusCode::NOT_FOUND).await,
        &[],
        json!({ "error": { "code": "NOT_FOUND", "message": "Picker session not found", "details": {} } }),
    );
    let fresh = session(&env, &connection).await["session"]["session_id"].as_str().expect("id").to_owned();
    env.api(Method::DELETE, &format!("/cloud-storage/connections/{connection}")).send().await.expect("disconnect");
    let after_disconnect = proxy(&env, None, json!({ "session_id": fresh, "endpoint": "about" })).await;
    assert_eq!(after_disconnect.status(), StatusCode::NOT_FOUND);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_proxy_endpoints_never_reach_drive() {
    let env = TestEnv::start_with(Workers::NONE, SETTINGS).await.expect("env");
    let email = "hostile@example.com";
    let drive = env.emulator.state();
    drive.ensure_user(email, "Hostile");
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    let session_id = session(&env, &connection).await["session"]["session_id"].as_str().expect("id").to_owned();
    let emulator = env.emulator.base_url().to_owned();

    let long_id = format!("files/{}", "a".repeat(5000));
    let very_long = "x".repeat(100_000);
    let hostile: Vec<String> = [
        // empty and structural
        "",
        "/",
        "//",
        "files/",
        "/files",
        "files//",
        "files//abc",
        "/about",
        "about/",
        "files/abc/",
        "files/abc/export/",
        // traversal
        "..",
        ".",
        "../files",
        "files/..",
        "files/../about",
        "files/./abc",
        "files/abc/../../token",
        "files/abc/export/../../about",
        "files/abc\\..\\..\\token",
        "files/..%2f..%2ftoken",
        // encoded slashes and dots
        "files%2Fabc",
        "files%2fabc",
        "files/abc%2Fexport",
        "files/%2e%2e/about",
        "%66iles",
        "files/abc%00",
        "files/abc%0d%0aHost:%20evil",
        // absolute and scheme-relative URLs
        "https://evil.example/drive/v3/files",
        "http://127.0.0.1:1/files",
        "//evil.example/files",
        "file:///etc/passwd",
        "https:/evil.example",
        "files@evil.example",
        "http:files",
        // other Drive and Google APIs
        "drive/v3/files",
        "drive/v2/files",
        "upload/drive/v3/files",
        "oauth2/v3/userinfo",
        "token",
        "revoke",
        "o/oauth2/v2/auth",
        "gmail/v1/users/me/messages",
        "files/generateIds",
        "files/trash",
        "files/abc/watch",
        "changes",
        "changes/startPageToken",
        "drives",
        "teamdrives",
        "files/abc/permissions",
        "files/abc/revisions",
        "files/abc/comments",
        "files/abc/export/x",
        "__emulator/requests",
        "__emulator/tokens/expire",
        // query and fragment injection
        "files?alt=media",
        "files/abc?alt=media",
        "about?fields=*",
        "files#x",
        "files/abc;alt=media",
        "files/abc&alt=media",
        "files/abc?uploadType=media",
        "files/abc/export?mimeType=text/plain",
        // whitespace, control characters, header injection
        "files/ab c",
        " files",
        "files ",
        "files\t",
        "files/abc\n",
        "files/abc\r\nHost: evil.example",
        "files\u{0}",
        // unicode look-alikes and direction tricks
        "ﬁles",
        "fіles",
        "files/ａｂｃ",
        "files/abc\u{202e}",
        "files/аbc",
        "ａｂｏｕｔ",
        "files\u{2215}abc",
        "files\u{ff0f}abc",
        // case and shape variants
        "FILES",
        "About",
        "Files/abc",
        "files/abc/EXPORT",
        "files/{id}",
        "files/*",
        "files/abc/export/export",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([long_id, very_long, format!("{emulator}/drive/v3/files"), format!("{emulator}/drive/v3/about")])
    .collect();
    assert!(hostile.len() >= 40, "{} values", hostile.len());

    let before = drive.request_counts();
    for endpoint in &hostile {
        let response = proxy(&env, None, json!({ "session_id": session_id, "endpoint": endpoint })).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{endpoint:?}: {body}");
        assert_eq!(body["error"]["code"], "PICKER_ENDPOINT_NOT_ALLOWED", "{endpoint:?}: {body}");
        assert_eq!(body["error"]["details"]["field"], "endpoint");
    }
    // A missing endpoint is refused the same way.
    let response = proxy(&env, None, json!({ "session_id": session_id })).await;
    assert_eq!(json_of(response, StatusCode::BAD_REQUEST).await["error"]["code"], "PICKER_ENDPOINT_NOT_ALLOWED");
    assert_eq!(drive.request_counts(), before, "no hostile endpoint produced a request to Drive");
    assert_eq!(drive.request_count("/drive/v3/about"), before.get("/drive/v3/about").copied().unwrap_or(0));

    // The same session still works for an allowed call, which is counted.
    let about = proxy(&env, None, json!({ "session_id": session_id, "endpoint": "about" })).await;
    assert_eq!(about.status(), StatusCode::OK);
    assert!(drive.request_count("/drive/v3/about") > before.get("/drive/v3/about").copied().unwrap_or(0));
    env.shutdown().await;
}
