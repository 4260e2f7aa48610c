//! The libraries endpoints (seed 003), at `/api/libraries` and `/api/integrations`.

use actix_web::{HttpResponse, web};
use ferry_core::ConnectionId;
use ferry_db::libraries::{Library, LibraryChanges, LibraryLink, LibraryWrite, NewLibrary};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};
use crate::routes::connections::handlers::{parse_connection_id, with_drive_token};
use crate::routes::libraries::dto::{
    AccountView, CreateLibraryRequest, IntegrationList, IntegrationView, LibraryConnectionView, LibraryList,
    LibraryView, LinkConnectionRequest, MAX_LIBRARY_NAME_CHARS, MAX_NATURAL_ID_CHARS, MAX_SYNC_INTERVAL_SECS,
    MIN_SYNC_INTERVAL_SECS, SetIntegrationRequest, SyncAccepted, SyncErrorView, SyncProgressView, SyncRequest,
    SyncResult, UpdateLibraryRequest,
};
use crate::routes::{paging, storable, timestamp};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/integrations", web::get().to(list_integrations))
        .route("/api/libraries", web::get().to(list))
        .route("/api/libraries", web::post().to(create))
        .route("/api/libraries/{id}", web::get().to(get))
        .route("/api/libraries/{id}", web::patch().to(update))
        .route("/api/libraries/{id}", web::delete().to(delete))
        .route("/api/libraries/{id}/integration", web::get().to(get_integration))
        .route("/api/libraries/{id}/integration", web::put().to(set_integration))
        .route("/api/libraries/{id}/connection", web::get().to(get_connection))
        .route("/api/libraries/{id}/connection", web::put().to(link_connection))
        .route("/api/libraries/{id}/connection", web::delete().to(unlink_connection))
        .route("/api/libraries/{id}/account", web::get().to(account))
        .route("/api/libraries/{id}/_sync", web::post().to(sync))
        .route("/api/progress/{progress}", web::get().to(progress));
}

/// The integration this deployment's Google OAuth client forms. Its id is derived from the client id, so it is
/// stable across restarts and replicas and changes when the deployment points at another client.
pub fn google_integration(state: &AppState) -> IntegrationView {
    let google = &state.settings.google;
    let digest = ferry_crypto::sha256_hex(format!("ferry.integration.google-drive.{}", google.client_id).as_bytes());
    let mut bytes = [0u8; 16];
    for (n, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digest[2 * n..2 * n + 2], 16).unwrap_or(0);
    }
    // RFC 9562 version 8 (custom), variant 10.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    IntegrationView {
        id: Uuid::from_bytes(bytes).to_string(),
        name: "Google Drive".to_owned(),
        kind: "google-drive".to_owned(),
        embedded: true,
        library_id: None,
        auth_type: "oauth2".to_owned(),
        client_id: google.client_id.clone(),
        auth_uri: google.auth_url.clone(),
        token_uri: google.token_url.clone(),
        scope: google.scopes.join(" "),
    }
}

