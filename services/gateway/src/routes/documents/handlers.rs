//! The documents API's handlers. Every route checks that `company_id` is the caller's tenant: another company's
//! id is a 404, exactly like an item that does not exist.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use ferry_core::{FileId, JobId, VersionProvider};
use ferry_db::files::{NewUploadedFile, StoredFile};
use ferry_db::items::{
    Children, DocumentTab, ForeverDelete, ItemChanges, ItemKey, ItemUpdate, NewDirectory, TrashChange,
};
use ferry_db::versions::{NewVersion, SharedVersion};
use ferry_storage::{StorageError, file_blob_key};
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};
use crate::routes::documents::access::{DocumentsCaller, Level, TabClaims, item_key};
use crate::routes::documents::dto::{
    AccessInfoUpdate, CreateItemRequest, DeleteResult, DeletedItems, DriveItem, DriveItemVersion, ItemDetails,
    ItemFields, ItemProperties, ItemUploadForm, MeResponse, NewVersionRequest, ROOT_ID, StoredAccess,
    StoredPublicAccess, TRASH_ID, TabConfiguration, TabRequest, TenantView, VersionFields, VersionUploadForm,
};
use crate::routes::files::dto::UploadedContent;
use crate::routes::jobs::normalise_tags;
use crate::routes::{is_blank, storable};
use crate::state::AppState;

/// Where the documents API lives.
pub const DOCUMENTS_BASE: &str = "/internal/services/documents/v1/companies/{company_id}";
/// The most children of each kind `GET /item/{id}` lists.
const MAX_CHILDREN: i64 = 1000;

/// `/api/v2/me`, inside the `/api/v2` scope.
pub fn configure_me(cfg: &mut web::ServiceConfig) {
    cfg.route("/me", web::get().to(me));
}

/// The documents routes, at the root of the app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::routes::documents::download;
    cfg.service(
        web::scope(DOCUMENTS_BASE)
            .service(resource("/item").route(web::post().to(create_item)))
            // Before `/item/{id}`: these literal segments are not item ids.
            .service(resource("/item/download/token").route(web::get().to(download::download_token)))
            .service(resource("/item/download/zip").route(web::get().to(download::download_zip)))
            .service(resource("/item/trash").route(web::get().to(get_trash)).route(web::delete().to(empty_trash)))
            .service(
                resource("/item/{id}")
                    .route(web::get().to(get_item))
                    .route(web::post().to(update_item))
                    .route(web::delete().to(delete_item)),
            )
            .service(resource("/item/{id}/version").route(web::post().to(add_version)))
            .service(resource("/item/{id}/restore").route(web::post().to(restore_item)))
            .service(resource("/item/{id}/download").route(web::get().to(download::download_item)))
            .service(resource("/item/{id}/thumbnails/{index}").route(web::get().to(download::thumbnail)))
            .service(resource("/tabs/{tab_id}").route(web::get().to(get_tab)).route(web::post().to(put_tab))),
    );
}

/// A resource owns its path: a method it lacks is the app's 405 (JSON, with `Allow`), never another route's error.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(crate::not_found))
}

#[utoipa::path(operation_id = "me", get, path = "/me", tag = "documents", description = "The tenant the API key belongs to; its `id` is the documents API's `company_id`.", responses((status = 200, description = "The caller's tenant", body = MeResponse)))]
async fn me(tenant: Tenant) -> ApiResult<HttpResponse> {
    let record = tenant.db().tenant_record().await?;
    Ok(HttpResponse::Ok().json(MeResponse { tenant: TenantView { id: record.id.to_string(), name: record.name } }))
}

/// The caller's own company, or a 404 for any other id.
pub(crate) fn own_company(tenant: &Tenant, company_id: &str) -> ApiResult<String> {
    let own = tenant.id().0.to_string();
    if Uuid::parse_str(company_id).is_ok_and(|id| id == tenant.id().0) {
        Ok(own)
    } else {
        Err(ApiError::not_found("Company"))
    }
}

/// What an item id names.
enum ItemRef {
    Root,
    Trash,
    Directory(Uuid),
    File(FileId),
}

fn item_ref(raw: &str) -> ApiResult<ItemRef> {
    match raw {
        ROOT_ID => Ok(ItemRef::Root),
        TRASH_ID => Ok(ItemRef::Trash),
        _ if raw.starts_with("img_") => FileId::parse(raw).map(ItemRef::File).map_err(|_| ApiError::not_found("Item")),
        _ => Uuid::parse_str(raw)
            .ok()
            .filter(|_| raw.len() == 36)
            .map(ItemRef::Directory)
            .ok_or_else(|| ApiError::not_found("Item")),
    }
}

/// Drive items for `files`, each with its latest version, read in one query.
async fn file_items(tenant: &Tenant, files: &[StoredFile]) -> ApiResult<Vec<DriveItem>> {
    let latest_ids: Vec<Uuid> = files.iter().filter_map(|file| file.last_version_id).collect();
    let versions = tenant.db().versions_by_ids(&latest_ids).await?;
    let by_id: HashMap<Uuid, _> = versions.iter().map(|version| (version.id, version)).collect();
    Ok(files
        .iter()
        .map(|file| DriveItem::file(file, file.last_version_id.and_then(|id| by_id.get(&id).copied())))
        .collect())
}

