//! Downloads from the documents API: download tokens, one file's bytes (any version, with `Range`), zips of
//! directories and item sets (streamed: see `ferry-archive`), and thumbnails.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header::{Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use ferry_archive::{DosTime, UniquePaths, ZipWriter, is_already_compressed};
use ferry_core::FileId;
use ferry_db::items::{ItemKey, TreeEntry};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::documents::access::{DocumentsCaller, DownloadClaims, Level, item_key};
use crate::routes::documents::handlers::own_company;
use crate::state::AppState;

/// The most items one token or zip names.
const MAX_ITEMS: usize = 50;
/// Chunks of a zip waiting for the client: with the open reads, all the memory a zip download holds.
const ZIP_CHANNEL_CHUNKS: usize = 8;
/// A zip whose store read or client makes no progress for this long is abandoned.
const ZIP_STALL: Duration = Duration::from_secs(120);

/// `?items=id1,id2&version_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemsQuery {
    /// Comma-separated item ids (1 to 50).
    #[param(
        max_length = 1899,
        pattern = r"^(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(,(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})){0,49}$"
    )]
    pub items: String,
    /// A version of the (single) file item.
    #[param(format = Uuid)]
    pub version_id: Option<String>,
}

/// `?items=id1,id2` on a zip download.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZipQuery {
    /// Comma-separated item ids (1 to 50).
    #[param(
        max_length = 1899,
        pattern = r"^(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(,(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})){0,49}$"
    )]
    pub items: String,
    /// Read only to refuse it clearly: a zip holds the latest version of each file.
    #[param(ignore)]
    pub version_id: Option<String>,
}

/// `?version_id=` on a download.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    #[param(format = Uuid)]
    pub version_id: Option<String>,
}

/// `GET /item/download/token`: a token for `?token=` on the download routes.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DownloadToken {
    pub token: String,
}

fn parse_items(raw: &str) -> ApiResult<Vec<String>> {
    let mut items: Vec<String> = raw.split(',').map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned).collect();
    items.dedup();
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(ApiError::field("items", format!("items must name 1 to {MAX_ITEMS} item ids, comma-separated")));
    }
    if let Some(bad) = items.iter().find(|id| item_key(id).is_none()) {
        return Err(ApiError::field(
            "items",
            format!("`{}` is not an item id", bad.chars().take(60).collect::<String>()),
        ));
    }
    Ok(items)
}

fn parse_version(raw: Option<&str>) -> ApiResult<Option<Uuid>> {
    raw.map(|raw| Uuid::parse_str(raw).ok().filter(|_| raw.len() == 36).ok_or_else(|| ApiError::not_found("Version")))
        .transpose()
}

#[utoipa::path(operation_id = "documents_download_token", get, path = "/internal/services/documents/v1/companies/{company_id}/item/download/token", tag = "documents", description = "A token that downloads exactly these items (at `version_id`, for one file) as `?token=` on the download routes, without an API key. It expires after `items.download_token_ttl_secs` (default 600 s).", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ItemsQuery), responses((status = 200, description = "The token", body = DownloadToken), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid credentials", body = crate::error::ErrorBody), (status = 403, description = "Not allowed to read these items", body = crate::error::ErrorBody), (status = 404, description = "No such company, item or version", body = crate::error::ErrorBody)))]
pub async fn download_token(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<String>,
    query: web::Query<ItemsQuery>,
) -> ApiResult<HttpResponse> {
    own_company(&caller.tenant, &path.into_inner())?;
    if matches!(caller.grant, crate::routes::documents::access::Grant::Download { .. }) {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "A download token cannot make other tokens"));
    }
    let items = parse_items(&query.items)?;
    let version = parse_version(query.version_id.as_deref())?;
    for id in &items {
        caller.authorize(&state, id, Level::Read).await?;
    }
    // Every item must exist now; a version must belong to the one file named.
    let tops: Vec<ItemKey> = items.iter().filter_map(|id| item_key(id)).collect();
    if caller.tenant.db().live_tree(&tops).await?.is_none() {
        return Err(ApiError::not_found("Item"));
    }
    if let Some(version) = version {
        let [ItemKey::File(file)] = tops.as_slice() else {
            return Err(ApiError::field("version_id", "version_id goes with exactly one file item"));
        };
        caller.tenant.db().get_version(FileId(*file), version).await?.ok_or_else(|| ApiError::not_found("Version"))?;
    }
    let ttl = i64::try_from(state.settings.items.download_token_ttl_secs).unwrap_or(600);
    let claims = DownloadClaims {
        tenant: caller.tenant.id().0,
        items: tops,
        version,
        expires: chrono::Utc::now().timestamp() + ttl,
    };
    Ok(HttpResponse::Ok().json(DownloadToken { token: state.signers.download.sign(&claims.encode()) }))
}

