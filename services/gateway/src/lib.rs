//! The gateway: Ferry's REST API (API keys, OAuth, connections, browsing, jobs, files) and the outbox relay
//! that hands job commands to RabbitMQ.

pub mod auth;
pub mod console;
pub mod error;
pub mod job_changes;
pub mod openapi;
pub mod relay;
pub mod routes;
pub mod state;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpServer, web};
use anyhow::Context;
use ferry_config::Settings;
use ferry_credentials::Credentials;
use ferry_db::{ApiDb, Db};
use ferry_ops_http::Readiness;
use ferry_queue::{CancellationToken, CommandKind, Topology};
use ferry_storage::BlobStore;

use crate::state::AppState;

/// A started gateway: the HTTP server plus its background relay.
pub struct RunningGateway {
    /// Resolves when the server stopped (after a signal or [`RunningGateway::stop`]).
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub handle: actix_web::dev::ServerHandle,
    pub local_addr: std::net::SocketAddr,
    /// The ops server (`/livez`, `/readyz`, `/metrics`) on `gateway.ops_bind`.
    pub ops: ferry_ops_http::OpsServer,
    pub shutdown: CancellationToken,
    /// The outbox relay; [`RunningGateway::stop`] waits for it.
    relay: tokio::task::JoinHandle<()>,
}

/// How long [`RunningGateway::stop`] waits for the relay to finish its batch.
const RELAY_STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

impl RunningGateway {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    pub fn ops_url(&self) -> String {
        format!("http://{}", self.ops.local_addr())
    }

    /// Stops accepting requests, lets in-flight ones finish, then stops the relay (waiting for it, so nothing it
    /// started outlives the gateway) and the ops server.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        if let Err(err) = self.finish().await {
            tracing::warn!(error = %err, "the server did not stop cleanly");
        }
    }

    /// Waits until the server stopped (actix handles SIGINT/SIGTERM itself: it stops accepting and drains
    /// requests), then stops the relay and the ops server the same way as [`RunningGateway::stop`].
    pub async fn finish(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.shutdown.cancel();
        let mut relay = self.relay;
        if tokio::time::timeout(RELAY_STOP_DEADLINE, &mut relay).await.is_err() {
            tracing::warn!("the outbox relay did not stop in time; aborting it");
            relay.abort();
        }
        if let Err(err) = self.ops.stop(true).await {
            tracing::warn!(error = %err, "ops server did not stop cleanly");
        }
        served.context("server task")?.context("serving")
    }
}

/// Builds every dependency from settings. Nothing here talks to the network yet, so a gateway starts (and
/// reports not-ready) while Postgres or RabbitMQ are down.
/// Returns the state handlers share and the system handle the outbox relay needs.
pub fn build_state(settings: Settings) -> anyhow::Result<(AppState, Db)> {
    let db = Db::connect(&settings.database.url, settings.database.max_connections as usize)
        .context("building the database pool")?;
    let storage = BlobStore::from_settings(&settings.storage).context("opening the blob store")?;
    let ferry_credentials::ProviderClients { oauth, drive, cipher } =
        ferry_credentials::ProviderClients::from_settings(&settings)?;
    let credentials = Credentials::new(db.clone(), oauth.clone(), cipher);
    let signers = routes::documents::access::DocumentSigners::from_settings(&settings)?;
    let pacer = ferry_pacer::DrivePacer::new(
        db.clone(),
        ferry_pacer::PacerPolicy::with_max_rate(settings.reliability.drive_pacer_max_rate),
        settings.reliability.drive_requests_per_sec,
    );
    let state = AppState {
        pacer,
        signers,
        settings,
        db: ApiDb::new(db.clone()),
        job_changes: job_changes::JobChanges::default(),
        api_keys: crate::auth::ApiKeyCache::default(),
        storage,
        oauth,
        drive,
        credentials,
        import_command: CommandKind::ImportItem.routing_key(),
        export_command: CommandKind::ExportItem.routing_key(),
    };
    Ok((state, db))
}