async fn child_items(tenant: &Tenant, children: Children) -> ApiResult<(Vec<DriveItem>, bool)> {
    let mut items: Vec<DriveItem> = children.folders.iter().map(DriveItem::directory).collect();
    items.extend(file_items(tenant, &children.files).await?);
    Ok((items, children.truncated))
}

#[utoipa::path(operation_id = "documents_get_item", get, path = "/internal/services/documents/v1/companies/{company_id}/item/{id}", tag = "documents", description = "An item with a file's versions (newest first) and a directory's children (directories first, then files, each by name; at most 1000 of each). `root` is the top of the tree, `trash` what was trashed.", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("id" = String, Path, pattern = "^(root|trash|img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")), responses((status = 200, description = "The item", body = ItemDetails), (status = 404, description = "No such item, or another company", body = crate::error::ErrorBody)))]
async fn get_item(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (company_id, id) = path.into_inner();
    show_item(&state, &caller, &company_id, &id).await
}

/// `GET /item/trash`: the literal path `DELETE /item/trash` owns, answered as the virtual item it names.
async fn get_trash(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    show_item(&state, &caller, &path.into_inner(), TRASH_ID).await
}

async fn show_item(state: &AppState, caller: &DocumentsCaller, company_id: &str, id: &str) -> ApiResult<HttpResponse> {
    let tenant = &caller.tenant;
    let company_id = own_company(tenant, company_id)?;
    caller.authorize(state, id, Level::Read).await?;
    let details = match item_ref(id)? {
        ItemRef::Root => {
            let (children, children_truncated) =
                child_items(tenant, tenant.db().children(None, MAX_CHILDREN).await?).await?;
            ItemDetails {
                item: DriveItem::virtual_directory(ROOT_ID, &company_id),
                versions: Vec::new(),
                children,
                children_truncated,
            }
        }
        ItemRef::Trash => {
            let (children, children_truncated) =
                child_items(tenant, tenant.db().trash_tops(MAX_CHILDREN).await?).await?;
            ItemDetails {
                item: DriveItem::virtual_directory(TRASH_ID, &company_id),
                versions: Vec::new(),
                children,
                children_truncated,
            }
        }
        ItemRef::Directory(folder_id) => {
            let folder = tenant.db().get_folder(folder_id).await?.ok_or_else(|| ApiError::not_found("Item"))?;
            let (children, children_truncated) =
                child_items(tenant, tenant.db().children(Some(folder_id), MAX_CHILDREN).await?).await?;
            ItemDetails { item: DriveItem::directory(&folder), versions: Vec::new(), children, children_truncated }
        }
        ItemRef::File(file_id) => {
            let file = tenant.db().get_file(file_id).await?.ok_or_else(|| ApiError::not_found("Item"))?;
            let versions = tenant.db().list_versions(file_id).await?;
            let latest = file.last_version_id.and_then(|id| versions.iter().find(|version| version.id == id));
            ItemDetails {
                item: DriveItem::file(&file, latest),
                versions: versions.iter().map(DriveItemVersion::from).collect(),
                children: Vec::new(),
                children_truncated: false,
            }
        }
    };
    Ok(HttpResponse::Ok().json(details))
}

/// Longest JSON part (`item`, `version`) of a multipart body, and longest JSON body.
const MAX_JSON_BYTES: usize = 64 * 1024;
/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 4096;
/// Longest item name, in characters.
const MAX_NAME_CHARS: usize = 255;

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// serde reads a struct from a JSON array too (field by field); the document says object, so only an object (or
/// null) is accepted where a struct goes: at `value` itself and at each of `nested` (keys of `value`).
fn objects_where_structs_go(what: &str, value: &serde_json::Value, nested: &[&str]) -> ApiResult<()> {
    let is_object_or_null = |v: &serde_json::Value| v.is_object() || v.is_null();
    if !is_object_or_null(value) {
        return Err(ApiError::field(what, format!("`{what}` must be a JSON object")));
    }
    for key in nested {
        if let Some(inner) = value.get(key)
            && !is_object_or_null(inner)
        {
            return Err(ApiError::field(&format!("{what}.{key}"), format!("`{what}.{key}` must be a JSON object")));
        }
    }
    Ok(())
}

/// A JSON body of at most [`MAX_JSON_BYTES`], as `T`.
async fn json_body<T: serde::de::DeserializeOwned>(mut payload: web::Payload) -> ApiResult<T> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| ApiError::validation(format!("The body could not be read: {err}")))?;
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("The body is over {MAX_JSON_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|err| ApiError::validation(format!("Invalid JSON body: {err}")))?;
    objects_where_structs_go("body", &value, &["item", "version"])?;
    if let Some(version) = value.get("version") {
        objects_where_structs_go("version", version, &["file_metadata"])?;
    }
    serde_json::from_value(value).map_err(|err| ApiError::validation(format!("Invalid JSON body: {err}")))
}

/// A JSON part of a multipart body (`null` is the same as no part).
async fn json_part<T: serde::de::DeserializeOwned>(
    field: &mut actix_multipart::Field,
    name: &str,
) -> ApiResult<Option<T>> {
    let mut buffer = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(|err| ApiError::validation(err.to_string()))? {
        if buffer.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(ApiError::field(name, format!("`{name}` must be at most {MAX_JSON_BYTES} bytes")));
        }
        buffer.extend_from_slice(&chunk);
    }
    let value: serde_json::Value = serde_json::from_slice(&buffer)
        .map_err(|err| ApiError::field(name, format!("`{name}` is not valid JSON: {err}")))?;
    objects_where_structs_go(name, &value, &["file_metadata"])?;
    serde_json::from_value::<Option<T>>(value)
        .map_err(|err| ApiError::field(name, format!("`{name}` is not valid for it: {err}")))
}

