//! Process-wide observability set-up shared by every Ferry binary: `tracing` logs (JSON or
//! human-readable, env-filter, `RUST_LOG` wins), OpenTelemetry traces exported over OTLP/HTTP (protobuf) when an
//! endpoint is configured, and a global Prometheus `metrics` recorder whose text is served on `/metrics` by
//! `ferry-ops-http`. W3C `traceparent` strings carry a trace across the outbox and RabbitMQ
//! ([`current_traceparent`], [`set_parent_from_traceparent`]); this is the only crate that knows OpenTelemetry.
//!
//! Everything here is idempotent: tests start several services in one process, so a second
//! [`init`] keeps the first subscriber and recorder and still returns a working handle.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use metrics_exporter_prometheus::PrometheusHandle as MetricsHandle;

/// How often histogram buffers are drained (`install_recorder` leaves this to the caller).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Buckets for every histogram whose name ends in `_seconds` (request, item and upload latencies).
const SECONDS_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// `None` inside means another recorder was installed by someone else first.
static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static LOGS: OnceLock<()> = OnceLock::new();
/// The tracer provider, when traces are exported.
static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Keeps what [`init`] set up. Hold it for the life of the process.
#[derive(Debug, Clone)]
pub struct TelemetryGuard {
    service_name: String,
    metrics: Option<PrometheusHandle>,
}

impl TelemetryGuard {
    /// Handle to the global Prometheus recorder (`None` only if a foreign recorder was installed).
    pub fn metrics_handle(&self) -> Option<PrometheusHandle> {
        self.metrics.clone()
    }

    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Sends the spans ended so far (a no-op when traces are off). Call before exiting.
    pub fn flush_traces(&self) {
        flush_traces();
    }
}

/// Sends the spans ended so far to the OTLP endpoint (a no-op when traces are off).
pub fn flush_traces() {
    if let Some(provider) = TRACES.get()
        && let Err(err) = provider.force_flush()
    {
        tracing::warn!(error = %err, "flushing traces failed");
    }
}

/// Where traces go: the configured endpoint, else `OTEL_EXPORTER_OTLP_ENDPOINT`; `None` (traces off) when neither
/// is set. The value is the collector's base URL (`http://collector:4318`); `/v1/traces` is appended.
pub fn otlp_traces_endpoint(configured: Option<&str>) -> Option<String> {
    let base = configured
        .map(str::to_owned)
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|value| !value.trim().is_empty())?;
    Some(format!("{}/v1/traces", base.trim().trim_end_matches('/')))
}

/// Installs the log subscriber and the metrics recorder (first call wins; later calls are no-ops).
///
/// `log_format`: `"json"` (default, also used for unknown values) or `"pretty"`.
/// `log_filter`: env-filter directives such as `"info,ferry_queue=debug"`; a non-empty `RUST_LOG`
/// replaces it.
pub fn init(service_name: &str, log_format: &str, log_filter: &str) -> TelemetryGuard {
    init_traced(service_name, log_format, log_filter, None)
}

/// [`init`], plus traces exported over OTLP/HTTP to [`otlp_traces_endpoint`]`(otlp_endpoint)` when that is set.
/// The service name on the traces is `OTEL_SERVICE_NAME` if set, else `service_name`.
pub fn init_traced(
    service_name: &str,
    log_format: &str,
    log_filter: &str,
    otlp_endpoint: Option<&str>,
) -> TelemetryGuard {
    let endpoint = otlp_traces_endpoint(otlp_endpoint);
    init_logs(service_name, log_format, log_filter, endpoint.as_deref());
    let metrics = install_metrics();
    tracing::info!(
        service = service_name,
        log_format,
        metrics = metrics.is_some(),
        traces = TRACES.get().is_some(),
        "telemetry initialised"
    );
    TelemetryGuard { service_name: service_name.to_owned(), metrics }
}

/// The tracer provider exporting to `endpoint` (batched, on the exporter's own thread).
fn tracer_provider(service_name: &str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|err| err.to_string())?;
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| service_name.to_owned());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