#[utoipa::path(operation_id = "documents_download", get, path = "/internal/services/documents/v1/companies/{company_id}/item/{id}/download", tag = "documents", description = "A file's bytes (the latest version, or `version_id`), with a UTF-8 `Content-Disposition` and one `Range`; a directory downloads as a zip of its live contents. Authorised by an API key, `?token=`, `?public_token=` or `?twake_tab_token=`.", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("id" = String, Path, pattern = "^(img_[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"), VersionQuery, ("Range" = Option<String>, Header)), responses((status = 200, description = "The bytes, or a zip", content_type = "application/octet-stream", body = Vec<u8>), (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>), (status = 400, description = "Invalid query parameters", body = crate::error::ErrorBody), (status = 401, description = "Missing, invalid or expired credentials", body = crate::error::ErrorBody), (status = 403, description = "The token does not cover this item or version", body = crate::error::ErrorBody), (status = 404, description = "No such company, item or version", body = crate::error::ErrorBody), (status = 409, description = "The file has no content yet", body = crate::error::ErrorBody), (status = 416, description = "Range outside the file", body = crate::error::ErrorBody)))]
pub async fn download_item(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String)>,
    query: web::Query<VersionQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (company_id, id) = path.into_inner();
    own_company(&caller.tenant, &company_id)?;
    let key = item_key(&id).ok_or_else(|| ApiError::not_found("Item"))?;
    let version = parse_version(query.version_id.as_deref())?;
    caller.may_download(&state, std::slice::from_ref(&id), query.version_id.as_deref()).await?;
    match key {
        ItemKey::Directory(_) => {
            if version.is_some() {
                return Err(ApiError::field("version_id", "directories have no versions"));
            }
            zip_response(&state, &caller, &[key]).await
        }
        ItemKey::File(file_id) => {
            let file =
                caller.tenant.db().get_file(FileId(file_id)).await?.ok_or_else(|| ApiError::not_found("Item"))?;
            let version_id = version.or(file.last_version_id).ok_or_else(|| {
                ApiError::new(ErrorCode::Conflict, "The file has no content yet (its import has not finished)")
            })?;
            let version = caller
                .tenant
                .db()
                .get_version(FileId(file_id), version_id)
                .await?
                .ok_or_else(|| ApiError::not_found("Version"))?;
            let size = u64::try_from(version.size_bytes).unwrap_or(0);
            let mime = version.mime_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
            crate::routes::files::handlers::serve_blob(&state, &request, &version.blob_key, size, &file.name, &mime)
                .await
        }
    }
}

#[utoipa::path(operation_id = "documents_download_zip", get, path = "/internal/services/documents/v1/companies/{company_id}/item/download/zip", tag = "documents", description = "One zip of these items and everything live inside them: streamed from the first byte (zip64, so any size), already-compressed types stored as they are, empty directories kept, trashed items left out, colliding names made unique.", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ZipQuery), responses((status = 200, description = "The zip", content_type = "application/zip", body = Vec<u8>), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing, invalid or expired credentials", body = crate::error::ErrorBody), (status = 403, description = "The token does not cover these items", body = crate::error::ErrorBody), (status = 404, description = "No such company or item", body = crate::error::ErrorBody)))]
pub async fn download_zip(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<String>,
    query: web::Query<ZipQuery>,
) -> ApiResult<HttpResponse> {
    own_company(&caller.tenant, &path.into_inner())?;
    let items = parse_items(&query.items)?;
    if query.version_id.is_some() {
        return Err(ApiError::field("version_id", "a zip holds the latest version of each file"));
    }
    caller.may_download(&state, &items, None).await?;
    let tops: Vec<ItemKey> = items.iter().filter_map(|id| item_key(id)).collect();
    zip_response(&state, &caller, &tops).await
}