/// Reads a documents multipart body: the JSON parts and `file`, streamed into the store under `blob_key`. On an
/// error the caller removes the blob.
async fn read_form(
    state: &AppState,
    blob_key: &str,
    mut multipart: Multipart,
    with_item: bool,
) -> ApiResult<ItemUploadForm> {
    let mut form = ItemUploadForm::default();
    let (mut seen_item, mut seen_version) = (false, false);
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|err| ApiError::validation(format!("Invalid multipart body: {err}")))?;
        let part = field.content_disposition().and_then(|cd| cd.get_name()).unwrap_or_default().to_owned();
        match part.as_str() {
            "item" if with_item && !seen_item => {
                seen_item = true;
                form.item = json_part(&mut field, "item").await?;
            }
            "version" if !seen_version => {
                seen_version = true;
                form.version = json_part(&mut field, "version").await?;
            }
            "file" if form.file.is_none() => {
                let original_name = field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned);
                let content_type = field.content_type().map(|m| m.essence_str().to_owned());
                let limit = state.settings.gateway.max_upload_bytes;
                let blob = state.storage.put_stream_limited(blob_key, &mut field, limit).await.map_err(store_error)?;
                form.file = Some(UploadedContent { blob, content_type, original_name });
            }
            "item" | "version" | "file" if with_item || part != "item" => {
                return Err(ApiError::field(&part, format!("send at most one `{part}` part")));
            }
            other => {
                let allowed: Vec<String> = ItemUploadForm::PARTS
                    .iter()
                    .filter(|p| with_item || **p != "item")
                    .map(|p| (*p).to_owned())
                    .collect();
                return Err(ApiError::validation(format!(
                    "Unknown part `{}`; the form's parts are {}",
                    other.chars().filter(|c| !c.is_control()).take(100).collect::<String>(),
                    allowed.join(", ")
                ))
                .with_details(ErrorDetails { allowed: Some(allowed), ..ErrorDetails::field("parts") }));
            }
        }
    }
    Ok(form)
}

fn store_error(err: StorageError<actix_multipart::MultipartError>) -> ApiError {
    match err {
        StorageError::TooLarge { limit, .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, format!("The file is larger than the {limit}-byte upload limit"))
        }
        StorageError::Source { source, .. } => ApiError::validation(format!("The upload was interrupted: {source}")),
        other => ApiError::internal("storing an upload", &other),
    }
}

/// An item name as the document's pattern allows it, trimmed of ASCII whitespace.
fn item_name(field: &str, raw: &str) -> ApiResult<String> {
    storable(field, raw)?;
    let name = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if is_blank(name) || name.chars().count() > MAX_NAME_CHARS || name.contains('/') {
        return Err(ApiError::field(
            field,
            format!("{field} must be 1 to {MAX_NAME_CHARS} characters, not blank, without `/`"),
        ));
    }
    Ok(name.to_owned())
}

fn description(raw: Option<String>) -> ApiResult<Option<String>> {
    let Some(text) = raw else { return Ok(None) };
    storable("description", &text)?;
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::field(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(Some(text))
}

/// `root` → the top level; a directory id → that directory, which must be live.
async fn parent_of(tenant: &Tenant, raw: Option<&str>) -> ApiResult<Option<Uuid>> {
    match raw {
        None | Some(ROOT_ID) => Ok(None),
        Some(raw) => {
            let id = Uuid::parse_str(raw)
                .ok()
                .filter(|_| raw.len() == 36)
                .ok_or_else(|| ApiError::field("parent_id", "parent_id must be `root` or a directory id (a UUID)"))?;
            tenant.db().live_directory(id).await?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, "The parent directory does not exist (or is in the trash)")
                    .with_details(ErrorDetails::field("parent_id"))
            })?;
            Ok(Some(id))
        }
    }
}

/// The content type a version records: the client's, else the part's, else `application/octet-stream`.
fn version_mime(version: Option<&VersionFields>, content: Option<&UploadedContent>) -> ApiResult<String> {
    let stated = version.and_then(|v| v.file_metadata.as_ref()).and_then(|m| m.mime.clone());
    if let Some(mime) = &stated {
        let token = |part: &str| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b))
        };
        let valid = mime.len() <= 255 && mime.split_once('/').is_some_and(|(kind, sub)| token(kind) && token(sub));
        if !valid {
            return Err(ApiError::field(
                "version.file_metadata.mime",
                "mime must be a media type such as `text/plain`",
            ));
        }
    }
    Ok(stated
        .or_else(|| content.and_then(|c| c.content_type.clone()))
        .unwrap_or_else(|| "application/octet-stream".to_owned()))
}

/// Stores no bytes as an empty blob (an empty file still has a version).
async fn empty_content(state: &AppState, blob_key: &str) -> ApiResult<UploadedContent> {
    let empty = futures::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::new())]);
    let blob = state
        .storage
        .put_stream(blob_key, empty)
        .await
        .map_err(|err| ApiError::internal("storing an empty file", &err))?;
    Ok(UploadedContent { blob, content_type: None, original_name: None })
}

