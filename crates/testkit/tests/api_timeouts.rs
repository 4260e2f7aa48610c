//! Every call the gateway makes to Google is bounded: when Drive or the OAuth server goes silent past
//! `drive.read_timeout_secs`, the API answers 504 PROVIDER_TIMEOUT instead of hanging with the client.

mod api_support;

use api_support::json_of;
use ferry_testkit::drive_emulator::Faults;
use ferry_testkit::{TestEnv, Workers};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Google answers after 3 s; the gateway waits at most 1 s for a byte.
const LATENCY_MS: u64 = 3000;

fn slow(endpoints: &[&str]) -> Faults {
    Faults {
        latency_ms: LATENCY_MS,
        endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
        ..Faults::default()
    }
}

#[track_caller]
fn assert_provider_timeout(body: &Value) {
    assert_eq!(body["error"]["code"], "PROVIDER_TIMEOUT", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("did not answer in time"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_provider_is_a_504_provider_timeout_for_browse_picker_and_oauth() {
    let env = TestEnv::start_with(Workers::NONE, &[("drive.read_timeout_secs", "1")]).await.expect("env");
    let email = "slow@example.com";
    let drive = env.emulator.state();
    drive.ensure_user(email, "Slow");
    let file_id = drive.create_file(email, None, "photo.jpg", "image/jpeg", vec![1u8; 64].into());
    let connection =
        env.connect_drive(email).await.expect("connect")["connection"]["id"].as_str().expect("id").to_owned();
    let browse = format!("/cloud-storage/connections/{connection}/browse");

    // Browse: files.list goes silent.
    drive.set_faults(slow(&["files.list"])).expect("faults");
    let response = env.api(Method::GET, &browse).send().await.expect("browse");
    assert_provider_timeout(&json_of(response, StatusCode::GATEWAY_TIMEOUT).await);

    // Picker proxy: files.get goes silent.
    drive.set_faults(slow(&["files.get"])).expect("faults");
    let session = json_of(
        env.api(Method::GET, &format!("/cloud-storage/connections/{connection}/picker-token"))
            .send()
            .await
            .expect("picker token"),
        StatusCode::OK,
    )
    .await;
    let response = env
        .api(Method::POST, "/cloud-storage/picker-proxy")
        .json(&json!({ "session_id": session["session"]["session_id"], "endpoint": format!("files/{file_id}") }))
        .send()
        .await
        .expect("proxy");
    assert_provider_timeout(&json_of(response, StatusCode::GATEWAY_TIMEOUT).await);

    // OAuth: the token endpoint goes silent during the code exchange.
    drive.set_faults(slow(&["oauth.token"])).expect("faults");
    let started = json_of(
        env.api(Method::POST, "/cloud-storage/auth/google_drive")
            .json(&json!({ "login_hint": email }))
            .send()
            .await
            .expect("start"),
        StatusCode::OK,
    )
    .await;
    let (code, state) = env.authorize(started["authorization_url"].as_str().expect("url")).await.expect("authorize");
    let response = env
        .api(Method::POST, "/cloud-storage/auth/google_drive/callback")
        .json(&json!({ "code": code, "state": state }))
        .send()
        .await
        .expect("callback");
    assert_provider_timeout(&json_of(response, StatusCode::GATEWAY_TIMEOUT).await);

    // Once Google answers again, so does the API.
    drive.set_faults(Faults::default()).expect("faults");
    let response = env.api(Method::GET, &browse).send().await.expect("browse");
    assert_eq!(json_of(response, StatusCode::OK).await["files"][0]["name"], "Shared with me");
    env.shutdown().await;
}