/// One zip entry in archive order.
enum ZipItem {
    Directory { path: String },
    File { path: String, blob_key: String, compress: bool },
}

/// Archive order: each top, then depth first, directories before files, each by name.
fn zip_plan(entries: Vec<TreeEntry>) -> Vec<ZipItem> {
    let mut children: HashMap<Option<Uuid>, Vec<TreeEntry>> = HashMap::new();
    for entry in entries {
        children.entry(entry.parent).or_default().push(entry);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| {
            let rank = |e: &TreeEntry| matches!(e.key, ItemKey::File(_));
            rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
        });
    }
    let mut plan = Vec::new();
    let mut names = UniquePaths::new();
    let mut stack: Vec<(String, TreeEntry)> =
        children.remove(&None).unwrap_or_default().into_iter().rev().map(|e| (String::new(), e)).collect();
    while let Some((directory, entry)) = stack.pop() {
        match entry.key {
            ItemKey::Directory(id) => {
                let path = names.place(&directory, &entry.name, true);
                let inside = children.remove(&Some(id)).unwrap_or_default();
                stack.extend(inside.into_iter().rev().map(|child| (path.clone(), child)));
                plan.push(ZipItem::Directory { path });
            }
            ItemKey::File(_) => {
                // A file whose import has not finished has nothing to put in.
                let Some(blob_key) = entry.blob_key else { continue };
                let path = names.place(&directory, &entry.name, false);
                let compress = !is_already_compressed(entry.mime_type.as_deref(), &entry.name);
                plan.push(ZipItem::File { path, blob_key, compress });
            }
        }
    }
    plan
}

async fn zip_response(state: &AppState, caller: &DocumentsCaller, tops: &[ItemKey]) -> ApiResult<HttpResponse> {
    let entries = caller.tenant.db().live_tree(tops).await?.ok_or_else(|| ApiError::not_found("Item"))?;
    let name = match (tops, entries.iter().find(|e| e.parent.is_none())) {
        ([_], Some(top)) => format!("{}.zip", top.name),
        _ => "download.zip".to_owned(),
    };
    let plan = zip_plan(entries);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(ZIP_CHANNEL_CHUNKS);
    let storage = state.storage.clone();
    let reads = state.settings.items.zip_concurrent_reads.max(1);
    // The task ends when the zip is written or the client goes away (a send fails), so it lives no longer
    // than the download it serves.
    tokio::spawn(async move {
        if let Err(err) = write_zip(storage, plan, reads, &sender).await {
            tracing::warn!(error = %err, "zip download ended early");
            let _ = sender.send(Err(std::io::Error::other("the zip could not be completed"))).await;
        }
    });
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::FilenameExt(ExtendedValue {
            charset: Charset::Ext("UTF-8".to_owned()),
            language_tag: None,
            value: name.into_bytes(),
        })],
    };
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(disposition)
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .streaming(body))
}

#[derive(Debug, thiserror::Error)]
enum ZipError {
    #[error("the client went away")]
    ClientGone,
    #[error("no progress for {0:?}")]
    Stalled(Duration),
    #[error("reading {key}: {source}")]
    Read { key: String, source: ferry_storage::StorageError },
}

async fn send(sender: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>, chunk: Bytes) -> Result<(), ZipError> {
    if chunk.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(ZIP_STALL, sender.send(Ok(chunk))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(ZipError::ClientGone),
        Err(_) => Err(ZipError::Stalled(ZIP_STALL)),
    }
}