#[utoipa::path(operation_id = "documents_create_item", post, path = "/internal/services/documents/v1/companies/{company_id}/item", tag = "documents", description = "Create a directory or a file. As JSON (`{item, version?}`) a file starts empty; as `multipart/form-data` the `file` part is its content. Answers the created item (a file with its first version).", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)")), request_body(content((CreateItemRequest = "application/json"), (ItemUploadForm = "multipart/form-data"))), responses((status = 200, description = "The created item", body = DriveItem), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 404, description = "No such company or parent directory", body = crate::error::ErrorBody), (status = 413, description = "Over the upload limit", body = crate::error::ErrorBody)))]
async fn create_item(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let tenant = &caller.tenant;
    own_company(tenant, &path.into_inner())?;
    let blob_key = file_blob_key(&tenant.id().0, &Uuid::now_v7());
    let result = async {
        if is_multipart(&req) {
            let form = read_form(&state, &blob_key, Multipart::new(req.headers(), payload), true).await?;
            let file = form.file.ok_or_else(|| {
                ApiError::field("file", "a `file` part is required (create directories and empty files with JSON)")
            })?;
            let fields = ItemFields { properties: form.item.unwrap_or_default(), is_directory: Some(false) };
            create_from_form(&state, &caller, &blob_key, fields, form.version, Some(file)).await
        } else {
            let body: CreateItemRequest = json_body(payload).await?;
            let fields = body.item.ok_or_else(|| ApiError::field("item", "item is required (an object)"))?;
            create_from_form(&state, &caller, &blob_key, fields, body.version, None).await
        }
    }
    .await;
    if result.is_err() {
        // Nothing references the blob when the item was not created.
        let _ = state.storage.delete(&blob_key).await;
    }
    Ok(HttpResponse::Ok().json(result?))
}

/// Creates the item `fields` describe: a directory, or a file whose content is `file` (none: empty).
async fn create_from_form(
    state: &AppState,
    caller: &DocumentsCaller,
    blob_key: &str,
    fields: ItemFields,
    version: Option<VersionFields>,
    file: Option<UploadedContent>,
) -> ApiResult<DriveItem> {
    let tenant = &caller.tenant;
    let ItemFields { properties, is_directory } = fields;
    let shared = match properties.access_info {
        None => None,
        Some(_) if !caller.is_owner() => {
            return Err(ApiError::new(ErrorCode::PermissionDenied, "Only the owner (an API key) can share items"));
        }
        Some(update) => {
            let stored = share_settings(state, update)?;
            Some(serde_json::to_value(&stored).map_err(|err| ApiError::internal("storing share settings", &err))?)
        }
    };
    caller.authorize(state, properties.parent_id.as_deref().unwrap_or(ROOT_ID), Level::Write).await?;
    let parent = parent_of(tenant, properties.parent_id.as_deref()).await?;
    let tags = normalise_tags(properties.tags.unwrap_or_default())?;
    let description = description(properties.description)?.unwrap_or_default();
    if is_directory == Some(true) {
        if file.is_some() || version.is_some() {
            return Err(ApiError::field(
                "item.is_directory",
                "a directory has no content or versions; leave out `file` and `version`",
            ));
        }
        let name = match properties.name.as_deref() {
            Some(raw) => item_name("item.name", raw)?,
            None => "New folder".to_owned(),
        };
        let folder = tenant
            .db()
            .create_directory(NewDirectory {
                id: Uuid::now_v7(),
                name: &name,
                parent_id: parent,
                description: &description,
                tags: &tags,
                access_info: shared.as_ref(),
            })
            .await?;
        return Ok(DriveItem::directory(&folder));
    }
    let stated_name = version
        .as_ref()
        .and_then(|v| v.file_metadata.as_ref())
        .and_then(|m| m.name.as_deref())
        .map(|raw| item_name("version.file_metadata.name", raw))
        .transpose()?;
    let mime = version_mime(version.as_ref(), file.as_ref())?;
    let content = match file {
        Some(content) => content,
        None => empty_content(state, blob_key).await?,
    };
    let name = match properties.name.as_deref().or(stated_name.as_deref()).or(content.original_name.as_deref()) {
        Some(raw) => item_name("item.name", raw)?,
        None => "untitled".to_owned(),
    };
    let size =
        i64::try_from(content.blob.size).map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "file too large"))?;
    let id = FileId::new();
    let file = tenant
        .db()
        .insert_uploaded_file(NewUploadedFile {
            id,
            name: &name,
            mime_type: &mime,
            size_bytes: size,
            sha256: &content.blob.sha256_hex,
            md5: &content.blob.md5_hex,
            blob_key,
            tags: &tags,
            folder_id: parent,
            description: &description,
            access_info: shared.as_ref(),
        })
        .await?;
    let versions = tenant.db().list_versions(id).await?;
    Ok(DriveItem::file(&file, versions.first()))
}

