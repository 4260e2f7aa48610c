//! Connection listing and disconnect, and browsing the connected drive.

use actix_web::{HttpResponse, web};
use ferry_core::ConnectionId;
use ferry_db::connections::{Connection, ConnectionFilter};
use ferry_drive::DriveError;
use serde::Deserialize;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::connections::dto::{Breadcrumb, BrowseEntry, BrowseResponse, ConnectionList};
use crate::routes::oauth::dto::ConnectionView;
use crate::routes::oauth::parse_provider;
use crate::routes::{Page, paging, path_id, timestamp};
use crate::state::AppState;
use futures::TryStreamExt;

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
pub async fn active_connection(tenant: &Tenant, id: ConnectionId) -> ApiResult<Connection> {
    match tenant.db().get_connection(id).await? {
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

#[utoipa::path(operation_id = "connections_list", get, path = "/cloud-storage/connections", tag = "connections", description = "List connections.", params(("provider" = Option<String>, Query, pattern = "^google_drive$"), ("active_only" = Option<bool>, Query, description = "default true"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "default 20"), ("offset" = Option<i64>, Query, minimum = 0, description = "default 0")), responses((status = 200, description = "Connections", body = ConnectionList), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody)))]
async fn list(tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let provider = query.provider.as_deref().map(parse_provider).transpose()?;
    let (limit, offset) = paging(query.limit, query.offset, 20, 100)?;
    let filter = ConnectionFilter {
        provider: provider.map(|p| p.as_str()),
        active_only: query.active_only.unwrap_or(true),
        limit,
        offset,
    };
    let (rows, total) = tenant.db().list_connections(&filter).await?;
    let views: Vec<ConnectionView> = rows.iter().map(ConnectionView::from).collect();
    Ok(HttpResponse::Ok().json(ConnectionList::from(Page::new(views, total, limit, offset))))
}

#[utoipa::path(operation_id = "connections_disconnect", delete, path = "/cloud-storage/connections/{connection_id}", tag = "connections", description = "Revoke the grant at the provider and deactivate the connection.", params(("connection_id" = String, Path, format = Uuid)), responses((status = 200, description = "Disconnected", body = crate::routes::SuccessResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn disconnect(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path_id(ConnectionId::parse(&path), "Connection")?;
    active_connection(&tenant, id).await?;
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
    if !tenant.db().disconnect_connection(id).await? {
        return Err(ApiError::not_found("Connection"));
    }
    Ok(HttpResponse::Ok().json(crate::routes::SuccessResponse::new("Connection disconnected successfully")))
}

#[derive(Debug, Deserialize)]
pub struct BrowseQuery {
    pub folder_id: Option<String>,
    pub page_token: Option<String>,
    pub page_size: Option<i64>,
}

/// Calls Drive with the connection's token, refreshing it once if Drive says it expired.
pub async fn with_drive_token<T, F, Fut>(state: &AppState, connection_id: ConnectionId, call: F) -> ApiResult<T>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, DriveError>>,
{
    let paced = |token: String| async {
        state.pacer.acquire(connection_id).await;
        let result = call(token).await;
        if let Err(DriveError::RateLimited { retry_after, .. }) = &result {
            state.pacer.refused(connection_id, *retry_after).await;
        }
        result
    };
    let token = state.credentials.access_token(connection_id).await?;
    match paced(token.clone()).await {
        Err(DriveError::Unauthorized) => {
            let token = state.credentials.refresh_after_rejection(connection_id, &token).await?;
            Ok(paced(token).await?)
        }
        other => Ok(other?),
    }
}

/// Records that the connection was just used (browse, import, export, picker). A failure only loses the
/// timestamp, so it is logged rather than failing the request.
pub async fn mark_used(tenant: &Tenant, id: ConnectionId) {
    if let Err(err) = tenant.db().touch_connection(id).await {
        tracing::warn!(connection_id = %id, error = %err, "last_used_at not updated");
    }
}

/// The `folder_id` of the virtual folder listing what others shared with the user.
pub const SHARED_WITH_ME: &str = "shared_with_me";

/// The metadata fields a browse listing asks Drive for.
const LIST_FIELDS: &str =
    "nextPageToken,files(id,name,mimeType,size,modifiedTime,parents,webViewLink,thumbnailLink,trashed)";

fn virtual_folder(id: &str, name: &str) -> BrowseEntry {
    BrowseEntry {
        id: id.to_owned(),
        name: name.to_owned(),
        mime_type: ferry_drive::FOLDER_MIME_TYPE.to_owned(),
        size_bytes: None,
        modified_at: None,
        is_folder: true,
        web_view_link: None,
        thumbnail_url: None,
        is_importable: false,
    }
}

/// GETs a Drive v3 resource (`segments` under `drive/v3/`) with the connection's token and parses its JSON.
async fn drive_json(
    state: &AppState,
    connection_id: ConnectionId,
    segments: &[&str],
    query: &[(&str, &str)],
) -> ApiResult<serde_json::Value> {
    let mut url = url::Url::parse(state.drive.root_url()).map_err(|err| ApiError::internal("drive root", &err))?;
    url.path_segments_mut()
        .map_err(|_| ApiError::internal("drive root", &"not a base URL"))?
        .pop_if_empty()
        .extend(["drive", "v3"])
        .extend(segments);
    url.query_pairs_mut().extend_pairs(query);
    let drive = &state.drive;
    let url_ref = &url;
    let download =
        with_drive_token(state, connection_id, |token| async move { drive.download_url(&token, url_ref).await })
            .await?;
    let bytes: Vec<u8> = download
        .stream
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await?;
    serde_json::from_slice(&bytes).map_err(|err| ApiError::from(DriveError::Decode(err.to_string())))
}

/// A browse entry from a Drive file resource in JSON.
fn entry_from_json(file: &serde_json::Value) -> Option<BrowseEntry> {
    let text = |key: &str| file.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let mime_type = text("mimeType").unwrap_or_default();
    let is_folder = mime_type == ferry_drive::FOLDER_MIME_TYPE;
    let workspace = mime_type.starts_with(ferry_drive::GOOGLE_APPS_MIME_PREFIX) && !is_folder;
    let trashed = file.get("trashed").and_then(|v| v.as_bool()).unwrap_or(false);
    Some(BrowseEntry {
        id: text("id")?,
        name: text("name").unwrap_or_default(),
        is_importable: !is_folder
            && !trashed
            && (!workspace || crate::routes::jobs::is_exportable_workspace(&mime_type)),
        mime_type,
        size_bytes: text("size").and_then(|s| s.parse().ok()),
        modified_at: text("modifiedTime")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| timestamp(t.with_timezone(&chrono::Utc))),
        is_folder,
        web_view_link: text("webViewLink"),
        thumbnail_url: text("thumbnailLink"),
    })
}