async fn write_zip(
    storage: ferry_storage::BlobStore,
    plan: Vec<ZipItem>,
    concurrent_reads: usize,
    sender: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), ZipError> {
    let now = chrono::Utc::now();
    use chrono::{Datelike, Timelike};
    let mut writer = ZipWriter::new(DosTime::new(
        u32::try_from(now.year()).unwrap_or(1980),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
    ));
    // Up to `concurrent_reads` files are opened ahead of the one being written; each holds at most a chunk.
    let mut opened = futures::stream::iter(plan)
        .map(|item| {
            let storage = storage.clone();
            async move {
                match item {
                    ZipItem::Directory { path } => Ok((path, None)),
                    ZipItem::File { path, blob_key, compress } => match storage.get_stream(&blob_key, None).await {
                        Ok(read) => Ok((path, Some((read, compress)))),
                        Err(source) => Err(ZipError::Read { key: blob_key, source }),
                    },
                }
            }
        })
        .buffered(concurrent_reads);
    while let Some(item) = opened.next().await {
        let (path, content) = item?;
        let Some((read, compress)) = content else {
            send(sender, writer.directory(&path)).await?;
            continue;
        };
        let (header, mut entry) = writer.begin_file(&path, compress);
        send(sender, header).await?;
        let mut stream = read.stream;
        loop {
            let chunk = match tokio::time::timeout(ZIP_STALL, stream.try_next()).await {
                Err(_) => return Err(ZipError::Stalled(ZIP_STALL)),
                Ok(Err(source)) => return Err(ZipError::Read { key: path.clone(), source }),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            send(sender, entry.update(&chunk)).await?;
        }
        send(sender, entry.finish(&mut writer)).await?;
    }
    send(sender, writer.finish()).await
}

#[utoipa::path(operation_id = "documents_thumbnail", get, path = "/internal/services/documents/v1/companies/{company_id}/item/{id}/thumbnails/{index}", tag = "documents", description = "A thumbnail of an image version (index 0: 256 px, 1: 1024 px on the longest side), as listed in its `file_metadata.thumbnails`.", params(("company_id" = String, Path, format = Uuid, description = "the caller's tenant id (`GET /api/v2/me`)"), ("id" = String, Path, pattern = "^img_[0-9a-f]{32}$"), ("index" = u32, Path, maximum = 1), VersionQuery), responses((status = 200, description = "The thumbnail", content_type = "image/jpeg", body = Vec<u8>), (status = 400, description = "Invalid query parameters", body = crate::error::ErrorBody), (status = 401, description = "Missing, invalid or expired credentials", body = crate::error::ErrorBody), (status = 403, description = "The token does not cover this item or version", body = crate::error::ErrorBody), (status = 404, description = "No such company, item, version or thumbnail", body = crate::error::ErrorBody)))]
pub async fn thumbnail(
    state: web::Data<AppState>,
    caller: DocumentsCaller,
    path: web::Path<(String, String, u32)>,
    query: web::Query<VersionQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (company_id, id, index) = path.into_inner();
    own_company(&caller.tenant, &company_id)?;
    let Some(ItemKey::File(file_id)) = item_key(&id) else { return Err(ApiError::not_found("Item")) };
    let version = parse_version(query.version_id.as_deref())?;
    caller.may_download(&state, std::slice::from_ref(&id), query.version_id.as_deref()).await?;
    let file = caller.tenant.db().get_file(FileId(file_id)).await?.ok_or_else(|| ApiError::not_found("Item"))?;
    let version_id = version.or(file.last_version_id).ok_or_else(|| ApiError::not_found("Thumbnail"))?;
    let version = caller
        .tenant
        .db()
        .get_version(FileId(file_id), version_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Version"))?;
    let thumbnails: Vec<ferry_db::versions::ThumbnailRecord> =
        serde_json::from_value(version.thumbnails.clone()).unwrap_or_default();
    let thumb = thumbnails.iter().find(|t| t.index == index).ok_or_else(|| ApiError::not_found("Thumbnail"))?;
    let size = u64::try_from(thumb.size).unwrap_or(0);
    let key = ferry_storage::thumbnail_key(&version.blob_key, thumb.longest_side);
    let name =
        format!("{}-{}.{}", file.name, thumb.longest_side, if thumb.kind == "image/png" { "png" } else { "jpg" });
    crate::routes::files::handlers::serve_blob(&state, &request, &key, size, &name, &thumb.kind).await
}