#[utoipa::path(operation_id = "documents_add_version", post, path = "/internal/services/documents/v1/companies/{company_id}/item/{id}/version", tag = "documents", description = "Store new content for a file item, which becomes its latest version (and what its downloads serve): multipart with a `file` part (and an optional `version` part naming it and giving its type), or JSON whose `file_id` names content another version of the tenant already has (the two share the bytes).", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("id" = String, Path, pattern = "^img_[0-9a-f]{32}$")), request_body(content((VersionUploadForm = "multipart/form-data"), (NewVersionRequest = "application/json"))), responses((status = 200, description = "The new version", body = DriveItemVersion), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid credentials", body = crate::error::ErrorBody), (status = 403, description = "A read-only link or tab, or outside its subtree", body = crate::error::ErrorBody), (status = 404, description = "No such company, file or content", body = crate::error::ErrorBody), (status = 413, description = "Over the upload limit", body = crate::error::ErrorBody)))]
async fn add_version(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (company_id, id) = path.into_inner();
    let tenant = &caller.tenant;
    own_company(tenant, &company_id)?;
    let file_id = FileId::parse(&id).map_err(|_| ApiError::not_found("File"))?;
    caller.authorize(&state, &id, Level::Write).await?;
    let file = tenant.db().get_file(file_id).await?.ok_or_else(|| ApiError::not_found("File"))?;
    if !is_multipart(&req) {
        let body: NewVersionRequest = json_body(payload).await?;
        return shared_version(tenant, &file, body).await;
    }
    let blob_key = file_blob_key(&tenant.id().0, &Uuid::now_v7());
    let result = async {
        let collected = read_form(&state, &blob_key, Multipart::new(req.headers(), payload), false).await?;
        let form = VersionUploadForm { version: collected.version, file: collected.file };
        let stated_name = stated_version_name(form.version.as_ref())?;
        let mime = version_mime(form.version.as_ref(), form.file.as_ref())?;
        let content =
            form.file.ok_or_else(|| ApiError::field("file", "a `file` part with the new content is required"))?;
        let name = match stated_name.as_deref().or(content.original_name.as_deref()) {
            Some(raw) => item_name("version.file_metadata.name", raw)?,
            None => file.name.clone(),
        };
        let size = i64::try_from(content.blob.size)
            .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "file too large"))?;
        let version = NewVersion {
            id: Uuid::now_v7(),
            provider: VersionProvider::Internal,
            blob_key: &blob_key,
            name: &name,
            mime_type: Some(&mime),
            size_bytes: size,
            sha256: Some(&content.blob.sha256_hex),
            md5: Some(&content.blob.md5_hex),
            external_id: None,
            creator_id: None,
            application_id: None,
        };
        tenant.db().add_version(file_id, version).await?.ok_or_else(|| ApiError::not_found("File"))
    }
    .await;
    match result {
        Ok(version) => Ok(HttpResponse::Ok().json(DriveItemVersion::from(&version))),
        Err(err) => {
            let _ = state.storage.delete(&blob_key).await;
            Err(err)
        }
    }
}

fn stated_version_name(version: Option<&VersionFields>) -> ApiResult<Option<String>> {
    version
        .and_then(|v| v.file_metadata.as_ref())
        .and_then(|m| m.name.as_deref())
        .map(|raw| item_name("version.file_metadata.name", raw))
        .transpose()
}

/// A JSON version: new metadata for content the tenant already stores.
async fn shared_version(tenant: &Tenant, file: &StoredFile, body: NewVersionRequest) -> ApiResult<HttpResponse> {
    let unknown = || {
        ApiError::new(ErrorCode::NotFound, "No version of this company has that content (file_id)")
            .with_details(ErrorDetails::field("file_id"))
    };
    let content_id = Uuid::parse_str(&body.file_id).ok().filter(|_| body.file_id.len() == 36).ok_or_else(unknown)?;
    let blob_key = file_blob_key(&tenant.id().0, &content_id);
    let existing = tenant.db().version_with_blob(&blob_key).await?.ok_or_else(unknown)?;
    let fields = VersionFields { file_metadata: body.file_metadata };
    let name = stated_version_name(Some(&fields))?.unwrap_or_else(|| existing.name.clone());
    let stated_mime = fields.file_metadata.as_ref().and_then(|m| m.mime.is_some().then_some(()));
    let mime = match stated_mime {
        Some(()) => version_mime(Some(&fields), None)?,
        None => existing.mime_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned()),
    };
    let version = NewVersion {
        id: Uuid::now_v7(),
        provider: existing.provider,
        blob_key: &blob_key,
        name: &name,
        mime_type: Some(&mime),
        size_bytes: existing.size_bytes,
        sha256: existing.sha256.as_deref(),
        md5: existing.md5.as_deref(),
        external_id: existing.external_id.as_deref(),
        creator_id: None,
        application_id: None,
    };
    match tenant.db().add_version_sharing(FileId(file.id), version).await? {
        SharedVersion::Added(version) => Ok(HttpResponse::Ok().json(DriveItemVersion::from(version.as_ref()))),
        SharedVersion::NoSuchFile => Err(ApiError::not_found("File")),
        SharedVersion::UnknownContent => Err(unknown()),
    }
}

