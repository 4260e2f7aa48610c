//! Google Picker support: a server-side session for the picker UI, and a proxy that makes a closed set of
//! read-only Drive calls with the connection's token so the browser never needs to hold it for them.
//!
//! The proxy never concatenates client text into a URL: the `endpoint` is parsed into one of four shapes
//! (`files`, `files/{id}`, `files/{id}/export`, `about`) and the request is rebuilt from the configured Drive
//! root, with only the query parameters allowed for that shape and no client header.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use base64::Engine;
use chrono::Utc;
use ferry_core::ConnectionId;
use ferry_drive::DriveError;
use futures::StreamExt;
use serde_json::{Map, Value};

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::connections::{active_connection, mark_used, with_drive_token};
use crate::routes::picker::dto::{
    ExportedContent, PickerProxyData, PickerProxyRequest, PickerProxyResponse, PickerSession, PickerTokenResponse,
};
use crate::routes::picker::endpoints::{ProxyEndpoint, parse_endpoint, parse_params};
use crate::routes::{path_id, timestamp};
use crate::state::AppState;

/// Prefix of the session ids handed out (the seed's `picker_sess_...`).
pub const SESSION_PREFIX: &str = "picker_sess_";
/// A session never outlives this, even when the token would.
const MAX_SESSION_TTL: Duration = Duration::from_secs(3600);
/// Largest export the proxy returns (Drive itself caps exports at 10 MB).
const MAX_EXPORT_BYTES: usize = 10 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cloud-storage/connections/{connection_id}/picker-token", web::get().to(picker_token))
        .route("/cloud-storage/picker-proxy", web::post().to(proxy));
}

fn hash_session(session_id: &str) -> String {
    ferry_crypto::hash_api_key(session_id)
}

#[utoipa::path(operation_id = "picker_token", get, path = "/cloud-storage/connections/{connection_id}/picker-token", tag = "picker", description = "A picker session (stored server-side, expiring) with a fresh access token and the picker app settings.", params(("connection_id" = String, Path, format = Uuid)), responses((status = 200, description = "Session", body = PickerTokenResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 502, description = "Provider error", body = crate::error::ErrorBody), (status = 504, description = "The cloud provider did not answer in time (PROVIDER_TIMEOUT)", body = crate::error::ErrorBody)))]
async fn picker_token(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path_id(ConnectionId::parse(&path), "Connection")?;
    active_connection(&tenant, id).await?;
    let access_token = state.credentials.access_token(id).await?;
    let token_expiry = tenant.db().get_connection(id).await?.and_then(|c| c.token_expires_at);
    let cap = Utc::now() + chrono::Duration::from_std(MAX_SESSION_TTL).unwrap_or(chrono::Duration::hours(1));
    let expires_at = token_expiry.map_or(cap, |at| at.min(cap));
    let session_id = format!("{SESSION_PREFIX}{}", ferry_crypto::random_token(24));
    tenant.db().create_picker_session(&hash_session(&session_id), id, expires_at).await?;
    mark_used(&tenant, id).await;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(PickerTokenResponse {
        session: PickerSession {
            session_id,
            access_token,
            app_id: state.settings.google.picker_app_id.clone(),
            developer_key: state.settings.google.picker_developer_key.expose().to_owned(),
            expires_at: timestamp(expires_at),
        },
    }))
}

#[utoipa::path(operation_id = "picker_proxy", post, path = "/cloud-storage/picker-proxy", tag = "picker", description = "Make one allowed Drive call with a picker session. Anything outside the closed set of endpoints and parameters is a 400 (PICKER_ENDPOINT_NOT_ALLOWED / PICKER_PARAM_NOT_ALLOWED) and reaches no one.", request_body = PickerProxyRequest, responses((status = 200, description = "Drive's answer", body = PickerProxyResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 413, description = "Too large", body = crate::error::ErrorBody), (status = 429, description = "Provider rate limit", body = crate::error::ErrorBody), (status = 502, description = "Provider error", body = crate::error::ErrorBody), (status = 504, description = "The cloud provider did not answer in time (PROVIDER_TIMEOUT)", body = crate::error::ErrorBody)))]
async fn proxy(
    state: web::Data<AppState>,
    tenant: Tenant,
    body: web::Json<PickerProxyRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    // Everything about the request is checked before the session is looked up or Drive is called.
    let endpoint = parse_endpoint(body.endpoint.as_deref().unwrap_or_default())?;
    let params = parse_params(&endpoint, body.params.as_ref())?;
    let session_id = body
        .session_id
        .filter(|s| s.starts_with(SESSION_PREFIX) && s.len() < 200)
        .ok_or_else(|| ApiError::field("session_id", "session_id must be a picker session id (`picker_sess_...`)"))?;
    let session = tenant
        .db()
        .find_picker_session(&hash_session(&session_id))
        .await?
        .ok_or_else(|| ApiError::not_found("Picker session"))?;
    let connection_id = ConnectionId(session.connection_id);

    let mut url = url::Url::parse(state.drive.root_url()).map_err(|err| ApiError::internal("drive root", &err))?;
    {
        let mut path = url.path_segments_mut().map_err(|_| ApiError::internal("drive root", &"not a base URL"))?;
        path.pop_if_empty().extend(["drive", "v3"]).extend(endpoint.segments());
    }
    url.query_pairs_mut().extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let drive = &state.drive;
    let url_ref = &url;
    let download =
        with_drive_token(&state, connection_id, |token| async move { drive.download_url(&token, url_ref).await })
            .await?;
    mark_used(&tenant, connection_id).await;

    let mut content = Vec::new();
    let mut stream = download.stream;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if content.len() + chunk.len() > MAX_EXPORT_BYTES {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                "The answer is larger than the proxy returns; import the file instead",
            ));
        }
        content.extend_from_slice(&chunk);
    }
    let data = match endpoint {
        ProxyEndpoint::ExportFile(_) => {
            let mime = params.iter().find(|(k, _)| k == "mimeType").map(|(_, v)| v.clone()).unwrap_or_default();
            PickerProxyData::Exported(ExportedContent {
                mime_type: mime,
                size_bytes: content.len(),
                content_base64: base64::engine::general_purpose::STANDARD.encode(&content),
            })
        }
        _ => {
            let value: Value = serde_json::from_slice(&content)
                .map_err(|err| ApiError::from(DriveError::Decode(format!("picker proxy: {err}"))))?;
            PickerProxyData::Drive(match value {
                Value::Object(map) => map,
                other => Map::from_iter([("value".to_owned(), other)]),
            })
        }
    };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(PickerProxyResponse { data }))
}
