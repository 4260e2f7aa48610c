use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{App, test};
use ferry_ops_http::{Readiness, configure, configure_probes, serve_listener};
use serde_json::Value;

fn readiness(db_ok: Arc<AtomicBool>) -> Readiness {
    Readiness::new()
        .with_check("database", move || {
            let db_ok = db_ok.clone();
            async move { db_ok.load(Ordering::SeqCst) }
        })
        .with_check("amqp", || async { true })
}

#[actix_web::test]
async fn livez_and_readyz_in_an_app() {
    let db_ok = Arc::new(AtomicBool::new(true));
    let app = test::init_service(App::new().configure(|cfg| configure(cfg, readiness(db_ok.clone())))).await;

    let resp = test::call_service(&app, test::TestRequest::get().uri("/livez").to_request()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    let resp = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["amqp"], "ok");

    db_ok.store(false, Ordering::SeqCst);
    let resp = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(resp.status(), 503);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"], "failing");
    assert_eq!(body["checks"]["amqp"], "ok");
    assert_eq!(body["failing"], serde_json::json!(["database"]));
}

#[actix_web::test]
async fn reported_checks_are_shown_but_do_not_decide_readiness() {
    let broker_ok = Arc::new(AtomicBool::new(false));
    let flag = broker_ok.clone();
    let readiness = Readiness::new().with_check("database", || async { true }).with_reported("broker", move || {
        let flag = flag.clone();
        async move { flag.load(Ordering::SeqCst) }
    });
    let app = test::init_service(App::new().configure(|cfg| configure_probes(cfg, readiness.clone()))).await;

    let resp = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"], serde_json::json!({"database": "ok"}));
    assert_eq!(body["reported"], serde_json::json!({"broker": "failing"}));

    broker_ok.store(true, Ordering::SeqCst);
    let resp = test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["reported"], serde_json::json!({"broker": "ok"}));

    // The probes-only mount has no /metrics: that lives on the ops port.
    let resp = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status(), 404);
}

#[actix_web::test]
async fn hung_checks_time_out_as_failing() {
    let readiness = Readiness::new().with_timeout(Duration::from_millis(50)).with_check("stuck", || async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        true
    });
    let report = readiness.evaluate().await;
    assert!(!report.is_ready());
    assert_eq!(report.failing(), vec!["stuck"]);
}

#[tokio::test]
async fn real_server_serves_ops_endpoints_and_stops() {
    let _telemetry = ferry_telemetry::init("ops-http-test", "json", "warn");
    metrics::counter!("ferry_ops_http_test_hits_total").increment(7);

    let db_ok = Arc::new(AtomicBool::new(false));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = serve_listener(listener, readiness(db_ok.clone())).await.expect("serve");
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();

    let livez = client.get(format!("{base}/livez")).send().await.expect("livez");
    assert_eq!(livez.status(), 200);

    let readyz = client.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(readyz.status(), 503);
    let body: Value = readyz.json().await.expect("json");
    assert_eq!(body["failing"], serde_json::json!(["database"]));

    db_ok.store(true, Ordering::SeqCst);
    let readyz = client.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(readyz.status(), 200);

    let metrics = client.get(format!("{base}/metrics")).send().await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain")),
    );
    let text = metrics.text().await.expect("text");
    assert!(text.contains("ferry_ops_http_test_hits_total 7"), "{text}");

    server.stop(true).await.expect("stop");
    assert!(client.get(format!("{base}/livez")).send().await.is_err());
}