#[utoipa::path(operation_id = "documents_update_item", post, path = "/internal/services/documents/v1/companies/{company_id}/item/{id}", tag = "documents", description = "Change an item's name, description, tags, parent (`parent_id` moves it; a directory cannot move under itself or one of its descendants: 400) or share link (`access_info.public.level` `read`/`write` makes a link and the server generates its token; `none` revokes it; only with an API key).", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("id" = String, Path, pattern = "^(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")), request_body = ItemProperties, responses((status = 200, description = "The updated item", body = DriveItem), (status = 400, description = "Invalid request, or a move into the item's own subtree", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid credentials", body = crate::error::ErrorBody), (status = 403, description = "A read-only link or tab, outside its subtree, or a share change without an API key", body = crate::error::ErrorBody), (status = 404, description = "No such company, item or parent directory", body = crate::error::ErrorBody)))]
async fn update_item(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String)>,
    body: web::Json<ItemProperties>,
) -> ApiResult<HttpResponse> {
    let (company_id, id) = path.into_inner();
    let tenant = &caller.tenant;
    own_company(tenant, &company_id)?;
    caller.authorize(&state, &id, Level::Write).await?;
    let body = body.into_inner();
    if let Some(Some(parent)) = body.parent_id.as_deref().map(|p| (p != ROOT_ID).then_some(p)) {
        // A link or tab may only move things within what it reaches.
        caller.authorize(&state, parent, Level::Write).await?;
    } else if body.parent_id.is_some() && !caller.is_owner() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "Only the owner can move items to the top level"));
    }
    let access_info = match body.access_info {
        None => None,
        Some(_) if !caller.is_owner() => {
            return Err(ApiError::new(ErrorCode::PermissionDenied, "Only the owner (an API key) can change sharing"));
        }
        Some(update) => Some(update),
    };
    let changes =
        ItemChanges {
            name: body.name.as_deref().map(|raw| item_name("name", raw)).transpose()?,
            description: description(body.description)?,
            tags: body.tags.map(normalise_tags).transpose()?,
            parent: match body.parent_id.as_deref() {
                None => None,
                Some(ROOT_ID) => Some(None),
                Some(raw) => Some(Some(Uuid::parse_str(raw).ok().filter(|_| raw.len() == 36).ok_or_else(|| {
                    ApiError::field("parent_id", "parent_id must be `root` or a directory id (a UUID)")
                })?)),
            },
        };
    let stored_access = access_info.map(|update| share_settings(&state, update)).transpose()?;
    let no_parent = || {
        ApiError::new(ErrorCode::NotFound, "The parent directory does not exist (or is in the trash)")
            .with_details(ErrorDetails::field("parent_id"))
    };
    let key = match item_ref(&id)? {
        ItemRef::Root | ItemRef::Trash => return Err(ApiError::field("id", "root and trash cannot be changed")),
        ItemRef::Directory(folder_id) => ItemKey::Directory(folder_id),
        ItemRef::File(file_id) => ItemKey::File(file_id.0),
    };
    if let Some(stored) = &stored_access {
        let value = serde_json::to_value(stored).map_err(|err| ApiError::internal("storing share settings", &err))?;
        if !tenant.db().set_access_info(key, &value).await? {
            return Err(ApiError::not_found("Item"));
        }
    }
    let item = match key {
        ItemKey::Directory(folder_id) => match tenant.db().update_directory(folder_id, &changes).await? {
            ItemUpdate::Updated(folder) => DriveItem::directory(&folder),
            ItemUpdate::NotFound => return Err(ApiError::not_found("Item")),
            ItemUpdate::NoSuchParent => return Err(no_parent()),
            ItemUpdate::Cycle => {
                return Err(ApiError::field(
                    "parent_id",
                    "A directory cannot move under itself or one of its descendants",
                ));
            }
        },
        ItemKey::File(file_id) => match tenant.db().update_file_item(file_id, &changes).await? {
            ItemUpdate::Updated(file) => file_item(tenant, &file).await?,
            ItemUpdate::NotFound => return Err(ApiError::not_found("Item")),
            ItemUpdate::NoSuchParent => return Err(no_parent()),
            ItemUpdate::Cycle => return Err(ApiError::internal("moving a file", &"a file cannot make a cycle")),
        },
    };
    Ok(HttpResponse::Ok().json(item))
}

use crate::routes::documents::access::MAX_SHARE_PASSWORD_CHARS;

/// The share settings to store for `update`: a fresh token for a new link (a level change keeps no old token
/// alive), the password only as a keyed digest.
fn share_settings(state: &AppState, update: AccessInfoUpdate) -> ApiResult<StoredAccess> {
    // Everything is checked before `none` is honoured: a malformed request is refused whatever its level.
    let public = update.public;
    if !matches!(public.level.as_str(), "none" | "read" | "write") {
        return Err(ApiError::field("access_info.public.level", "level must be none, read or write"));
    }
    let expiration = public.expiration.unwrap_or(0);
    if expiration < 0 {
        return Err(ApiError::field(
            "access_info.public.expiration",
            "expiration must be 0 or milliseconds since the epoch",
        ));
    }
    if let Some(password) = &public.password {
        storable("access_info.public.password", password)?;
        if password.is_empty() || password.chars().count() > MAX_SHARE_PASSWORD_CHARS {
            return Err(ApiError::field(
                "access_info.public.password",
                format!("password must be 1 to {MAX_SHARE_PASSWORD_CHARS} characters (or null for none)"),
            ));
        }
    }
    if public.level == "none" {
        return Ok(StoredAccess::default());
    }
    let token = ferry_crypto::random_token(24);
    let password_digest = public.password.map(|password| state.signers.share_password.digest(&token, &password));
    Ok(StoredAccess { public: StoredPublicAccess { level: public.level, token, expiration, password_digest } })
}

/// A file item as the API shows it, with its latest version.
async fn file_item(tenant: &Tenant, file: &StoredFile) -> ApiResult<DriveItem> {
    let latest = match file.last_version_id {
        Some(version_id) => tenant.db().get_version(FileId(file.id), version_id).await?,
        None => None,
    };
    Ok(DriveItem::file(file, latest.as_ref()))
}