/// A request body read as the document states it: a JSON object (serde would also read a struct from an array),
/// then the type. Errors name what to fix.
async fn object_body<T: serde::de::DeserializeOwned>(body: web::Json<serde_json::Value>) -> ApiResult<T> {
    let value = body.into_inner();
    if !value.is_object() {
        return Err(ApiError::new(ErrorCode::ValidationError, "The body must be a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|err| ApiError::new(ErrorCode::ValidationError, format!("Invalid JSON body: {err}")))
}

fn library_name(raw: &str) -> ApiResult<String> {
    storable("name", raw)?;
    let name = raw.trim_matches(|c: char| c.is_ascii_whitespace()).to_owned();
    if name.is_empty() || name.chars().count() > MAX_LIBRARY_NAME_CHARS || name.contains('/') {
        return Err(ApiError::field(
            "name",
            format!("name must be 1 to {MAX_LIBRARY_NAME_CHARS} characters, not blank, without `/`"),
        ));
    }
    Ok(name)
}

fn natural_id(raw: &str) -> ApiResult<String> {
    let valid = !raw.is_empty()
        && raw.chars().count() <= MAX_NATURAL_ID_CHARS
        && raw.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && Uuid::parse_str(raw).is_err();
    if !valid {
        return Err(ApiError::field(
            "naturalId",
            format!(
                "naturalId must be 1 to {MAX_NATURAL_ID_CHARS} letters, digits, `.`, `_` or `-`, start with a letter \
                 or digit, and not be a UUID"
            ),
        ));
    }
    Ok(raw.to_owned())
}

fn natural_id_taken() -> ApiError {
    ApiError::new(ErrorCode::Conflict, "Another library already has this naturalId")
        .with_details(ErrorDetails::field("naturalId"))
}

/// The library `{id}` names (its id or natural id), or 404.
pub async fn library(tenant: &Tenant, key: &str) -> ApiResult<Library> {
    tenant.db().find_library(key).await?.ok_or_else(|| ApiError::not_found("Library"))
}

#[utoipa::path(operation_id = "integrations_list", get, path = "/api/integrations", tag = "libraries", description = "The integrations libraries can sync through: this deployment's Google OAuth client (`google-drive`). Never a secret.", responses((status = 200, description = "Integrations", body = IntegrationList)))]
async fn list_integrations(state: web::Data<AppState>, _tenant: Tenant) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(IntegrationList { integrations: vec![google_integration(&state)] }))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(operation_id = "libraries_list", get, path = "/api/libraries", tag = "libraries", description = "The tenant's libraries, oldest first.", params(("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("offset" = Option<i64>, Query, minimum = 0, description = "default 0")), responses((status = 200, description = "Libraries", body = LibraryList), (status = 400, description = "Invalid paging", body = crate::error::ErrorBody)))]
async fn list(tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let (limit, offset) = paging(query.limit, query.offset, 50, 200)?;
    let (rows, total_count) = tenant.db().list_libraries(limit, offset).await?;
    Ok(HttpResponse::Ok().json(LibraryList {
        libraries: rows.iter().map(LibraryView::from).collect(),
        total_count,
        limit,
        offset,
    }))
}

#[utoipa::path(operation_id = "libraries_create", post, path = "/api/libraries", tag = "libraries", description = "Create a library: a directory of the store (at the top level, with the library's name) that a connection will keep in sync with a Drive folder.", request_body = CreateLibraryRequest, responses((status = 201, description = "Created", body = LibraryView), (status = 409, description = "Another library has this naturalId", body = crate::error::ErrorBody)))]
async fn create(tenant: Tenant, body: web::Json<serde_json::Value>) -> ApiResult<HttpResponse> {
    let body: CreateLibraryRequest = object_body(body).await?;
    let name = library_name(&body.name)?;
    let natural = body.natural_id.as_deref().map(natural_id).transpose()?;
    let new = NewLibrary { id: Uuid::now_v7(), natural_id: natural.as_deref(), name: &name };
    match tenant.db().create_library(new).await? {
        LibraryWrite::Done(library) => Ok(HttpResponse::Created().json(LibraryView::from(library.as_ref()))),
        LibraryWrite::NaturalIdTaken => Err(natural_id_taken()),
        LibraryWrite::NotFound => Err(ApiError::internal("creating a library", &"created row not returned")),
    }
}

const LIBRARY_ID: &str = "the library's id or natural id";

#[utoipa::path(operation_id = "libraries_get", get, path = "/api/libraries/{id}", tag = "libraries", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), responses((status = 200, description = "The library", body = LibraryView)))]
async fn get(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(LibraryView::from(&library(&tenant, &path).await?)))
}

#[utoipa::path(operation_id = "libraries_update", patch, path = "/api/libraries/{id}", tag = "libraries", description = "Rename (the directory too), change or remove the natural id, or set the interval of scheduled syncs.", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), request_body = UpdateLibraryRequest, responses((status = 200, description = "The library", body = LibraryView), (status = 409, description = "Another library has this naturalId", body = crate::error::ErrorBody)))]
async fn update(
    tenant: Tenant,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    let body: UpdateLibraryRequest = object_body(body).await?;
    if let Some(Some(interval)) = body.sync_interval_secs
        && !(MIN_SYNC_INTERVAL_SECS..=MAX_SYNC_INTERVAL_SECS).contains(&interval)
    {
        return Err(ApiError::field(
            "syncIntervalSecs",
            format!("syncIntervalSecs must be {MIN_SYNC_INTERVAL_SECS} to {MAX_SYNC_INTERVAL_SECS}, or null for none"),
        ));
    }
    let changes = LibraryChanges {
        name: body.name.as_deref().map(library_name).transpose()?,
        natural_id: body.natural_id.map(|value| value.as_deref().map(natural_id).transpose()).transpose()?,
        sync_interval_secs: body.sync_interval_secs,
    };
    match tenant.db().update_library(found.id, &changes).await? {
        LibraryWrite::Done(library) => Ok(HttpResponse::Ok().json(LibraryView::from(library.as_ref()))),
        LibraryWrite::NaturalIdTaken => Err(natural_id_taken()),
        LibraryWrite::NotFound => Err(ApiError::not_found("Library")),
    }
}

#[utoipa::path(operation_id = "libraries_delete", delete, path = "/api/libraries/{id}", tag = "libraries", description = "Remove the library. Its directory goes to the trash with its files (restore it with the documents API).", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), responses((status = 204, description = "Removed")))]
async fn delete(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    if !tenant.db().delete_library(found.id).await? {
        return Err(ApiError::not_found("Library"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(operation_id = "libraries_get_integration", get, path = "/api/libraries/{id}/integration", tag = "libraries", description = "The integration the library syncs through; 404 when none is set.", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), responses((status = 200, description = "The integration", body = IntegrationView)))]
async fn get_integration(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    let builtin = google_integration(&state);
    match found.integration_id {
        Some(id) if id.to_string() == builtin.id => {
            Ok(HttpResponse::Ok().json(IntegrationView { library_id: Some(found.id.to_string()), ..builtin }))
        }
        // An integration this deployment no longer has (its OAuth client changed): as good as none.
        _ => Err(ApiError::new(ErrorCode::NotFound, "The library has no integration; PUT one (GET /api/integrations)")),
    }
}

#[utoipa::path(operation_id = "libraries_set_integration", put, path = "/api/libraries/{id}/integration", tag = "libraries", description = "Set the library's integration. A different integration than before drops the library's connection (its files stay).", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), request_body = SetIntegrationRequest, responses((status = 200, description = "The integration", body = IntegrationView)))]
async fn set_integration(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    let builtin = google_integration(&state);
    let body: SetIntegrationRequest = object_body(body).await?;
    let requested = Uuid::parse_str(&body.integration_id)
        .map_err(|_| ApiError::field("integrationId", "integrationId must be a UUID (GET /api/integrations)"))?;
    if requested.to_string() != builtin.id {
        return Err(ApiError::new(ErrorCode::NotFound, "No such integration (GET /api/integrations lists them)")
            .with_details(ErrorDetails::field("integrationId")));
    }
    tenant
        .db()
        .set_library_integration(found.id, Some(requested))
        .await?
        .ok_or_else(|| ApiError::not_found("Library"))?;
    Ok(HttpResponse::Ok().json(IntegrationView { library_id: Some(found.id.to_string()), ..builtin }))
}

/// The library's connection, or 404 when it has none (or it is no longer active).
async fn linked_connection(tenant: &Tenant, found: &Library) -> ApiResult<(ferry_db::connections::Connection, String)> {
    let (Some(connection_id), Some(folder)) = (found.connection_id, found.drive_folder_id.clone()) else {
        return Err(ApiError::new(ErrorCode::NotConnected, "The library has no connection; PUT one first"));
    };
    match tenant.db().get_connection(ConnectionId(connection_id)).await? {
        Some(connection) if connection.is_active => Ok((connection, folder)),
        _ => Err(ApiError::new(ErrorCode::NotConnected, "The library's connection was disconnected; PUT a new one")),
    }
}

fn connection_view(
    found: &Library,
    connection: &ferry_db::connections::Connection,
    folder: String,
) -> LibraryConnectionView {
    LibraryConnectionView {
        id: ConnectionId(connection.id).to_string(),
        owner_id: connection.provider_email.clone().unwrap_or_else(|| connection.provider_user_id.clone()),
        integration_id: found.integration_id.map(|id| id.to_string()),
        token_expires_at: connection.token_expires_at.map(timestamp),
        refresh_token_expires_at: None,
        last_authorized_at: timestamp(connection.connected_at),
        created_at: timestamp(connection.created_at),
        updated_at: timestamp(connection.updated_at),
        folder_id: folder,
        drive_id: found.drive_id.clone(),
        needs_reauth: connection.needs_reauth,
    }
}

#[utoipa::path(operation_id = "libraries_get_connection", get, path = "/api/libraries/{id}/connection", tag = "libraries", description = "The connection the library syncs through and the Drive folder it mirrors.", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), responses((status = 200, description = "The connection", body = LibraryConnectionView), (status = 409, description = "The library has no connection (`NOT_CONNECTED`)", body = crate::error::ErrorBody)))]
async fn get_connection(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    let (connection, folder) = linked_connection(&tenant, &found).await?;
    Ok(HttpResponse::Ok().json(connection_view(&found, &connection, folder)))
}

#[utoipa::path(operation_id = "libraries_link_connection", put, path = "/api/libraries/{id}/connection", tag = "libraries", description = "Link the library to one of the tenant's cloud-storage connections and the Drive folder to mirror (`root`, or a folder id; shared drives included). A library without an integration takes the connection's (`google-drive`).", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), request_body = LinkConnectionRequest, responses((status = 200, description = "The connection", body = LibraryConnectionView), (status = 400, description = "Not a folder, or in Drive's trash", body = crate::error::ErrorBody), (status = 409, description = "The connection needs the account connected again (`CONNECTION_NEEDS_REAUTH`)", body = crate::error::ErrorBody)))]
async fn link_connection(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    let body: LinkConnectionRequest = object_body(body).await?;
    let connection_id = parse_connection_id(&body.connection_id)
        .map_err(|_| ApiError::field("connectionId", "connectionId must be a connection id (a UUID)"))?;
    let folder_id = body.folder_id.trim().to_owned();
    if folder_id.is_empty()
        || folder_id.len() > 200
        || !folder_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::field("folderId", "folderId must be `root` or a Drive folder id"));
    }
    let connection = match tenant.db().get_connection(connection_id).await? {
        Some(connection) if connection.is_active => connection,
        _ => {
            return Err(ApiError::new(ErrorCode::NotFound, "No such connection")
                .with_details(ErrorDetails::field("connectionId")));
        }
    };
    if connection.needs_reauth {
        return Err(reauth());
    }
    // Drive says whether the folder exists, is a folder, and which shared drive holds it.
    let folder = with_drive_token(&state, connection_id, |token| {
        let drive = state.drive.clone();
        let folder_id = folder_id.clone();
        async move { drive.get_file(&token, &folder_id).await }
    })
    .await
    .map_err(|err| match err.code {
        ErrorCode::NotFound => ApiError::new(ErrorCode::NotFound, "The Drive folder does not exist for this account")
            .with_details(ErrorDetails::field("folderId")),
        ErrorCode::ProviderError if err.details.reason.as_deref() == Some("needs_reauthorization") => reauth(),
        _ => err,
    })?;
    if !folder.is_folder() || folder.trashed {
        return Err(ApiError::field("folderId", "folderId must name a folder that is not in Drive's trash"));
    }
    if found.integration_id.is_none() {
        let builtin = google_integration(&state);
        let id = Uuid::parse_str(&builtin.id).map_err(|err| ApiError::internal("integration id", &err))?;
        tenant.db().set_library_integration(found.id, Some(id)).await?;
    }
    // `root` is stored as asked (Drive's alias), so the library follows the account's My Drive.
    let stored_folder = if folder_id == "root" { "root".to_owned() } else { folder.id.clone() };
    let link = LibraryLink {
        connection_id: connection_id.0,
        drive_folder_id: &stored_folder,
        drive_id: folder.drive_id.as_deref(),
    };
    let linked = tenant.db().link_library(found.id, link).await?.ok_or_else(|| ApiError::not_found("Library"))?;
    Ok(HttpResponse::Ok().json(connection_view(&linked, &connection, stored_folder)))
}

fn reauth() -> ApiError {
    ApiError::new(
        ErrorCode::ConnectionNeedsReauth,
        "The connection's Google account must be connected again (its grant was revoked or expired)",
    )
}

#[utoipa::path(operation_id = "libraries_unlink_connection", delete, path = "/api/libraries/{id}/connection", tag = "libraries", description = "Unlink the library from its connection. Its files stay; syncs wait for a new connection.", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), responses((status = 204, description = "Unlinked"), (status = 409, description = "The library has no connection (`NOT_CONNECTED`)", body = crate::error::ErrorBody)))]
async fn unlink_connection(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    if !tenant.db().unlink_library(found.id).await? {
        return Err(ApiError::new(ErrorCode::NotConnected, "The library has no connection"));
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(operation_id = "libraries_account", get, path = "/api/libraries/{id}/account", tag = "libraries", description = "The Drive account behind the library's connection, from Drive's `about`.", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100)), responses((status = 200, description = "The account", body = AccountView), (status = 409, description = "No connection (`NOT_CONNECTED`), or it must be connected again (`CONNECTION_NEEDS_REAUTH`)", body = crate::error::ErrorBody), (status = 502, description = "Drive failed", body = crate::error::ErrorBody), (status = 504, description = "Drive did not answer in time", body = crate::error::ErrorBody)))]
async fn account(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    let (connection, _) = linked_connection(&tenant, &found).await?;
    if connection.needs_reauth {
        return Err(reauth());
    }
    let about = with_drive_token(&state, ConnectionId(connection.id), |token| {
        let drive = state.drive.clone();
        async move { drive.about(&token).await }
    })
    .await
    .map_err(|err| if err.details.reason.as_deref() == Some("needs_reauthorization") { reauth() } else { err })?;
    Ok(HttpResponse::Ok().json(AccountView {
        email: about.email,
        display_name: about.display_name,
        account_id: about.account_id,
    }))
}

/// How long `_sync` waits for its run before answering 202 with the job (the run goes on either way).
const SYNC_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

fn sync_result(report: &ferry_db::sync::SyncReport, status: &str) -> SyncResult {
    SyncResult {
        synced_files: report.synced_files,
        added_files: report.added_files,
        updated_files: report.updated_files,
        deleted_files: report.deleted_files,
        errors: report
            .errors
            .iter()
            .map(|e| SyncErrorView {
                file_id: e.drive_file_id.clone(),
                name: e.name.clone(),
                code: e.code.clone(),
                message: e.message.clone(),
            })
            .collect(),
        job_id: ferry_core::JobId(report.job.id).to_string(),
        status: status.to_owned(),
    }
}

/// The run's status in the jobs API's words.
fn job_status(report: &ferry_db::sync::SyncReport) -> String {
    report.job.status.api_name().to_owned()
}

#[utoipa::path(operation_id = "libraries_sync", post, path = "/api/libraries/{id}/_sync", tag = "libraries", description = "Sync the library with its Drive folder: Drive's changes feed since the last run (the first run, `purge`, or a connection now on another account lists the whole folder). The run is a job of type `sync` done by the workers, so it survives the caller going away. Answers 200 with the counts when the run ends (up to 10 minutes; then 202 with the job), or 202 at once with `Prefer: respond-async`. One run per library at a time.", params(("id" = String, Path, description = LIBRARY_ID, max_length = 100), ("Prefer" = Option<String>, Header, description = "`respond-async` to get 202 at once")), request_body(content = Option<SyncRequest>, content_type = "application/json"), responses((status = 200, description = "The run ended", body = SyncResult), (status = 202, description = "The run goes on", body = SyncAccepted), (status = 409, description = "No connection (`NOT_CONNECTED`), the connection needs the account again (`CONNECTION_NEEDS_REAUTH`), or a run is going (`CONFLICT`, `details.job_id`)", body = crate::error::ErrorBody)))]
async fn sync(
    tenant: Tenant,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let found = library(&tenant, &path).await?;
    let request: SyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SyncRequest::default()
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|err| ApiError::new(ErrorCode::ValidationError, format!("Invalid JSON body: {err}")))?;
        // The body is optional: none, `null` and `{}` all mean the defaults.
        if value.is_null() { SyncRequest::default() } else { object_body(web::Json(value)).await? }
    };
    if let Some(progress) = &request.progress
        && (progress.is_empty()
            || progress.len() > 100
            || !progress.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(ApiError::field("progress", "progress must be 1 to 100 letters, digits, `.`, `_` or `-`"));
    }
    let (connection, _) = linked_connection(&tenant, &found).await?;
    if connection.needs_reauth {
        return Err(reauth());
    }
    let tenant_id = tenant.id().0.to_string();
    let started = tenant
        .db()
        .start_sync(
            &found,
            request.purge.unwrap_or(false),
            request.progress.as_deref(),
            ferry_messages::SYNC_RUN_COMMAND,
            |job_id| {
                use ferry_messages::Message;
                ferry_messages::SyncRun { tenant_id, job_id: job_id.0.to_string(), traceparent: String::new() }
                    .encode_to_vec()
            },
            None,
        )
        .await?;
    let job = match started {
        ferry_db::sync::StartSync::Started(job) => job,
        ferry_db::sync::StartSync::NotConnected => {
            return Err(ApiError::new(ErrorCode::NotConnected, "The library has no connection; PUT one first"));
        }
        ferry_db::sync::StartSync::Running(job_id) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("The library is already syncing (job {})", ferry_core::JobId(job_id)),
            )
            .with_details(ErrorDetails {
                job_id: Some(ferry_core::JobId(job_id).to_string()),
                ..ErrorDetails::default()
            }));
        }
    };
    let accepted = || {
        HttpResponse::Accepted()
            .json(SyncAccepted { job_id: ferry_core::JobId(job.id).to_string(), progress: request.progress.clone() })
    };
    let respond_async = req
        .headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("respond-async")));
    if respond_async {
        return Ok(accepted());
    }
    let deadline = tokio::time::Instant::now() + SYNC_WAIT;
    let mut pause = std::time::Duration::from_millis(50);
    loop {
        let report = tenant.db().sync_report(job.id).await?.ok_or_else(|| ApiError::not_found("Sync run"))?;
        if report.run.finished || report.job.status.is_terminal() {
            let status = job_status(&report);
            return Ok(HttpResponse::Ok().json(sync_result(&report, &status)));
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Ok(accepted());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
}

#[utoipa::path(operation_id = "libraries_progress", get, path = "/api/progress/{progress}", tag = "libraries", description = "The latest sync run the caller named `progress`, live: its status, its transfers so far, and its counts once it has ended.", params(("progress" = String, Path, max_length = 100, pattern = r"^[A-Za-z0-9._-]+$")), responses((status = 200, description = "The run", body = SyncProgressView)))]
async fn progress(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let job_id = tenant.db().sync_by_progress(&path).await?.ok_or_else(|| ApiError::not_found("Progress"))?;
    let report = tenant.db().sync_report(job_id).await?.ok_or_else(|| ApiError::not_found("Progress"))?;
    let status = job_status(&report);
    let ended = report.run.finished || report.job.status.is_terminal();
    Ok(HttpResponse::Ok().json(SyncProgressView {
        job_id: ferry_core::JobId(report.job.id).to_string(),
        library_id: report.run.library_id.to_string(),
        planned: report.run.planned,
        total_files: report.job.total_files,
        completed_files: report.job.completed_files,
        failed_files: report.job.failed_files,
        error: report.job.error.clone(),
        result: ended.then(|| sync_result(&report, &status)),
        status,
    }))
}
