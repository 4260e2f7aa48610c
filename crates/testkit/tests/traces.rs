//! One import is one trace: an OTLP/HTTP receiver in this test process collects what the services export, and
//! the gateway's request span, the job's transaction, the relay's publish and the importer's item (with its Drive
//! calls and database writes) must share one trace id, each span the child of the one before; the request and item
//! spans carry the `trace_id` and `span_id` fields their log lines print.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use ferry_testkit::{TestEnv, Workers};

/// The part of OTLP's `ExportTraceServiceRequest` this test reads (prost skips the other fields).
#[derive(Clone, PartialEq, Message)]
struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<Span>,
}

#[derive(Clone, PartialEq, Message)]
struct Span {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    name: String,
    #[prost(message, repeated, tag = "9")]
    attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
struct KeyValue {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
struct AnyValue {
    #[prost(string, optional, tag = "1")]
    string_value: Option<String>,
    #[prost(int64, optional, tag = "3")]
    int_value: Option<i64>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<String> {
        let value = self.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
        value.string_value.clone().or_else(|| value.int_value.map(|v| v.to_string()))
    }
}

/// A minimal OTLP/HTTP collector: accepts `POST /v1/traces` (protobuf, keep-alive) and keeps every span.
struct Receiver {
    base_url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (kept, seen) = (spans.clone(), paths.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (kept, seen) = (kept.clone(), seen.clone());
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut reader = BufReader::new(read);
                    loop {
                        let mut request_line = String::new();
                        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        seen.lock().expect("lock").push(request_line.split(' ').nth(1).unwrap_or("").to_owned());
                        if let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) {
                            let mut kept = kept.lock().expect("lock");
                            for resource in request.resource_spans {
                                for scope in resource.scope_spans {
                                    kept.extend(scope.spans);
                                }
                            }
                        }
                        let answer =
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { base_url, spans, paths }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("lock").clone()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_is_one_trace_from_the_request_to_the_workers_drive_calls() {
    let receiver = Receiver::start().await;
    // First in this process: the services started below export to the receiver.
    let telemetry = ferry_telemetry::init_traced("ferry-test", "pretty", "warn", Some(&receiver.base_url));
    let env = TestEnv::start_with(Workers { importer: true, exporter: false }, &[]).await.expect("env");
    let email = "traces@example.com";
    env.emulator.state().ensure_user(email, "Trace Tester");
    let connection = env.connect_drive(email).await.expect("connect")["connection"]["id"]
        .as_str()
        .expect("connection id")
        .to_owned();
    let drive = env.emulator.state();
    let files: Vec<serde_json::Value> = (0..2u8)
        .map(|i| {
            let id =
                drive.create_file(email, None, &format!("t{i}.bin"), "application/octet-stream", vec![i; 4096].into());
            json!({ "id": id, "name": format!("t{i}.bin") })
        })
        .collect();
    let response = env
        .api(Method::POST, "/cloud-storage/import")
        .json(&json!({ "connection_id": connection, "files": files }))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status(), StatusCode::OK);
    let job_id = response.json::<serde_json::Value>().await.expect("json")["job_id"].as_str().expect("job").to_owned();
    let job = env.wait_for_job(&job_id, Duration::from_secs(60)).await.expect("job finishes");
    assert_eq!(job["status"], "completed", "{job}");

    // Spans are batched: flush, then wait for the ones this test looks at.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        telemetry.flush_traces();
        let spans = receiver.spans();
        let items = spans.iter().filter(|s| s.name == "importer item").count();
        let writes = spans.iter().filter(|s| s.name == "db.complete_import_item").count();
        if items >= 2 && writes >= 2 {
            break spans;
        }
        assert!(tokio::time::Instant::now() < deadline, "spans never arrived: {:?}", receiver.paths.lock());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(receiver.paths.lock().expect("lock").iter().all(|p| p == "/v1/traces"));

    let by_id: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let request =
        spans.iter().find(|s| s.name == "POST /api/v2/cloud-storage/import").expect("the gateway's request span");
    assert_eq!(request.attribute("http.response.status_code").as_deref(), Some("200"));
    let trace = request.trace_id.clone();
    let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let named = |name: &str| -> Vec<&Span> { in_trace.iter().copied().filter(|s| s.name == name).collect() };
    let parent_of = |span: &Span| by_id.get(&span.parent_span_id).map(|p| p.name.clone());

    let transaction = named("db.create_import_job");
    assert_eq!(transaction.len(), 1, "one job transaction in the request's trace");
    assert_eq!(transaction[0].parent_span_id, request.span_id, "the transaction is the request's child");

    let publishes = named("outbox.publish");
    assert!(publishes.len() >= 2, "one publish per item in the trace, got {}", publishes.len());
    for publish in &publishes {
        assert_eq!(publish.parent_span_id, transaction[0].span_id, "a publish continues the stored context");
    }

    let items = named("importer item");
    assert_eq!(items.len(), 2, "both items of the job in the request's trace (trace {})", hex(&trace));
    for item in &items {
        assert_eq!(parent_of(item).as_deref(), Some("outbox.publish"), "an item is the child of its message");
        // The ids recorded as span fields are what every log line inside the item prints.
        assert_eq!(item.attribute("trace_id"), Some(hex(&trace)), "the item's log fields name its trace");
        assert_eq!(item.attribute("span_id"), Some(hex(&item.span_id)), "and its span");
    }
    assert_eq!(request.attribute("trace_id"), Some(hex(&trace)), "the request's log fields name its trace");
    let item_ids: Vec<&[u8]> = items.iter().map(|s| s.span_id.as_slice()).collect();
    let under_an_item = |span: &Span| {
        let mut current = span;
        for _ in 0..16 {
            if item_ids.contains(&current.parent_span_id.as_slice()) {
                return true;
            }
            match by_id.get(&current.parent_span_id) {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    };
    let downloads = named("drive files.get_media");
    assert_eq!(downloads.len(), 2, "each item's download is a Drive span in the trace");
    for download in &downloads {
        assert!(under_an_item(download), "a Drive call belongs to its item");
        assert_eq!(download.attribute("http.response.status_code").as_deref(), Some("200"));
    }
    let writes = named("db.complete_import_item");
    assert_eq!(writes.len(), 2, "each item's completion is a database span in the trace");
    assert!(writes.iter().all(|w| under_an_item(w)), "a database write belongs to its item");
    env.shutdown().await;
}
