//! Folders of Ferry's store: create, list, get, rename, delete when empty.

use actix_web::{HttpResponse, web};
use ferry_db::library::{Folder, FolderDelete};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::{Page, paging, timestamp};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/folders", web::get().to(list))
        .route("/folders", web::post().to(create))
        .route("/folders/{folder_id}", web::get().to(get))
        .route("/folders/{folder_id}", web::patch().to(rename))
        .route("/folders/{folder_id}", web::delete().to(delete));
}

/// Folder ids are UUIDs (as seed 000 shows `folder_id`). Older clients' `col_…` form is accepted too.
pub fn parse_folder_id(raw: &str, field: &str) -> ApiResult<Uuid> {
    let bare = raw.strip_prefix("col_").unwrap_or(raw);
    Uuid::parse_str(bare).map_err(|_| ApiError::field(field, format!("`{field}` must be a folder id (a UUID)")))
}

pub fn folder_view(folder: &Folder) -> Value {
    json!({
        "id": folder.id.to_string(),
        "name": folder.name,
        "parent_id": folder.parent_id.map(|p| p.to_string()),
        "created_at": timestamp(folder.created_at),
        "updated_at": timestamp(folder.updated_at),
    })
}

fn folder_name(raw: Option<String>) -> ApiResult<String> {
    let name = raw.map(|n| n.trim().to_owned()).unwrap_or_default();
    if name.is_empty() || name.len() > 255 || name.contains('/') {
        return Err(ApiError::field("name", "name must be 1 to 255 characters without `/`"));
    }
    Ok(name)
}

#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    pub name: Option<String>,
    /// Creates the folder inside this one; absent or null: at the top level.
    pub parent_id: Option<String>,
}

#[utoipa::path(operation_id = "folders_create", post, path = "/folders", tag = "folders", description = "Create a folder.", request_body = crate::openapi::FolderCreateRequest, responses((status = 201, description = "Created", body = crate::openapi::Folder), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody)))]
async fn create(state: web::Data<AppState>, tenant: Tenant, body: web::Json<CreateRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let name = folder_name(body.name)?;
    let parent = match body.parent_id.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(raw) => {
            let id = parse_folder_id(raw, "parent_id")?;
            state.db.get_folder(tenant.0, id).await?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, "Parent folder not found")
                    .with_details(json!({ "field": "parent_id" }))
            })?;
            Some(id)
        }
    };
    let folder = state.db.create_folder(tenant.0, Uuid::now_v7(), &name, parent).await?;
    Ok(HttpResponse::Created().json(folder_view(&folder)))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Lists the folders inside this one; absent: the top level.
    pub parent_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(operation_id = "folders_list", get, path = "/folders", tag = "folders", description = "Folders inside `parent_id` (default: the top level).", params(("parent_id" = Option<String>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)), responses((status = 200, description = "Folders", body = crate::openapi::FolderList), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody)))]
async fn list(state: web::Data<AppState>, tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let (limit, offset) = paging(query.limit, query.offset, 50, 200)?;
    let parent = match query.parent_id.as_deref().filter(|p| !p.is_empty() && *p != "root") {
        None => None,
        Some(raw) => {
            let id = parse_folder_id(raw, "parent_id")?;
            state.db.get_folder(tenant.0, id).await?.ok_or_else(|| ApiError::not_found("Folder"))?;
            Some(id)
        }
    };
    let (rows, total) = state.db.list_folders(tenant.0, parent, limit, offset).await?;
    Ok(HttpResponse::Ok().json(Page::new(rows.iter().map(folder_view).collect(), total, limit, offset)))
}

#[utoipa::path(operation_id = "folders_get", get, path = "/folders/{folder_id}", tag = "folders", description = "A folder.", params(("folder_id" = String, Path)), responses((status = 200, description = "The folder", body = crate::openapi::Folder), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody)))]
async fn get(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_folder_id(&path, "folder_id")?;
    let folder = state.db.get_folder(tenant.0, id).await?.ok_or_else(|| ApiError::not_found("Folder"))?;
    Ok(HttpResponse::Ok().json(folder_view(&folder)))
}

#[derive(Debug, Deserialize)]
pub struct RenameRequest {
    pub name: Option<String>,
}

#[utoipa::path(operation_id = "folders_rename", patch, path = "/folders/{folder_id}", tag = "folders", description = "Rename a folder.", params(("folder_id" = String, Path)), request_body = crate::openapi::FolderRenameRequest, responses((status = 200, description = "Renamed", body = crate::openapi::Folder), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody)))]
async fn rename(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    body: web::Json<RenameRequest>,
) -> ApiResult<HttpResponse> {
    let id = parse_folder_id(&path, "folder_id")?;
    let name = folder_name(body.into_inner().name)?;
    let folder = state.db.rename_folder(tenant.0, id, &name).await?.ok_or_else(|| ApiError::not_found("Folder"))?;
    Ok(HttpResponse::Ok().json(folder_view(&folder)))
}

#[utoipa::path(operation_id = "folders_delete", delete, path = "/folders/{folder_id}", tag = "folders", description = "Delete an empty folder (409 otherwise).", params(("folder_id" = String, Path)), responses((status = 200, description = "Deleted", body = crate::openapi::SuccessResponse), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody)))]
async fn delete(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_folder_id(&path, "folder_id")?;
    match state.db.delete_folder(tenant.0, id).await? {
        FolderDelete::Deleted => Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Folder deleted" }))),
        FolderDelete::NotFound => Err(ApiError::not_found("Folder")),
        FolderDelete::NotEmpty { files, folders } => {
            Err(ApiError::new(ErrorCode::Conflict, "The folder is not empty; move or delete what is inside first")
                .with_details(json!({ "file_count": files, "folder_count": folders })))
        }
    }
}
