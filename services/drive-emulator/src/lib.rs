//! A Google Drive v3 + Google OAuth 2.0 server for development, tests and benchmarks.
//!
//! One origin serves Google's paths: the OAuth web-server flow (`/o/oauth2/v2/auth` with auto-approve or
//! a consent page, `/token`, `/revoke`, userinfo, discovery) and Drive v3 (files with `q`/paging/`fields`,
//! media/multipart/resumable uploads and updates, downloads with Range, Workspace conversion and export,
//! about, changes, shared drives). Replies follow `drive-api-facts.md`: int64 values as strings,
//! Google-shaped JSON errors. Metadata lives in memory; contents are streamed to disk (a temporary
//! directory removed when the emulator stops or is dropped, or `data_dir`, which also keeps the state).
//! Fault injection and counters are under `/__emulator/` ([`faults`]). Test helpers on [`EmulatorState`]
//! seed users, files and shared drives, change faults and inspect what clients did.

mod admin;
mod convert;
mod error;
pub mod faults;
mod fields;
mod files;
mod oauth;
mod query;
pub mod seed;
mod state;
mod store;
mod upload;
mod util;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use actix_web::dev::{ServerHandle, Service};
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use serde_json::json;

pub use error::{DriveError, DriveErrorDetail, OAuthError};
pub use faults::{Counters, ErrorRates, Faults, FaultsError, UserCounters};
pub use state::{DEFAULT_USER_EMAIL, DEFAULT_USER_NAME, EmulatedFileInfo, EmulatorState};

/// How the emulator behaves as an OAuth provider.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The only OAuth client the emulator knows.
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of issued access tokens (`expires_in`).
    pub access_token_ttl: Duration,
    /// Approve every authorization request at once; when false, a consent page (Allow / Deny) is shown.
    pub auto_approve: bool,
    /// Fault injection in force from the start (changeable at run time).
    pub faults: Faults,
    /// Where file contents (and, with persistence, the state) live; `None` = a temporary directory.
    pub data_dir: Option<std::path::PathBuf>,
    /// How long a resumable upload session lives (Drive: a week); afterwards its URL answers 404.
    pub upload_session_ttl: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            client_id: "ferry-dev-client".to_owned(),
            client_secret: "ferry-dev-secret".to_owned(),
            access_token_ttl: Duration::from_secs(3599),
            auto_approve: true,
            faults: Faults::default(),
            data_dir: None,
            upload_session_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// An emulator serving in the background; stop it with [`RunningEmulator::stop`].
pub struct RunningEmulator {
    base_url: String,
    addr: SocketAddr,
    state: EmulatorState,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    saver: tokio::task::JoinHandle<()>,
    /// Removes the temporary content directory when the emulator is stopped or dropped.
    _cleanup: store::CleanupGuard,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Direct access to the emulated world, for seeding and inspection.
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the server.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.saver.abort();
        if let Err(e) = self.state.save_if_changed(u64::MAX) {
            tracing::error!(error = %e, "cannot save the emulator state");
        }
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "emulator server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "emulator server task failed"),
        }
    }
}

/// How long the emulator keeps an idle connection (longer than Ferry's clients keep one in their pools).
const EMULATOR_KEEP_ALIVE_SECS: u64 = 120;

/// Starts the emulator on `listener` (tests bind `127.0.0.1:0`) in the background.
///
/// Must be called inside a tokio runtime. Signals are not handled here; binaries do that.
pub async fn spawn(config: EmulatorConfig, listener: TcpListener) -> std::io::Result<RunningEmulator> {
    spawn_prepared(config, listener, |_| Ok(())).await
}

