//! Process-wide observability set-up shared by every Ferry binary: `tracing` logs (JSON or
//! human-readable, env-filter, `RUST_LOG` wins) and a global Prometheus `metrics` recorder whose
//! text is served on `/metrics` by `ferry-ops-http`.
//!
//! Everything here is idempotent: tests start several services in one process, so a second
//! [`init`] keeps the first subscriber and recorder and still returns a working handle.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use metrics_exporter_prometheus::PrometheusHandle as MetricsHandle;

/// How often histogram buffers are drained (`install_recorder` leaves this to the caller).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Buckets for every histogram whose name ends in `_seconds` (request, item and upload latencies).
const SECONDS_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// `None` inside means another recorder was installed by someone else first.
static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static LOGS: OnceLock<()> = OnceLock::new();

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
}

/// Installs the log subscriber and the metrics recorder (first call wins; later calls are no-ops).
///
/// `log_format`: `"json"` (default, also used for unknown values) or `"pretty"`.
/// `log_filter`: env-filter directives such as `"info,ferry_queue=debug"`; a non-empty `RUST_LOG`
/// replaces it.
pub fn init(service_name: &str, log_format: &str, log_filter: &str) -> TelemetryGuard {
    init_logs(log_format, log_filter);
    let metrics = install_metrics();
    tracing::info!(service = service_name, log_format, metrics = metrics.is_some(), "telemetry initialised");
    TelemetryGuard { service_name: service_name.to_owned(), metrics }
}

fn init_logs(log_format: &str, log_filter: &str) {
    LOGS.get_or_init(|| {
        let (filter, bad_filter) = build_filter(log_filter);
        let registry = tracing_subscriber::registry().with(filter);
        // try_init also bridges the `log` crate (lapin, actix) into tracing.
        let result = if log_format.eq_ignore_ascii_case("pretty") {
            registry
                .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()).with_target(true))
                .try_init()
        } else {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(false),
                )
                .try_init()
        };
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
