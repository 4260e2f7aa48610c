//! The gateway: Ferry's REST API (API keys, OAuth, connections, browsing, jobs, files) and the outbox relay
//! that hands job commands to RabbitMQ.

pub mod auth;
pub mod error;
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
use ferry_db::Db;
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
    pub shutdown: CancellationToken,
}

impl RunningGateway {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting requests, lets in-flight ones finish, then stops the relay.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.shutdown.cancel();
    }
}

/// Builds every dependency from settings. Nothing here talks to the network yet, so a gateway starts (and
/// reports not-ready) while Postgres or RabbitMQ are down.
pub fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let db = Db::connect(&settings.database.url, settings.database.max_connections as usize)
        .context("building the database pool")?;
    let storage = BlobStore::local(&settings.storage.root).context("opening the blob store")?;
    let ferry_credentials::ProviderClients { oauth, drive, cipher } =
        ferry_credentials::ProviderClients::from_settings(&settings)?;
    let credentials = Credentials::new(db.clone(), oauth.clone(), cipher);
    Ok(AppState {
        settings,
        db,
        storage,
        oauth,
        drive,
        credentials,
        import_command: CommandKind::ImportItem.routing_key(),
        export_command: CommandKind::ExportItem.routing_key(),
    })
}

/// Starts the API on `listener` and the outbox relay in the background.
pub fn start(settings: Settings, listener: TcpListener) -> anyhow::Result<RunningGateway> {
    let amqp_url = settings.amqp.url.clone();
    let outbox_poll = settings.gateway.outbox_poll_interval();
    let topology = Topology::new(settings.amqp.queue_prefix.clone(), settings.amqp.delivery_limit);
    let max_json = 2 * 1024 * 1024;
    let shutdown_deadline = settings.reliability.shutdown_deadline_secs;
    let state = web::Data::new(build_state(settings)?);
    let shutdown = CancellationToken::new();

    let broker_slot: relay::SharedBroker = Arc::new(Mutex::new(None));
    let store = relay::PgOutbox::start(state.db.clone(), shutdown.clone());
    tokio::spawn(relay::run(store, amqp_url, topology, outbox_poll, broker_slot.clone(), shutdown.clone()));

    let db = state.db.clone();
    let readiness = Readiness::new()
        .with_check("database", move || {
            let db = db.clone();
            async move { db.is_ready().await }
        })
        .with_check("broker", move || {
            let slot = broker_slot.clone();
            async move { slot.lock().map(|b| b.as_ref().is_some_and(|b| b.is_connected())).unwrap_or(false) }
        });

    let local_addr = listener.local_addr().context("reading the listener address")?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().limit(max_json).error_handler(error::json_error_handler))
            .app_data(web::QueryConfig::default().error_handler(error::query_error_handler))
            .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
            .wrap(actix_web::middleware::Logger::new("%r %s %Dms").log_target("ferry::access"))
            .configure(|cfg| ferry_ops_http::configure(cfg, readiness.clone()))
            .configure(routes::configure)
            // Swagger UI with its assets compiled in (works offline), reading /api/v2/openapi.json.
            .route("/docs", web::get().to(docs_redirect))
            .service(
                utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api/v2/openapi.json")),
            )
            .default_service(web::to(not_found))
    })
    .listen(listener)
    .context("listening")?
    .shutdown_timeout(shutdown_deadline)
    .run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    Ok(RunningGateway { server, handle, local_addr, shutdown })
}

async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Found().insert_header(("Location", "/docs/")).finish()
}

async fn not_found() -> Result<actix_web::HttpResponse, error::ApiError> {
    Err(error::ApiError::new(error::ErrorCode::NotFound, "No such endpoint; the API lives under /api/v2"))
}