/// Like [`spawn`], but runs `prepare` (seeding) on the state before the first request is served and
/// before anything is written to a `data_dir`, so a half-seeded state is never seen or kept.
pub async fn spawn_prepared(
    config: EmulatorConfig,
    listener: TcpListener,
    prepare: impl FnOnce(&EmulatorState) -> std::io::Result<()>,
) -> std::io::Result<RunningEmulator> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let state = EmulatorState::new(config)?;
    prepare(&state)?;
    let data = web::Data::new(state.clone());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let server = HttpServer::new(move || {
        let counter = data.clone();
        App::new()
            .app_data(data.clone())
            .wrap_fn(move |req, srv| {
                let path = req.path().to_owned();
                let method = req.method().clone();
                let mut delay = Duration::ZERO;
                let mut injected = None;
                if !path.starts_with("/__emulator/") && path != "/livez" && path != "/readyz" {
                    counter.count_request(&path);
                    let endpoint = faults::endpoint_name(&method, &path, req.query_string());
                    let user = counter.caller_email(req.request());
                    let plan = counter.plan(&endpoint, user.as_deref(), faults::is_drive_path(&path));
                    delay = plan.delay;
                    injected = plan.error;
                }
                let started = Instant::now();
                // An injected error answers without calling the handler at all.
                let call = match injected {
                    Some(error) => Err((req, error)),
                    None => Ok(srv.call(req)),
                };
                async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let res = match call {
                        Ok(fut) => fut.await?,
                        Err((req, error)) => req.into_response(error.error_response()),
                    };
                    tracing::info!(
                        %method,
                        %path,
                        status = res.status().as_u16(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "request"
                    );
                    Ok(res)
                }
            })
            .configure(routes)
    })
    .workers(workers)
    // Nagle's algorithm would hold a response's body behind its headers until the client's delayed ACK (~40 ms).
    .tcp_nodelay(true)
    // Google's front ends keep idle connections open for minutes; a short server keep-alive would race clients
    // that reuse a pooled connection just as it closes ("connection closed before message completed").
    .keep_alive(Duration::from_secs(EMULATOR_KEEP_ALIVE_SECS))
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    // With --data-dir, the state is written shortly after it changes (and on stop).
    let saver = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut saved = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                match state.save_if_changed(saved) {
                    Ok(g) => saved = g,
                    Err(e) => tracing::error!(error = %e, "cannot save the emulator state"),
                }
            }
        })
    };
    tracing::info!(%base_url, "drive emulator listening");
    let _cleanup = state.store().cleanup_guard();
    Ok(RunningEmulator { base_url, addr, state, handle, task, saver, _cleanup })
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/o/oauth2/v2/auth", "/o/oauth2/auth"])
            .route(web::get().to(oauth::authorize))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/o/oauth2/v2/auth/consent")
            .route(web::post().to(oauth::consent))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/token").route(web::post().to(oauth::token)).default_service(web::to(method_not_allowed)))
    .service(
        web::resource(["/revoke", "/o/oauth2/revoke"])
            .route(web::post().to(oauth::revoke))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(["/oauth2/v3/userinfo", "/v1/userinfo", "/oauth2/v2/userinfo"])
            .route(web::get().to(oauth::userinfo))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/.well-known/openid-configuration").route(web::get().to(oauth::discovery)))
    // Before `/files/{id}`, which would otherwise take it.
    .service(
        web::resource("/drive/v3/files/generateIds")
            .route(web::get().to(files::generate_ids))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/files")
            .route(web::get().to(files::list))
            .route(web::post().to(files::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/files/{id}")
            .route(web::get().to(files::get))
            .route(web::patch().to(files::update))
            .route(web::delete().to(files::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/files/{id}/export")
            .route(web::get().to(files::export))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/about")
            .route(web::get().to(files::about))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/changes/startPageToken")
            .route(web::get().to(files::start_page_token))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/changes")
            .route(web::get().to(files::changes))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/drives")
            .route(web::get().to(files::drives))
            .route(web::post().to(files::drive_create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/drive/v3/drives/{id}")
            .route(web::get().to(files::drive_get))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(["/upload/drive/v3/files/{id}", "/resumable/upload/drive/v3/files/{id}"])
            .route(web::patch().to(upload::update))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(["/upload/drive/v3/files", "/resumable/upload/drive/v3/files"])
            .route(web::post().to(upload::post))
            .route(web::put().to(upload::put))
            .route(web::delete().to(upload::cancel))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/__emulator/tokens/expire")
            .route(web::post().to(admin_expire_tokens))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/__emulator/requests").route(web::get().to(admin_requests)))
    .service(
        web::resource("/__emulator/export/{id}")
            .route(web::get().to(files::export_link))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/__emulator/faults")
            .route(web::get().to(admin::get_faults))
            .route(web::put().to(admin::put_faults))
            .route(web::patch().to(admin::patch_faults))
            .route(web::delete().to(admin::clear_faults))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/__emulator/oauth")
            .route(web::get().to(admin::get_oauth))
            .route(web::patch().to(admin::patch_oauth))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/__emulator/counters")
            .route(web::get().to(admin::get_counters))
            .route(web::delete().to(admin::reset_counters))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/__emulator/users/{email}/revoke")
            .route(web::post().to(admin::revoke_user))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource(["/livez", "/readyz"]).route(web::get().to(live)))
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    DriveError::new(
        StatusCode::NOT_FOUND,
        "notFound",
        format!("The requested URL {} was not found on this server.", req.path()),
    )
    .error_response()
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    DriveError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "httpMethodNotAllowed",
        format!("Method {} is not allowed for {}.", req.method(), req.path()),
    )
    .error_response()
}

async fn admin_expire_tokens(state: web::Data<EmulatorState>) -> HttpResponse {
    let expired = state.expire_all_access_tokens();
    HttpResponse::Ok().json(json!({ "expired": expired }))
}

async fn admin_requests(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(state.request_counts())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}
