//! The access log never records what could let a reader act as someone: OAuth `code`/`state`, tokens in query
//! strings, API keys. The log target is captured for real (the gateway's own logger, through `log` → tracing).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_testkit::{TestEnv, Workers};
use reqwest::Method;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Every event of the access log target, as one line of its fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    fn lines(&self) -> Vec<String> {
        self.0.lock().map(|lines| lines.clone()).unwrap_or_default()
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        // Records bridged from `log` carry their target in the `log.target` field.
        let mut line = Line(event.metadata().target().to_owned());
        event.record(&mut line);
        if line.0.contains(ferry_gateway::ACCESS_LOG_TARGET)
            && let Ok(mut lines) = self.0.lock()
        {
            lines.push(line.0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_records_paths_without_codes_states_tokens_or_keys() {
    let capture = Capture::default();
    // Installed before the environment starts, so the gateway's telemetry set-up keeps this subscriber.
    tracing_subscriber::registry().with(capture.clone()).try_init().expect("capture subscriber");
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");

    let secrets = ["SECRETCODE4711", "SECRETSTATE0815", "SECRETTOKEN1234"];
    let callback =
        env.http
            .get(env.url(&format!(
                "/api/v2/cloud-storage/auth/google_drive/callback?code={}&state={}",
                secrets[0], secrets[1]
            )))
            .send()
            .await
            .expect("browser callback");
    assert!(callback.status().is_success());
    let listed = env
        .api(Method::GET, &format!("/cloud-storage/connections?access_token={}", secrets[2]))
        .send()
        .await
        .expect("list");
    assert!(listed.status().is_success());
    let completed = env
        .api(Method::POST, "/cloud-storage/auth/google_drive/callback")
        .json(&json!({ "code": secrets[0], "state": secrets[1] }))
        .send()
        .await
        .expect("api callback");
    assert_eq!(completed.status(), reqwest::StatusCode::NOT_FOUND, "an unknown state names nothing");

    // A line is written when its response is finished; give the last one a moment.
    let mut lines = capture.lines();
    for _ in 0..50 {
        if lines.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        lines = capture.lines();
    }
    let all = lines.join("\n");
    assert!(all.contains("GET /api/v2/cloud-storage/auth/google_drive/callback"), "{all}");
    assert!(all.contains("GET /api/v2/cloud-storage/connections"), "{all}");
    assert!(all.contains("POST /api/v2/cloud-storage/auth/google_drive/callback"), "{all}");
    for secret in secrets.iter().copied().chain([env.api_key.as_str()]) {
        assert!(!all.contains(secret), "the access log leaks `{secret}`:\n{all}");
    }
    assert!(!all.contains('?'), "no query string is logged:\n{all}");
    env.shutdown().await;
}