fn init_logs(service_name: &str, log_format: &str, log_filter: &str, traces_endpoint: Option<&str>) {
    LOGS.get_or_init(|| {
        let (filter, bad_filter) = build_filter(log_filter);
        // Spans go to the exporter at info level whatever the log filter says (a quiet log still traces).
        let mut trace_problem = None;
        let traces = traces_endpoint.and_then(|endpoint| match tracer_provider(service_name, endpoint) {
            Ok(provider) => {
                opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
                let tracer = provider.tracer("ferry");
                let _ = TRACES.set(provider);
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
                )
            }
            Err(problem) => {
                trace_problem = Some(problem);
                None
            }
        });
        let registry = tracing_subscriber::registry().with(traces);
        // try_init also bridges the `log` crate (lapin, actix) into tracing.
        let result = if log_format.eq_ignore_ascii_case("pretty") {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(std::io::stdout().is_terminal())
                        .with_target(true)
                        .with_filter(filter),
                )
                .try_init()
        } else {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(false)
                        .with_filter(filter),
                )
                .try_init()
        };
        if let Some(problem) = trace_problem {
            tracing::warn!(%problem, "traces cannot be exported; continuing without them");
        }
        if result.is_ok() {
            if let Some(problem) = bad_filter {
                tracing::warn!(%problem, "invalid log filter, using \"info\"");
            }
            if !matches!(log_format.to_ascii_lowercase().as_str(), "json" | "pretty") {
                tracing::warn!(log_format, "unknown log format, using json");
            }
        }
    });
}

/// The W3C `traceparent` of the current span (`00-{trace id}-{span id}-01`), `None` when traces are off or there
/// is no current span. Stored with outbox rows and sent as an AMQP header so the next hop continues the trace.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// The W3C `traceparent` of `span` (see [`current_traceparent`]).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    TRACES.get()?;
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the span a `traceparent` names (from an outbox row or an AMQP header). Ignored when
/// traces are off or the value is not a valid `traceparent`.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    if TRACES.get().is_none() {
        return;
    }
    let carrier = std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// The trace and span ids of `span` as lower-case hex, for log fields (`None` when traces are off).
pub fn trace_ids(span: &tracing::Span) -> Option<(String, String)> {
    TRACES.get()?;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| (span_context.trace_id().to_string(), span_context.span_id().to_string()))
}

/// `RUST_LOG` (if set and non-empty) wins over the configured filter; a bad filter falls back to
/// `info` rather than silencing the service.
fn build_filter(configured: &str) -> (EnvFilter, Option<String>) {
    let directives = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => configured.to_owned(),
    };
    match EnvFilter::try_new(&directives) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(format!("{directives:?}: {e}"))),
    }
}

/// Buckets for every histogram whose name ends in `_bytes` (transferred file sizes): 1 KiB to 16 GiB, ×4.
const BYTES_BUCKETS: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
    17179869184.0,
];

/// Installs the global Prometheus recorder once and returns its handle (also on later calls).
pub fn install_metrics() -> Option<PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new();
            for (suffix, buckets) in [("_seconds", SECONDS_BUCKETS), ("_bytes", BYTES_BUCKETS)] {
                match builder.set_buckets_for_metric(Matcher::Suffix(suffix.into()), buckets) {
                    Ok(with_buckets) => builder = with_buckets,
                    Err(e) => {
                        tracing::warn!(error = %e, suffix, "histogram buckets rejected");
                        builder = PrometheusBuilder::new();
                    }
                }
            }
            match builder.install_recorder() {
                Ok(handle) => {
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a metrics recorder was already installed; /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the metrics upkeep thread");
    }
}

/// The global recorder's handle, if it has been installed.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    METRICS.get().cloned().flatten()
}

/// Prometheus text exposition of every metric recorded so far (installs the recorder if needed).
pub fn metrics_render() -> String {
    install_metrics().map(|handle| handle.render()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_is_harmless_and_metrics_render() {
        let first = init("test-a", "json", "info");
        let second = init("test-b", "pretty", "debug");
        assert!(first.metrics_handle().is_some());
        assert!(second.metrics_handle().is_some());
        assert_eq!(second.service_name(), "test-b");

        metrics::counter!("ferry_telemetry_test_total", "kind" => "unit").increment(3);
        metrics::histogram!("ferry_telemetry_test_duration_seconds").record(0.02);
        let text = metrics_render();
        assert!(text.contains("ferry_telemetry_test_total{kind=\"unit\"} 3"), "{text}");
        assert!(text.contains("ferry_telemetry_test_duration_seconds_bucket"), "{text}");
        let via_handle = second.metrics_handle().map(|h| h.render()).unwrap_or_default();
        assert!(via_handle.contains("ferry_telemetry_test_total"));
        assert!(metrics_handle().is_some());
    }

    #[test]
    fn bad_filters_fall_back() {
        let (_, problem) = build_filter("info,[[[");
        // RUST_LOG may be set by whoever runs the tests; only check when it is not.
        if std::env::var("RUST_LOG").map_or(true, |v| v.trim().is_empty()) {
            assert!(problem.is_some());
            let (_, ok) = build_filter("info,ferry_queue=debug");
            assert!(ok.is_none());
        }
    }
}
