//! The OpenAPI description is served as committed, and the interactive docs page works from the gateway
//! alone (its assets are compiled in, nothing is fetched from elsewhere).

use ferry_testkit::{TestEnv, Workers};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_and_docs_are_served_without_a_key_or_network() {
    let env = TestEnv::start_with(Workers::NONE, &[]).await.expect("env");
    let served = env.http.get(env.url("/api/v2/openapi.json")).send().await.expect("openapi");
    assert_eq!(served.status(), StatusCode::OK);
    let served: Value = served.json().await.expect("json");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json"))
        .expect("docs/openapi.json is committed");
    let committed: Value = serde_json::from_str(&committed).expect("committed JSON");
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");

    let redirect = env.http.get(env.url("/docs")).send().await.expect("docs");
    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert_eq!(redirect.headers()["location"], "/docs/");
    let page = env.http.get(env.url("/docs/")).send().await.expect("docs page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    // Every script and stylesheet the page loads is relative, served by the gateway itself.
    let assets: Vec<&str> =
        html.split(['"', '\'']).filter(|part| part.ends_with(".js") || part.ends_with(".css")).collect();
    assert!(!assets.is_empty(), "{html}");
    for asset in &assets {
        assert!(!asset.contains("://"), "no remote asset: {asset}");
        let url = env.url(&format!("/docs/{}", asset.trim_start_matches("./")));
        let response = env.http.get(&url).send().await.expect("asset");
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let body = response.text().await.expect("asset body");
        if asset.contains("initializer") {
            assert!(body.contains("/api/v2/openapi.json"), "{body}");
        }
    }
    env.shutdown().await;
}
