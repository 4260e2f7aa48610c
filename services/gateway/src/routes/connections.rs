//! Connection listing and disconnect, and browsing the connected drive.

use actix_web::{HttpResponse, web};
use ferry_core::ConnectionId;
use ferry_db::connections::{Connection, ConnectionFilter};
use ferry_drive::{DriveError, DriveFile};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult};
use crate::routes::oauth::{ConnectionView, parse_provider};
use crate::routes::{Page, paging, timestamp};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cloud-storage/connections", web::get().to(list))
        .route("/cloud-storage/connections/{connection_id}", web::delete().to(disconnect))
        .route("/cloud-storage/connections/{connection_id}/browse", web::get().to(browse));
}

pub fn parse_connection_id(raw: &str) -> ApiResult<ConnectionId> {
    ConnectionId::parse(raw)
        .map_err(|_| ApiError::field("connection_id", format!("`{raw}` is not a valid connection id")))
}

/// The tenant's active connection, or 404 (another tenant's and disconnected connections look the same).
pub async fn active_connection(state: &AppState, tenant: &Tenant, id: ConnectionId) -> ApiResult<Connection> {
    match state.db.get_connection(tenant.0, id).await? {
        Some(connection) if connection.is_active => Ok(connection),
        _ => Err(ApiError::not_found("Connection")),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub provider: Option<String>,
    pub active_only: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Serialize)]
struct ConnectionList {
    #[serde(flatten)]
    page: Page<ConnectionView>,
    /// The same list under the key older clients read.
    connections: Vec<ConnectionView>,
}

async fn list(state: web::Data<AppState>, tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let provider = query.provider.as_deref().map(parse_provider).transpose()?;
    let (limit, offset) = paging(query.limit, query.offset, 20, 100)?;
    let filter = ConnectionFilter {
        provider: provider.map(|p| p.as_str()),
        active_only: query.active_only.unwrap_or(true),
        limit,
        offset,
    };
    let (rows, total) = state.db.list_connections(tenant.0, &filter).await?;
    let views: Vec<ConnectionView> = rows.iter().map(ConnectionView::from).collect();
    let again: Vec<ConnectionView> = rows.iter().map(ConnectionView::from).collect();
    Ok(HttpResponse::Ok().json(ConnectionList { page: Page::new(views, total, limit, offset), connections: again }))
}

async fn disconnect(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_connection_id(&path)?;
    active_connection(&state, &tenant, id).await?;
    // Revoking the refresh token kills the whole grant at the provider; a failure there is logged and the
    // local connection is removed anyway, so the user is never stuck with a connection they cannot delete.
    match state.credentials.stored_tokens(id).await {
        Ok((access, refresh)) => {
            if let Some(token) = refresh.or(access)
                && let Err(err) = state.oauth.revoke(&token).await
            {
                tracing::warn!(connection_id = %id, error = %err, "revoking at the provider failed");
            }
        }
        Err(err) => tracing::warn!(connection_id = %id, error = %err, "stored tokens cannot be read for revocation"),
    }
    if !state.db.disconnect_connection(tenant.0, id).await? {
        return Err(ApiError::not_found("Connection"));
    }
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Connection disconnected successfully" })))
}

#[derive(Debug, Deserialize)]
pub struct BrowseQuery {
    pub folder_id: Option<String>,
    pub page_token: Option<String>,
    pub page_size: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct BrowseEntry {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub size_bytes: Option<u64>,
    pub modified_at: Option<String>,
    pub is_folder: bool,
    pub web_view_link: Option<String>,
    pub thumbnail_url: Option<String>,
    pub is_importable: bool,
}

impl From<DriveFile> for BrowseEntry {
    fn from(file: DriveFile) -> Self {
        let is_folder = file.is_folder();
        let is_importable = !is_folder && !file.is_google_workspace();
        BrowseEntry {
            is_folder,
            is_importable,
            size_bytes: file.size,
            modified_at: file.modified_time.map(timestamp),
            web_view_link: file.web_view_link,
            thumbnail_url: file.thumbnail_link,
            mime_type: file.mime_type,
            name: file.name,
            id: file.id,
        }
    }
}

/// Calls Drive with the connection's token, refreshing it once if Drive says it expired.
pub async fn with_drive_token<T, F, Fut>(state: &AppState, connection_id: ConnectionId, call: F) -> ApiResult<T>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, DriveError>>,
{
    let token = state.credentials.access_token(connection_id).await?;
    match call(token.clone()).await {
        Err(DriveError::Unauthorized) => {
            let token = state.credentials.refresh_after_rejection(connection_id, &token).await?;
            Ok(call(token).await?)
        }
        other => Ok(other?),
    }
}

/// How many ancestors a breadcrumb trail follows before giving up (Drive trees are rarely deeper).
const MAX_BREADCRUMB_DEPTH: usize = 32;

async fn browse(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    query: web::Query<BrowseQuery>,
) -> ApiResult<HttpResponse> {
    let id = parse_connection_id(&path)?;
    let connection = active_connection(&state, &tenant, id).await?;
    let page_size = query.page_size.unwrap_or(50);
    if !(1..=200).contains(&page_size) {
        return Err(ApiError::field("page_size", "page_size must be between 1 and 200"));
    }
    let folder_id = query.folder_id.as_deref().filter(|f| !f.is_empty());
    let page_token = query.page_token.as_deref().filter(|t| !t.is_empty());
    let drive = &state.drive;
    let listing = with_drive_token(&state, id, |token| async move {
        drive.list_folder(&token, folder_id.unwrap_or("root"), page_token, page_size as u32).await
    })
    .await?;

    let mut breadcrumbs = Vec::new();
    if let Some(folder_id) = folder_id {
        let mut current = Some(folder_id.to_owned());
        while let Some(folder) = current.take() {
            if breadcrumbs.len() >= MAX_BREADCRUMB_DEPTH {
                break;
            }
            let folder_ref = folder.as_str();
            let file =
                with_drive_token(&state, id, |token| async move { drive.get_file(&token, folder_ref).await }).await?;
            current = file.parents.first().cloned();
            breadcrumbs.push(json!({ "id": file.id, "name": file.name }));
        }
        breadcrumbs.reverse();
    }
    let _ = state.db.touch_connection(id).await;
    let files: Vec<BrowseEntry> = listing.files.into_iter().map(BrowseEntry::from).collect();
    Ok(HttpResponse::Ok().json(json!({
        "files": files,
        "next_page_token": listing.next_page_token,
        "current_folder_id": folder_id,
        "breadcrumbs": breadcrumbs,
        "provider": connection.provider,
    })))
}