/// One page of the files others shared with the user (Drive's `sharedWithMe` query).
async fn shared_with_me(
    state: &AppState,
    connection_id: ConnectionId,
    page_token: Option<&str>,
    page_size: i64,
) -> ApiResult<(Vec<BrowseEntry>, Option<String>)> {
    let page_size = page_size.to_string();
    let mut query = vec![
        ("q", "sharedWithMe = true and trashed = false"),
        ("fields", LIST_FIELDS),
        ("pageSize", page_size.as_str()),
        ("supportsAllDrives", "true"),
        ("includeItemsFromAllDrives", "true"),
    ];
    if let Some(token) = page_token {
        query.push(("pageToken", token));
    }
    let body = drive_json(state, connection_id, &["files"], &query).await?;
    let files = body["files"].as_array().map(|f| f.iter().filter_map(entry_from_json).collect()).unwrap_or_default();
    let next = body["nextPageToken"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
    Ok((files, next))
}

/// The user's shared drives as folders (their ids are folder ids Drive lists like any other).
async fn shared_drives(state: &AppState, connection_id: ConnectionId) -> ApiResult<Vec<BrowseEntry>> {
    let body = drive_json(
        state,
        connection_id,
        &["drives"],
        &[("pageSize", "100"), ("fields", "drives(id,name),nextPageToken")],
    )
    .await?;
    Ok(body["drives"]
        .as_array()
        .map(|drives| {
            drives
                .iter()
                .filter_map(|d| Some(virtual_folder(d["id"].as_str()?, d["name"].as_str().unwrap_or("Shared drive"))))
                .collect()
        })
        .unwrap_or_default())
}

/// How many ancestors a breadcrumb trail follows before giving up (Drive trees are rarely deeper).
const MAX_BREADCRUMB_DEPTH: usize = 32;

#[utoipa::path(operation_id = "browse", get, path = "/cloud-storage/connections/{connection_id}/browse", tag = "connections", description = "Browse a folder (`shared_with_me` lists what others shared; the root also lists shared drives).", params(("connection_id" = String, Path, format = Uuid), ("folder_id" = Option<String>, Query), ("page_token" = Option<String>, Query), ("page_size" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50")), responses((status = 200, description = "One page", body = BrowseResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 429, description = "Provider rate limit", body = crate::error::ErrorBody), (status = 502, description = "Provider error", body = crate::error::ErrorBody), (status = 504, description = "The cloud provider did not answer in time (PROVIDER_TIMEOUT)", body = crate::error::ErrorBody)))]
async fn browse(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    query: web::Query<BrowseQuery>,
) -> ApiResult<HttpResponse> {
    let id = path_id(ConnectionId::parse(&path), "Connection")?;
    let connection = active_connection(&tenant, id).await?;
    let page_size = query.page_size.unwrap_or(50);
    if !(1..=200).contains(&page_size) {
        return Err(ApiError::field("page_size", "page_size must be between 1 and 200"));
    }
    let folder_id = query.folder_id.as_deref().filter(|f| !f.is_empty());
    let page_token = query.page_token.as_deref().filter(|t| !t.is_empty());
    let drive = &state.drive;
    let (mut files, next_page_token) = if folder_id == Some(SHARED_WITH_ME) {
        shared_with_me(&state, id, page_token, page_size).await?
    } else {
        let listing = with_drive_token(&state, id, |token| async move {
            drive.list_folder(&token, folder_id.unwrap_or("root"), page_token, page_size as u32).await
        })
        .await?;
        (listing.files.into_iter().map(BrowseEntry::from).collect::<Vec<_>>(), listing.next_page_token)
    };
    if folder_id.is_none() && page_token.is_none() {
        // The first page of the root also offers "Shared with me" and the user's shared drives.
        let mut virtual_folders = vec![virtual_folder(SHARED_WITH_ME, "Shared with me")];
        match shared_drives(&state, id).await {
            Ok(drives) => virtual_folders.extend(drives),
            Err(err) => tracing::warn!(connection_id = %id, error = %err.message, "shared drives not listed"),
        }
        virtual_folders.append(&mut files);
        files = virtual_folders;
    }

    let mut breadcrumbs = Vec::new();
    if folder_id == Some(SHARED_WITH_ME) {
        breadcrumbs.push(Breadcrumb { id: SHARED_WITH_ME.to_owned(), name: "Shared with me".to_owned() });
    } else if let Some(folder_id) = folder_id {
        let mut current = Some(folder_id.to_owned());
        while let Some(folder) = current.take() {
            if breadcrumbs.len() >= MAX_BREADCRUMB_DEPTH {
                break;
            }
            let folder_ref = folder.as_str();
            let found =
                with_drive_token(&state, id, |token| async move { drive.get_file(&token, folder_ref).await }).await;
            let file = match found {
                Ok(file) => file,
                // Ancestors of an item shared with the user are not visible to them: the trail stops there.
                Err(err)
                    if !breadcrumbs.is_empty()
                        && matches!(err.code, ErrorCode::NotFound | ErrorCode::PermissionDenied) =>
                {
                    break;
                }
                Err(err) => return Err(err),
            };
            current = file.parents.first().cloned();
            breadcrumbs.push(Breadcrumb { id: file.id, name: file.name });
        }
        breadcrumbs.reverse();
    }
    mark_used(&tenant, id).await;
    Ok(HttpResponse::Ok().json(BrowseResponse {
        files,
        next_page_token,
        current_folder_id: folder_id.map(str::to_owned),
        breadcrumbs,
        provider: connection.provider,
    }))
}