/// The answer to trashing or restoring: the item, 404, or 409 when it was already where the request would put it.
async fn trash_answer<T>(
    change: TrashChange<T>,
    unchanged: &str,
    shown: impl AsyncFnOnce(&T) -> ApiResult<DriveItem>,
) -> ApiResult<HttpResponse> {
    match change {
        TrashChange::Done(item) => Ok(HttpResponse::Ok().json(DeleteResult::Trashed(Box::new(shown(&item).await?)))),
        TrashChange::NotFound => Err(ApiError::not_found("Item")),
        TrashChange::Unchanged => Err(ApiError::new(ErrorCode::Conflict, unchanged)),
    }
}

fn forever_answer(deleted: ForeverDelete) -> ApiResult<Option<HttpResponse>> {
    match deleted {
        ForeverDelete::Deleted { directories, files, .. } => {
            Ok(Some(HttpResponse::Ok().json(DeleteResult::Deleted(DeletedItems { directories, files }))))
        }
        ForeverDelete::NotFound => Err(ApiError::not_found("Item")),
        ForeverDelete::NotInTrash => Ok(None),
        ForeverDelete::InUse { job_ids } => {
            let job_ids: Vec<String> = job_ids.into_iter().map(|id| JobId(id).to_string()).collect();
            Err(ApiError::new(ErrorCode::Conflict, "An unfinished job still uses a file in it; cancel it or wait")
                .with_details(ErrorDetails { job_ids: Some(job_ids), ..ErrorDetails::default() }))
        }
    }
}

#[utoipa::path(operation_id = "documents_delete_item", delete, path = "/internal/services/documents/v1/companies/{company_id}/item/{id}", tag = "documents", description = "A live item goes to the trash (its parent is kept; a directory's contents go with it): `{trashed: item}`. An item already in the trash, or inside a trashed directory, is deleted forever with everything below it and every version: `{deleted: {directories, files}}`; its bytes are removed shortly after (never while another version shares them).", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("id" = String, Path, pattern = "^(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")), responses((status = 200, description = "Trashed, or deleted forever", body = DeleteResult), (status = 401, description = "Missing or invalid credentials", body = crate::error::ErrorBody), (status = 403, description = "A read-only link or tab, or outside its subtree", body = crate::error::ErrorBody), (status = 404, description = "No such company or item", body = crate::error::ErrorBody), (status = 409, description = "An unfinished job uses a file in it", body = crate::error::ErrorBody)))]
async fn delete_item(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (company_id, id) = path.into_inner();
    let tenant = &caller.tenant;
    own_company(tenant, &company_id)?;
    caller.authorize(&state, &id, Level::Write).await?;
    const ALREADY: &str = "The item was put in the trash meanwhile; delete it again to delete it forever";
    match item_ref(&id)? {
        ItemRef::Root | ItemRef::Trash => {
            Err(ApiError::field("id", "root cannot be deleted; empty the trash with DELETE /item/trash"))
        }
        ItemRef::Directory(folder_id) => {
            if let Some(done) = forever_answer(tenant.db().delete_forever(ItemKey::Directory(folder_id)).await?)? {
                return Ok(done);
            }
            trash_answer(tenant.db().trash_directory(folder_id).await?, ALREADY, async |folder| {
                Ok(DriveItem::directory(folder))
            })
            .await
        }
        ItemRef::File(file_id) => {
            if let Some(done) = forever_answer(tenant.db().delete_forever(ItemKey::File(file_id.0)).await?)? {
                return Ok(done);
            }
            trash_answer(tenant.db().trash_file(file_id.0).await?, ALREADY, async |file| file_item(tenant, file).await)
                .await
        }
    }
}

#[utoipa::path(operation_id = "documents_empty_trash", delete, path = "/internal/services/documents/v1/companies/{company_id}/item/trash", tag = "documents", description = "Delete everything in the trash forever (see `DELETE /item/{id}`). Only with an API key.", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)")), responses((status = 200, description = "What was deleted", body = DeleteResult), (status = 401, description = "Missing or invalid credentials", body = crate::error::ErrorBody), (status = 403, description = "Not the owner", body = crate::error::ErrorBody), (status = 404, description = "No such company", body = crate::error::ErrorBody), (status = 409, description = "An unfinished job uses a file in the trash", body = crate::error::ErrorBody)))]
async fn empty_trash(caller: DocumentsCaller, path: web::Path<String>) -> ApiResult<HttpResponse> {
    own_company(&caller.tenant, &path.into_inner())?;
    if !caller.is_owner() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "Only the owner (an API key) can empty the trash"));
    }
    forever_answer(caller.tenant.db().empty_trash().await?)?
        .ok_or_else(|| ApiError::internal("emptying the trash", &"the trash reported live items"))
}

