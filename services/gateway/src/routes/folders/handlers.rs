//! The folder endpoints.

use actix_web::{HttpResponse, web};
use ferry_db::store::FolderDelete;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};
use crate::routes::folders::dto::{
    CreateFolderRequest, FolderList, FolderView, MAX_FOLDER_NAME_CHARS, RenameFolderRequest,
};
use crate::routes::{Page, paging, path_id};

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
    // Only the hyphenated form the API hands out (and the document's pattern states).
    let hyphenated = Some(bare).filter(|b| b.len() == 36);
    hyphenated
        .and_then(|b| Uuid::parse_str(b).ok())
        .ok_or_else(|| ApiError::field(field, format!("`{field}` must be a folder id (a UUID)")))
}

fn folder_name(raw: Option<String>) -> ApiResult<String> {
    let name = raw.map(|n| n.trim_matches(|c: char| c.is_ascii_whitespace()).to_owned()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_FOLDER_NAME_CHARS || name.contains(['/', '\0']) {
        return Err(ApiError::field(
            "name",
            format!("name must be 1 to {MAX_FOLDER_NAME_CHARS} characters, not blank, without `/` or NUL"),
        ));
    }
    Ok(name)
}

#[utoipa::path(operation_id = "folders_create", post, path = "/folders", tag = "folders", description = "Create a folder.", request_body = CreateFolderRequest, responses((status = 201, description = "Created", body = FolderView), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn create(tenant: Tenant, body: web::Json<CreateFolderRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let name = folder_name(body.name)?;
    let parent = match body.parent_id.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(raw) => {
            let id = parse_folder_id(raw, "parent_id")?;
            tenant.db().get_folder(id).await?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, "Parent folder not found")
                    .with_details(ErrorDetails::field("parent_id"))
            })?;
            Some(id)
        }
    };
    let folder = tenant.db().create_folder(Uuid::now_v7(), &name, parent).await?;
    Ok(HttpResponse::Created().json(FolderView::from(&folder)))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Lists the folders inside this one; absent: the top level.
    pub parent_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(operation_id = "folders_list", get, path = "/folders", tag = "folders", description = "Folders inside `parent_id` (default: the top level).", params(("parent_id" = Option<String>, Query, pattern = r"^$|^root$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "a folder id (UUID), or root (or empty) for the top level"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("offset" = Option<i64>, Query, minimum = 0, description = "default 0")), responses((status = 200, description = "Folders", body = FolderList), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn list(tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let (limit, offset) = paging(query.limit, query.offset, 50, 200)?;
    let parent = match query.parent_id.as_deref().filter(|p| !p.is_empty() && *p != "root") {
        None => None,
        Some(raw) => {
            let id = parse_folder_id(raw, "parent_id")?;
            tenant.db().get_folder(id).await?.ok_or_else(|| ApiError::not_found("Folder"))?;
            Some(id)
        }
    };
    let (rows, total) = tenant.db().list_folders(parent, limit, offset).await?;
    let views = rows.iter().map(FolderView::from).collect();
    Ok(HttpResponse::Ok().json(FolderList::from(Page::new(views, total, limit, offset))))
}

#[utoipa::path(operation_id = "folders_get", get, path = "/folders/{folder_id}", tag = "folders", description = "A folder.", params(("folder_id" = String, Path, format = Uuid)), responses((status = 200, description = "The folder", body = FolderView), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn get(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path_id(parse_folder_id(&path, "folder_id"), "Folder")?;
    let folder = tenant.db().get_folder(id).await?.ok_or_else(|| ApiError::not_found("Folder"))?;
    Ok(HttpResponse::Ok().json(FolderView::from(&folder)))
}

#[utoipa::path(operation_id = "folders_rename", patch, path = "/folders/{folder_id}", tag = "folders", description = "Rename a folder.", params(("folder_id" = String, Path, format = Uuid)), request_body = RenameFolderRequest, responses((status = 200, description = "Renamed", body = FolderView), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn rename(
    tenant: Tenant,
    path: web::Path<String>,
    body: web::Json<RenameFolderRequest>,
) -> ApiResult<HttpResponse> {
    let id = path_id(parse_folder_id(&path, "folder_id"), "Folder")?;
    let name = folder_name(body.into_inner().name)?;
    let folder = tenant.db().rename_folder(id, &name).await?.ok_or_else(|| ApiError::not_found("Folder"))?;
    Ok(HttpResponse::Ok().json(FolderView::from(&folder)))
}

#[utoipa::path(operation_id = "folders_delete", delete, path = "/folders/{folder_id}", tag = "folders", description = "Delete an empty folder (409 otherwise).", params(("folder_id" = String, Path, format = Uuid)), responses((status = 200, description = "Deleted", body = crate::routes::SuccessResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 409, description = "Conflict", body = crate::error::ErrorBody)))]
async fn delete(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path_id(parse_folder_id(&path, "folder_id"), "Folder")?;
    match tenant.db().delete_folder(id).await? {
        FolderDelete::Deleted => Ok(HttpResponse::Ok().json(crate::routes::SuccessResponse::new("Folder deleted"))),
        FolderDelete::NotFound => Err(ApiError::not_found("Folder")),
        FolderDelete::NotEmpty { files, folders } => {
            Err(ApiError::new(ErrorCode::Conflict, "The folder is not empty; move or delete what is inside first")
                .with_details(ErrorDetails {
                    file_count: Some(files),
                    folder_count: Some(folders),
                    ..ErrorDetails::default()
                }))
        }
    }
}
