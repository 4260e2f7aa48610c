//! The Grafana dashboard (deploy/grafana/ferry-dashboard.json) only queries metrics the services really export:
//! after an import and an export through the real gateway and workers, every metric name in every panel
//! query is a series of the `/metrics` text a worker's ops server serves.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use ferry_testkit::TestEnv;
use ferry_testkit::drive_emulator::seed::filler;
use reqwest::Method;
use serde_json::{Value, json};

fn dashboard() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/ferry-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every `expr` of every panel (rows included).
fn queries(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"].as_array().expect("panels").iter().collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    exprs
}

/// Identifiers in a PromQL expression that name Ferry metrics (`ferry_…`), skipping label matchers' values.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_string = false;
    let mut current = String::new();
    for c in expr.chars().chain([' ']) {
        if c == '"' {
            in_string = !in_string;
        }
        if !in_string && (c.is_ascii_alphanumeric() || c == '_') {
            current.push(c);
            continue;
        }
        if current.starts_with("ferry_") {
            names.push(current.clone());
        }
        current.clear();
    }
    names
}

/// Series names in Prometheus text exposition.
fn exported(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_dashboard_query_names_a_metric_the_services_export() {
    let env = TestEnv::start().await.expect("env");
    // The gateway's ops port, and the ops server the worker binaries run (here both render the process-wide
    // recorder the in-process gateway and workers share).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let ops = ferry_ops_http::serve_listener(listener, ferry_ops_http::Readiness::new()).await.expect("ops server");
    let metrics_urls = [format!("{}/metrics", env.ops_url), format!("http://{}/metrics", ops.local_addr())];
    let scrape = async || {
        let mut text = String::new();
        for url in &metrics_urls {
            let response = env.http.get(url).send().await.expect("GET /metrics");
            assert!(response.status().is_success(), "{url}: {}", response.status());
            text.push_str(&response.text().await.expect("text"));
        }
        text
    };

    let email = "metrics@example.com";
    env.emulator.state().ensure_user(email, "Metrics");
    let connection = env.connect_drive(email).await.expect("connect")["connection"]["id"].clone();
    let drive = env.emulator.state();
    let good = drive.create_file(email, None, "m.bin", "application/octet-stream", filler(1024 * 1024, 9));
    let import: Value = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": [{ "id": good, "name": "m.bin" }, { "id": "missing", "name": "x" }] }))
        .send()
        .await
        .expect("import")
        .json()
        .await
        .expect("json");
    let job = env.wait_for_job(import["job_id"].as_str().expect("job"), Duration::from_secs(60)).await.expect("import");
    assert_eq!(job["status"], "partial", "{job}");
    let image = import["image_ids"][0].as_str().expect("image").to_owned();
    let export_job =
        env.export_and_wait(connection.as_str().expect("connection id"), &[&image], "Metrics").await.expect("export");
    assert_eq!(export_job["status"], "completed");

    // Gauges are sampled every few seconds: wait (bounded) until the sampled ones are there too.
    let exprs = queries(&dashboard());
    assert!(exprs.len() >= 10, "{exprs:?}");
    let wanted: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (series, missing) = loop {
        let series = exported(&scrape().await);
        let missing: Vec<&String> = wanted.iter().filter(|name| !series.contains(*name)).collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break (series, missing.into_iter().cloned().collect::<Vec<_>>());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        missing.is_empty(),
        "dashboard queries name metrics /metrics does not have: {missing:?}\nexported: {series:?}"
    );

    // The families the dashboard is for are all there, with the labels it groups by.
    for family in [
        "ferry_transfer_duration_seconds_bucket",
        "ferry_transfer_size_bytes_bucket",
        "ferry_drive_request_duration_seconds_bucket",
        "ferry_job_duration_seconds_bucket",
        "ferry_queue_depth",
        "ferry_outbox_oldest_age_seconds",
    ] {
        assert!(wanted.contains(family), "the dashboard has no panel on {family}");
    }
    let text = scrape().await;
    assert!(
        text.lines().any(|l| l.starts_with("ferry_drive_request_duration_seconds_count{")
            && l.contains("method=\"files.get\"")
            && l.contains("status=\"404\"")
            && l.contains("reason=\"notFound\"")),
        "the missing file's lookup is counted with its status and Google's reason"
    );
    assert!(text.lines().any(|l| l.starts_with("ferry_job_duration_seconds_count{")
        && l.contains("kind=\"import\"")
        && l.contains("status=\"completed_with_errors\"")));
    ops.stop(true).await.expect("stop ops server");
    env.shutdown().await;
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names(r#"sum by (reason) (rate(ferry_drive_request_duration_seconds_count{reason!="ferry_x"}[5m]))"#),
        vec!["ferry_drive_request_duration_seconds_count".to_owned()]
    );
    assert_eq!(metric_names("max(ferry_a) / max(ferry_b)"), vec!["ferry_a".to_owned(), "ferry_b".to_owned()]);
}
