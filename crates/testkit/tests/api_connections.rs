//! Contract of the OAuth and connection endpoints, as snapshots of whole bodies (ids and times redacted),
//! including the older clients' request and response shapes, and `last_used_at` following use.

mod api_support;

use api_support::{assert_snapshot, json_of, keys};
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OPAQUE: &[&str] = &["authorization_url", "state"];

async fn start_flow(env: &TestEnv, body: Value) -> Value {
    json_of(
        env.api(Method::POST, "/cloud-storage/auth/google_drive").json(&body).send().await.expect("start"),
        StatusCode::OK,
    )
    .await
}

fn connection_snapshot(last_used: Value) -> Value {
    json!({
        "id": "[uuid]",
        "provider": "google_drive",
        "provider_email": "erin@example.com",
        "provider_display_name": "Erin Example",
        "is_active": true,
        "connected_at": "[time]",
        "created_at": "[time]",
        "last_used_at": last_used,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_and_connection_bodies_match_the_seeds() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    env.emulator.state().ensure_user("erin@example.com", "Erin Example");

    // Seed 000 start shape; seed 001 adds `redirect_uri`.
    let started = start_flow(&env, json!({ "provider": "google_drive", "login_hint": "erin@example.com" })).await;
    assert_snapshot(
        &started,
        OPAQUE,
        json!({ "authorization_url": "[redacted]", "state": "[redacted]", "provider": "google_drive" }),
    );
    let (code, state) = env.authorize(started["authorization_url"].as_str().expect("url")).await.expect("authorize");
    // Seed 001's callback body carries `redirect_uri` too.
    let completed = json_of(
        env.api(Method::POST, "/cloud-storage/auth/google_drive/callback")
            .json(&json!({ "code": code, "state": state, "redirect_uri": "https://your-app.example/callback" }))
            .send()
            .await
            .expect("callback"),
        StatusCode::OK,
    )
    .await;
    assert_snapshot(&completed, OPAQUE, json!({ "connection": connection_snapshot(Value::Null), "is_new": true }));
    let connection_id = completed["connection"]["id"].as_str().expect("id").to_owned();

    // The list: seed 000's envelope plus `connections` for seed 001 clients.
    let listed =
        json_of(env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list"), StatusCode::OK).await;
    assert_snapshot(
        &listed,
        OPAQUE,
        json!({
            "items": [connection_snapshot(Value::Null)],
            "connections": [connection_snapshot(Value::Null)],
            "total_count": 1,
            "limit": 20,
            "offset": 0,
            "has_more": false,
        }),
    );

    // The popup flow: the page's payload (seed 001 adds provider_user_id).
    let started = start_flow(&env, json!({ "login_hint": "erin@example.com" })).await;
    let (code, state) = env.authorize(started["authorization_url"].as_str().expect("url")).await.expect("authorize");
    let html = env
        .http
        .get(env.url("/api/v2/cloud-storage/auth/google_drive/callback"))
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let payload =
        html.split("var payload = ").nth(1).and_then(|rest| rest.split(";\n").next()).expect("payload in page");
    let payload: Value = serde_json::from_str(payload).expect("payload JSON");
    assert_snapshot(
        &payload,
        &["provider_user_id"],
        json!({
            "type": "oauth-complete",
            "success": true,
            "connection": {
                "id": "[uuid]",
                "provider": "google_drive",
                "provider_email": "erin@example.com",
                "provider_user_id": "[redacted]",
                "display_name": "Erin Example",
                "is_token_expired": false,
            },
        }),
    );
    assert_eq!(payload["connection"]["id"], connection_id.as_str(), "the same account reuses its connection");

    // Browsing marks the connection used.
    let _ = json_of(
        env.api(Method::GET, &format!("/cloud-storage/connections/{connection_id}/browse"))
            .send()
            .await
            .expect("browse"),
        StatusCode::OK,
    )
    .await;
    let listed =
        json_of(env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list"), StatusCode::OK).await;
    assert_snapshot(&listed["items"][0], OPAQUE, connection_snapshot(json!("[time]")));

    // Disconnect, then the connection is gone from the default list, still listed with active_only=false.
    let gone = json_of(
        env.api(Method::DELETE, &format!("/cloud-storage/connections/{connection_id}")).send().await.expect("delete"),
        StatusCode::OK,
    )
    .await;
    assert_snapshot(&gone, OPAQUE, json!({ "success": true, "message": "Connection disconnected successfully" }));
    let listed =
        json_of(env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list"), StatusCode::OK).await;
    assert_eq!(listed["total_count"], 0);
    let all = json_of(
        env.api(Method::GET, "/cloud-storage/connections?active_only=false").send().await.expect("list"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["items"][0]["is_active"], false);
    let again =
        env.api(Method::DELETE, &format!("/cloud-storage/connections/{connection_id}")).send().await.expect("again");
    assert_snapshot(
        &json_of(again, StatusCode::NOT_FOUND).await,
        OPAQUE,
        json!({ "error": { "code": "NOT_FOUND", "message": "Connection not found", "details": {} } }),
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_mark_the_connection_used() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let drive = env.emulator.state();
    let mut ids = Vec::new();
    for email in ["used-import@example.com", "used-export@example.com"] {
        drive.ensure_user(email, "User");
        let body = env.connect_drive(email).await.expect("connect");
        assert_eq!(body["connection"]["last_used_at"], Value::Null);
        ids.push(body["connection"]["id"].as_str().expect("id").to_owned());
    }
    let file = drive.create_file("used-import@example.com", None, "a.txt", "text/plain", "hi".into());
    json_of(
        env.api(Method::POST, "/cloud-storage/import")
            .json(&json!({ "connection_id": ids[0], "files": [{ "id": file, "name": "a.txt" }] }))
            .send()
            .await
            .expect("import"),
        StatusCode::OK,
    )
    .await;
    let upload =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"));
    let uploaded =
        json_of(env.api(Method::POST, "/files").multipart(upload).send().await.expect("upload"), StatusCode::CREATED)
            .await;
    json_of(
        env.api(Method::POST, "/cloud-storage/export")
            .json(&json!({ "connection_id": ids[1], "image_ids": [uploaded["id"]] }))
            .send()
            .await
            .expect("export"),
        StatusCode::OK,
    )
    .await;
    let listed =
        json_of(env.api(Method::GET, "/cloud-storage/connections").send().await.expect("list"), StatusCode::OK).await;
    for item in listed["items"].as_array().expect("items") {
        assert!(item["last_used_at"].is_string(), "{item}");
        assert_eq!(
            keys(item),
            [
                "connected_at",
                "created_at",
                "id",
                "is_active",
                "last_used_at",
                "provider",
                "provider_display_name",
                "provider_email"
            ]
        );
    }
    env.shutdown().await;
}