#[utoipa::path(operation_id = "documents_restore_item", post, path = "/internal/services/documents/v1/companies/{company_id}/item/{id}/restore", tag = "documents", description = "Take an item out of the trash: back to its parent, or to `root` when the parent is gone or itself in the trash.", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("id" = String, Path, pattern = "^(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")), responses((status = 200, description = "The restored item", body = DriveItem), (status = 401, description = "Missing or invalid credentials", body = crate::error::ErrorBody), (status = 403, description = "Not the owner", body = crate::error::ErrorBody), (status = 404, description = "No such company or item", body = crate::error::ErrorBody), (status = 409, description = "Not in the trash", body = crate::error::ErrorBody)))]
async fn restore_item(caller: DocumentsCaller, path: web::Path<(String, String)>) -> ApiResult<HttpResponse> {
    let (company_id, id) = path.into_inner();
    let tenant = &caller.tenant;
    own_company(tenant, &company_id)?;
    if !caller.is_owner() {
        // A restored item may land at the top level, beyond any link's reach.
        return Err(ApiError::new(ErrorCode::PermissionDenied, "Only the owner (an API key) can restore items"));
    }
    const NOT_TRASHED: &str = "The item is not in the trash";
    let restored = match item_ref(&id)? {
        ItemRef::Root | ItemRef::Trash => return Err(ApiError::field("id", "root and trash cannot be restored")),
        ItemRef::Directory(folder_id) => match tenant.db().restore_directory(folder_id).await? {
            TrashChange::Done(folder) => DriveItem::directory(&folder),
            TrashChange::NotFound => return Err(ApiError::not_found("Item")),
            TrashChange::Unchanged => return Err(ApiError::new(ErrorCode::Conflict, NOT_TRASHED)),
        },
        ItemRef::File(file_id) => match tenant.db().restore_file(file_id.0).await? {
            TrashChange::Done(file) => file_item(tenant, &file).await?,
            TrashChange::NotFound => return Err(ApiError::not_found("Item")),
            TrashChange::Unchanged => return Err(ApiError::new(ErrorCode::Conflict, NOT_TRASHED)),
        },
    };
    Ok(HttpResponse::Ok().json(restored))
}

/// Longest tab and channel id, in characters.
const MAX_TAB_ID_CHARS: usize = 200;

fn tab_view(state: &AppState, tab: &DocumentTab) -> ApiResult<TabConfiguration> {
    let claims = TabClaims { t: tab.tenant_id.to_string(), tab: tab.tab_id.clone() };
    let claims = serde_json::to_vec(&claims).map_err(|err| ApiError::internal("signing a tab token", &err))?;
    Ok(TabConfiguration {
        company_id: tab.tenant_id.to_string(),
        tab_id: tab.tab_id.clone(),
        channel_id: tab.channel_id.clone(),
        item_id: tab.item_id.clone(),
        level: tab.level.clone(),
        token: state.signers.tab.sign(&claims),
    })
}

#[utoipa::path(operation_id = "documents_get_tab", get, path = "/internal/services/documents/v1/companies/{company_id}/tabs/{tab_id}", tag = "documents", description = "A tab's configuration and its token (`?twake_tab_token=` grants the tab's level on its item's subtree).", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("tab_id" = String, Path, min_length = 1, max_length = 200)), responses((status = 200, description = "The tab", body = TabConfiguration), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 403, description = "Not the owner", body = crate::error::ErrorBody), (status = 404, description = "No such company or tab", body = crate::error::ErrorBody)))]
async fn get_tab(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (company_id, tab_id) = path.into_inner();
    own_company(&caller.tenant, &company_id)?;
    if !caller.is_owner() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "Tab configurations need an API key"));
    }
    let tab = caller.tenant.db().get_tab(&tab_id).await?.ok_or_else(|| ApiError::not_found("Tab"))?;
    Ok(HttpResponse::Ok().json(tab_view(&state, &tab)?))
}

#[utoipa::path(operation_id = "documents_put_tab", post, path = "/internal/services/documents/v1/companies/{company_id}/tabs/{tab_id}", tag = "documents", description = "Store a tab's configuration (replacing an earlier one): the tab shows `item_id`'s subtree at `level`. Answers it with a signed `token`.", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("tab_id" = String, Path, min_length = 1, max_length = 200)), request_body = TabRequest, responses((status = 200, description = "The stored tab", body = TabConfiguration), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 403, description = "Not the owner", body = crate::error::ErrorBody), (status = 404, description = "No such company or item", body = crate::error::ErrorBody), (status = 409, description = "The body's `tab_id` is not the path's", body = crate::error::ErrorBody)))]
async fn put_tab(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String)>,
    body: web::Json<TabRequest>,
) -> ApiResult<HttpResponse> {
    let (company_id, tab_id) = path.into_inner();
    let tenant = &caller.tenant;
    let company_id = own_company(tenant, &company_id)?;
    if !caller.is_owner() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "Tab configurations need an API key"));
    }
    let body = body.into_inner();
    if body.company_id.as_deref().is_some_and(|c| c != company_id) {
        // Like the path: another company is one the caller cannot see.
        return Err(ApiError::not_found("Company"));
    }
    if body.tab_id.as_deref().is_some_and(|t| t != tab_id) {
        // The body names another tab than the one being written: a conflict with the target, not a malformed body.
        return Err(ApiError::new(ErrorCode::Conflict, "tab_id in the body must be the path's tab id")
            .with_details(ErrorDetails::field("tab_id")));
    }
    for (field, value) in [("tab_id", tab_id.as_str()), ("channel_id", body.channel_id.as_str())] {
        storable(field, value)?;
        if is_blank(value) || value.chars().count() > MAX_TAB_ID_CHARS {
            return Err(ApiError::field(field, format!("{field} must be 1 to {MAX_TAB_ID_CHARS} characters")));
        }
    }
    let level = Level::parse(&body.level).ok_or_else(|| ApiError::field("level", "level must be read or write"))?;
    let key =
        item_key(&body.item_id).ok_or_else(|| ApiError::field("item_id", "item_id must be a file or directory id"))?;
    if tenant.db().item_chain(key).await?.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, "No such item").with_details(ErrorDetails::field("item_id")));
    }
    let tab = tenant.db().put_tab(&tab_id, &body.channel_id, &body.item_id, level.as_str()).await?;
    Ok(HttpResponse::Ok().json(tab_view(&state, &tab)?))
}