/// Starts the API on `listener`, the ops endpoints on `gateway.ops_bind` and the outbox relay in the
/// background. Must run inside a tokio runtime.
pub fn start(settings: Settings, listener: TcpListener) -> anyhow::Result<RunningGateway> {
    let ops_bind = settings.gateway.ops_bind.clone();
    let ops_listener = TcpListener::bind(&ops_bind).with_context(|| format!("binding gateway.ops_bind {ops_bind}"))?;
    let amqp_url = settings.amqp.url.clone();
    let outbox_poll = settings.gateway.outbox_poll_interval();
    let confirm_timeout = std::time::Duration::from_secs(settings.reliability.confirm_timeout_secs);
    let topology = Topology::new(settings.amqp.queue_prefix.clone(), settings.amqp.delivery_limit);
    let max_json = routes::jobs::MAX_JSON_BODY_BYTES;
    let shutdown_deadline = settings.reliability.shutdown_deadline_secs;
    let (state, system_db) = build_state(settings)?;
    let state = web::Data::new(state);
    let shutdown = CancellationToken::new();

    tokio::spawn(state.job_changes.clone().run(system_db.url().to_owned(), shutdown.clone()));
    let broker_slot: relay::SharedBroker = Arc::new(Mutex::new(None));
    let store = relay::PgOutbox::start(system_db, shutdown.clone());
    let relay = tokio::spawn(relay::run(
        store,
        amqp_url,
        topology,
        outbox_poll,
        confirm_timeout,
        broker_slot.clone(),
        shutdown.clone(),
    ));

    let db = state.db.clone();
    // The broker is reported, not required: while RabbitMQ is down the API keeps accepting jobs into the
    // outbox, and the relay publishes them when it is back.
    let readiness = Readiness::new()
        .with_check("database", move || {
            let db = db.clone();
            async move { db.is_ready().await }
        })
        .with_reported("broker", {
            let slot = broker_slot.clone();
            move || {
                let slot = slot.clone();
                async move { slot.lock().map(|b| b.as_ref().is_some_and(|b| b.is_connected())).unwrap_or(false) }
            }
        })
        // False while RabbitMQ blocks publishers (a memory or disk alarm): jobs wait in the outbox meanwhile.
        .with_reported("broker_publishing", move || {
            let slot = broker_slot.clone();
            async move {
                slot.lock().map(|b| b.as_ref().is_some_and(|b| b.is_connected() && !b.is_blocked())).unwrap_or(false)
            }
        });
    let ops = ferry_ops_http::spawn_listener(ops_listener, readiness.clone()).context("starting the ops server")?;

    let local_addr = listener.local_addr().context("reading the listener address")?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().limit(max_json).error_handler(error::json_error_handler))
            .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
            .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
            .wrap(access_log())
            .wrap(actix_web::middleware::from_fn(trace_request))
            // Probes only: /metrics is served on the ops port, never to API clients.
            .configure(|cfg| ferry_ops_http::configure_probes(cfg, readiness.clone()))
            // Before the `/api/v2` scope, which would otherwise claim the path.
            .route("/api/v2/openapi.json", web::get().to(openapi::serve))
            .configure(routes::configure)
            .configure(routes::documents::configure)
            .configure(routes::libraries::configure)
            .configure(console::configure)
            // Swagger UI with its assets compiled in (works offline), reading /api/v2/openapi.json.
            .route("/docs", web::get().to(docs_redirect))
            .service(
                utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api/v2/openapi.json")),
            )
            .default_service(web::to(not_found))
    })
    // Nagle's algorithm would hold a response's body behind its headers until the client's delayed ACK (~40 ms).
    .tcp_nodelay(true)
    .listen(listener)
    .context("listening")?
    .shutdown_timeout(shutdown_deadline)
    .run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    Ok(RunningGateway { server, handle, local_addr, ops, shutdown, relay })
}

/// The access log: method, path, status and duration. Never the query string: it can carry an OAuth `code` and
/// `state` (the browser callback) or a token, and headers (API keys) are never logged either.
pub fn access_log() -> actix_web::middleware::Logger {
    actix_web::middleware::Logger::new("%{request}xi %s %Dms")
        .custom_request_replace("request", |req| format!("{} {} {:?}", req.method(), req.path(), req.version()))
        .log_target(ACCESS_LOG_TARGET)
}

/// One span per request (`http.request`), continuing a caller's `traceparent` when it sends one; every log line
/// of the request carries its `trace_id` and `span_id` when traces are on.
async fn trace_request(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use tracing::Instrument;
    let method = request.method().to_string();
    let path = request.path().to_owned();
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {path}"),
        http.request.method = %method,
        url.path = %path,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    if let Some(parent) = request.headers().get("traceparent").and_then(|value| value.to_str().ok()) {
        ferry_telemetry::set_parent_from_traceparent(&span, parent);
    }
    if let Some((trace_id, span_id)) = ferry_telemetry::trace_ids(&span) {
        span.record("trace_id", trace_id);
        span.record("span_id", span_id);
    }
    let response = next.call(request).instrument(span.clone()).await?;
    span.record("http.response.status_code", response.status().as_u16());
    Ok(response)
}

/// The `log` target of [`access_log`] lines.
pub const ACCESS_LOG_TARGET: &str = "ferry::access";

async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Found().insert_header(("Location", "/docs/")).finish()
}

/// No route matched: 405 with `Allow` when the path exists with other methods, else 404.
pub(crate) async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, error::ApiError> {
    let allowed = openapi::allowed_methods(req.path());
    if !allowed.is_empty() {
        return Err(error::ApiError::new(
            error::ErrorCode::MethodNotAllowed,
            format!("{} is not allowed on this path; use {}", req.method(), allowed.join(", ")),
        )
        .with_details(crate::error::ErrorDetails {
            allowed: Some(allowed.iter().map(|m| (*m).to_owned()).collect()),
            ..crate::error::ErrorDetails::default()
        }));
    }
    Err(error::ApiError::new(error::ErrorCode::NotFound, "No such endpoint; the API lives under /api/v2"))
}
