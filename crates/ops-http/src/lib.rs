//! The operations surface every Ferry service exposes: `GET /livez`, `GET /readyz` (named async
//! checks) and `GET /metrics` (Prometheus text from `ferry-telemetry`).
//!
//! Every service serves all three on its own ops port with [`serve`] / [`serve_listener`]. An HTTP
//! service may also mount the two probes (not `/metrics`) on its public port with [`configure_probes`].
//!
//! A check is either *critical* (it decides readiness) or *reported* (its state is shown in the body
//! but does not make the service unready): the gateway reports its broker, because jobs wait in the
//! outbox while RabbitMQ is down.

use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};

/// A readiness check gets this long before it counts as failed, so a hung dependency cannot hang
/// the probe (Kubernetes' default probe timeout is 1 s; configure the probe with a larger one).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// Named async readiness checks, run concurrently on every `GET /readyz`. Cheap to clone.
#[derive(Clone)]
pub struct Readiness {
    checks: Vec<(String, CheckFn)>,
    reported: Vec<(String, CheckFn)>,
    timeout: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("checks", &self.checks.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("reported", &self.reported.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Outcome of one readiness evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessReport {
    /// Critical checks: `(name, passed)` in registration order.
    pub checks: Vec<(String, bool)>,
    /// Reported checks: shown, never decisive.
    pub reported: Vec<(String, bool)>,
}

impl ReadinessReport {
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|(_, ok)| *ok)
    }

    pub fn failing(&self) -> Vec<&str> {
        self.checks.iter().filter(|(_, ok)| !ok).map(|(name, _)| name.as_str()).collect()
    }
}

impl Readiness {
    /// No checks: always ready.
    pub fn new() -> Self {
        Self { checks: Vec::new(), reported: Vec::new(), timeout: DEFAULT_CHECK_TIMEOUT }
    }

    /// Adds a named check; it passes when the future resolves to `true` within the timeout.
    pub fn with_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.checks.push((name.into(), Arc::new(move || check().boxed())));
        self
    }

    /// Adds a named check whose state is shown in the `/readyz` body (under `reported`) but does not
    /// decide readiness: a dependency the service keeps working without.
    pub fn with_reported<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.reported.push((name.into(), Arc::new(move || check().boxed())));
        self
    }

    /// Per-check timeout (default [`DEFAULT_CHECK_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs every check (critical and reported) concurrently.
    pub async fn evaluate(&self) -> ReadinessReport {
        let (checks, reported) =
            futures::join!(run_all(&self.checks, self.timeout), run_all(&self.reported, self.timeout));
        ReadinessReport { checks, reported }
    }
}

async fn run_all(checks: &[(String, CheckFn)], timeout: Duration) -> Vec<(String, bool)> {
    join_all(checks.iter().map(|(name, check)| {
        let fut = check();
        async move {
            let ok = matches!(tokio::time::timeout(timeout, fut).await, Ok(true));
            if !ok {
                tracing::warn!(check = %name, "readiness check failed");
            }
            (name.clone(), ok)
        }
    }))
    .await
}

/// Mounts `/livez`, `/readyz` and `/metrics` into an actix app (the ops port).
pub fn configure(cfg: &mut web::ServiceConfig, readiness: Readiness) {
    configure_probes(cfg, readiness);
    cfg.route("/metrics", web::get().to(metrics));
}

/// Mounts only `/livez` and `/readyz`: what a public port offers load balancers. Metrics stay on the ops port.
pub fn configure_probes(cfg: &mut web::ServiceConfig, readiness: Readiness) {
    cfg.app_data(web::Data::new(readiness))
        .route("/livez", web::get().to(livez))
        .route("/readyz", web::get().to(readyz));
}

fn states(checks: &[(String, bool)]) -> Map<String, Value> {
    checks
        .iter()
        .map(|(name, ok)| {
            let state = if *ok { "ok" } else { "failing" };
            (name.clone(), Value::from(state))
        })
        .collect()
}

async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.evaluate().await;
    let mut body = Map::new();
    let ready = report.is_ready();
    body.insert("status".into(), Value::from(if ready { "ready" } else { "not_ready" }));
    body.insert("checks".into(), Value::Object(states(&report.checks)));
    if !report.reported.is_empty() {
        body.insert("reported".into(), Value::Object(states(&report.reported)));
    }
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        body.insert("failing".into(), json!(report.failing()));
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(ferry_telemetry::metrics_render())
}

/// A running ops-only server. Stop it with [`OpsServer::stop`]; dropping it leaves it running.
pub struct OpsServer {
    local_addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl fmt::Debug for OpsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpsServer").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl OpsServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// An actix handle, e.g. to stop the server from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Stops accepting connections and waits for the server to finish.
    pub async fn stop(self, graceful: bool) -> std::io::Result<()> {
        self.handle.stop(graceful).await;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Binds `bind` (`host:port`) and serves only the ops endpoints on the current tokio runtime.
pub async fn serve(bind: &str, readiness: Readiness) -> std::io::Result<OpsServer> {
    let listener = TcpListener::bind(bind)
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding ops server to {bind}: {e}")))?;
    serve_listener(listener, readiness).await
}

/// Serves the ops endpoints on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn serve_listener(listener: TcpListener, readiness: Readiness) -> std::io::Result<OpsServer> {
    spawn_listener(listener, readiness)
}

/// [`serve_listener`] for callers that are not async themselves; must run inside a tokio runtime.
pub fn spawn_listener(listener: TcpListener, readiness: Readiness) -> std::io::Result<OpsServer> {
    let local_addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        let readiness = readiness.clone();
        App::new().configure(move |cfg| configure(cfg, readiness))
    })
    .workers(1)
    // The owning worker decides when to stop; it stops this server explicitly.
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    tracing::info!(%local_addr, "ops endpoints listening");
    Ok(OpsServer { local_addr, handle, task })
}
