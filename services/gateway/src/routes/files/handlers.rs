//! The files API: what Ferry stores (uploaded directly or imported from a drive).

use actix_multipart::Multipart;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use ferry_core::{FileId, FileStatus, JobId};
use ferry_db::files::{NewUploadedFile, StoredFile};
use ferry_db::store::{FileDelete, FileFilter, FileUpdate, FolderScope};
use ferry_storage::{StorageError, file_blob_key};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};
use crate::routes::files::dto::{
    FileList, FileUpdateRequest, FileView, MAX_FILE_NAME_CHARS, UploadForm, UploadedContent,
};
use crate::routes::folders::parse_folder_id;
use crate::routes::jobs::normalise_tags;
use crate::routes::{Page, paging, path_id, storable};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/files", web::get().to(list))
        .route("/files", web::post().to(upload))
        .route("/files/{file_id}", web::get().to(get))
        .route("/files/{file_id}", web::patch().to(update))
        .route("/files/{file_id}", web::delete().to(delete))
        .route("/files/{file_id}/content", web::get().to(content));
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// A folder id, or `root` for files in no folder. Absent: every file.
    pub folder_id: Option<String>,
    /// Files carrying this tag.
    pub tag: Option<String>,
    /// Files carrying every one of these comma-separated tags.
    pub tags: Option<String>,
    /// `pending`, `ready` or `failed`.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(operation_id = "files_list", get, path = "/files", tag = "files", description = "List stored files, newest first.", params(("folder_id" = Option<String>, Query, pattern = "^$|^root$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "a folder id (UUID), or root; empty means any folder"), ("tag" = Option<String>, Query, pattern = r"^[^\u0000]*$"), ("tags" = Option<String>, Query, pattern = r"^[^\u0000]*$", description = "comma-separated; all must match"), ("status" = Option<String>, Query, pattern = "^(pending|ready|failed)?$", description = "one file status"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "default 50"), ("offset" = Option<i64>, Query, minimum = 0, description = "default 0")), responses((status = 200, description = "Files", body = FileList), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn list(tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let (limit, offset) = paging(query.limit, query.offset, 50, 200)?;
    let folder = match query.folder_id.as_deref().filter(|f| !f.is_empty()) {
        None => FolderScope::Any,
        Some("root") => FolderScope::Root,
        Some(raw) => {
            let id = parse_folder_id(raw, "folder_id")?;
            tenant.db().get_folder(id).await?.ok_or_else(|| ApiError::not_found("Folder"))?;
            FolderScope::In(id)
        }
    };
    let mut tags: Vec<String> = Vec::new();
    for (field, raw) in [("tag", query.tag.as_deref()), ("tags", query.tags.as_deref())] {
        let Some(raw) = raw else { continue };
        storable(field, raw)?;
        tags.extend(raw.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned));
    }
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<FileStatus>()
                .map_err(|_| {
                    ApiError::field("status", format!("`{raw}` is not a file status; use pending, ready or failed"))
                })?
                .as_str(),
        ),
    };
    let filter = FileFilter { folder, tags: &tags, status, limit, offset };
    let (rows, total) = tenant.db().list_files_filtered(&filter).await?;
    let items = views(&tenant, &rows).await?;
    Ok(HttpResponse::Ok().json(FileList::from(Page::new(items, total, limit, offset))))
}

/// Views of `files` with their import jobs' metadata (one query for the page).
async fn views(tenant: &Tenant, files: &[StoredFile]) -> ApiResult<Vec<FileView>> {
    let mut job_ids: Vec<uuid::Uuid> = files.iter().filter_map(|f| f.import_job_id).collect();
    job_ids.sort();
    job_ids.dedup();
    let metadata = tenant.db().import_metadata(&job_ids).await?;
    let latest_ids: Vec<uuid::Uuid> = files.iter().filter_map(|f| f.last_version_id).collect();
    let versions = tenant.db().versions_by_ids(&latest_ids).await?;
    let latest = |file: &StoredFile| file.last_version_id.and_then(|id| versions.iter().find(|v| v.id == id));
    Ok(files
        .iter()
        .map(|f| FileView::new(f, f.import_job_id.and_then(|job| metadata.get(&job))).with_version(latest(f)))
        .collect())
}

/// One file's view with its import job's metadata.
async fn view(tenant: &Tenant, file: &StoredFile) -> ApiResult<FileView> {
    let metadata = match file.import_job_id {
        Some(job) => tenant.db().import_metadata(&[job]).await?.remove(&job),
        None => None,
    };
    let latest = match file.last_version_id {
        Some(version_id) => tenant.db().get_version(FileId(file.id), version_id).await?,
        None => None,
    };
    Ok(FileView::new(file, metadata.as_ref()).with_version(latest.as_ref()))
}

#[utoipa::path(operation_id = "files_update", patch, path = "/files/{file_id}", tag = "files", description = "Rename, retag or move a file.", params(("file_id" = String, Path, pattern = "^img_[0-9a-f]{32}$", example = "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")), request_body = FileUpdateRequest, responses((status = 200, description = "Updated", body = FileView), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn update(
    tenant: Tenant,
    path: web::Path<String>,
    body: web::Json<FileUpdateRequest>,
) -> ApiResult<HttpResponse> {
    let id = path_id(FileId::parse(&path), "File")?;
    let body = body.into_inner();
    let mut update = FileUpdate::default();
    if let Some(name) = body.name {
        storable("name", &name)?;
        let name = name.trim_matches(|c: char| c.is_ascii_whitespace()).to_owned();
        if name.is_empty() || name.chars().count() > MAX_FILE_NAME_CHARS {
            return Err(ApiError::field(
                "name",
                format!("name must be 1 to {MAX_FILE_NAME_CHARS} characters, not blank"),
            ));
        }
        update.name = Some(name);
    }
    if let Some(tags) = body.tags {
        update.tags = Some(normalise_tags(tags)?);
    }
    if let Some(folder) = body.folder_id {
        update.folder_id = Some(match folder.as_deref().filter(|f| !f.is_empty()) {
            None => None,
            Some(raw) => {
                let folder_id = parse_folder_id(raw, "folder_id")?;
                tenant.db().get_folder(folder_id).await?.ok_or_else(|| {
                    ApiError::new(ErrorCode::NotFound, "Folder not found")
                        .with_details(ErrorDetails::field("folder_id"))
                })?;
                Some(folder_id)
            }
        });
    }
    if update.name.is_none() && update.tags.is_none() && update.folder_id.is_none() {
        return Err(ApiError::validation("Send at least one of name, tags, folder_id"));
    }
    let file = tenant.db().update_file(id, &update).await?.ok_or_else(|| ApiError::not_found("File"))?;
    Ok(HttpResponse::Ok().json(view(&tenant, &file).await?))
}

/// Deletes the file and its bytes. A file an unfinished job still needs is a 409.
#[utoipa::path(operation_id = "files_delete", delete, path = "/files/{file_id}", tag = "files", description = "Delete a file; its bytes are removed shortly after, unless another version shares them (409 while an unfinished job uses the file).", params(("file_id" = String, Path, pattern = "^img_[0-9a-f]{32}$", example = "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")), responses((status = 200, description = "Deleted", body = crate::routes::SuccessResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 409, description = "Conflict", body = crate::error::ErrorBody)))]
async fn delete(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path_id(FileId::parse(&path), "File")?;
    match tenant.db().delete_file(id).await? {
        FileDelete::NotFound => Err(ApiError::not_found("File")),
        FileDelete::InUse { job_ids } => {
            let job_ids: Vec<String> = job_ids.into_iter().map(|id| JobId(id).to_string()).collect();
            Err(ApiError::new(ErrorCode::Conflict, "An unfinished job still uses this file; cancel it or wait")
                .with_details(ErrorDetails { job_ids: Some(job_ids), ..ErrorDetails::default() }))
        }
        FileDelete::Deleted { .. } => Ok(HttpResponse::Ok().json(crate::routes::SuccessResponse::new("File deleted"))),
    }
}

#[utoipa::path(operation_id = "files_get", get, path = "/files/{file_id}", tag = "files", description = "A stored file's metadata.", params(("file_id" = String, Path, pattern = "^img_[0-9a-f]{32}$", example = "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")), responses((status = 200, description = "The file", body = FileView), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn get(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = path_id(FileId::parse(&path), "File")?;
    let file = tenant.db().get_file(id).await?.ok_or_else(|| ApiError::not_found("File"))?;
    Ok(HttpResponse::Ok().json(view(&tenant, &file).await?))
}

/// One byte range of a `Range` header, resolved against the size. `Err(())` means unsatisfiable (416);
/// `Ok(None)` means serve the whole file (no header, several ranges, or a header we do not understand,
/// which RFC 9110 lets a server ignore).
fn requested_range(header: Option<&str>, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else { return Ok(None) };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else { return Ok(None) };
        if suffix == 0 {
            return Err(());
        }
        size.saturating_sub(suffix)..size
    } else {
        let Ok(start) = start.parse::<u64>() else { return Ok(None) };
        let end = if end.is_empty() {
            size
        } else {
            match end.parse::<u64>() {
                Ok(end) if end >= start => end.saturating_add(1).min(size),
                _ => return Ok(None),
            }
        };
        start..end
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

#[utoipa::path(operation_id = "files_content", get, path = "/files/{file_id}/content", tag = "files", description = "Download the bytes; a single `Range: bytes=...` gives 206.", params(("file_id" = String, Path, pattern = "^img_[0-9a-f]{32}$", example = "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d"), ("Range" = Option<String>, Header)), responses((status = 200, description = "The whole file", content_type = "application/octet-stream", body = Vec<u8>), (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 409, description = "Conflict", body = crate::error::ErrorBody), (status = 416, description = "Range outside the file", body = crate::error::ErrorBody)))]
async fn content(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    request: actix_web::HttpRequest,
) -> ApiResult<HttpResponse> {
    let id = path_id(FileId::parse(&path), "File")?;
    let file = tenant.db().get_file(id).await?.ok_or_else(|| ApiError::not_found("File"))?;
    let blob_key = match (file.status, file.blob_key.as_deref()) {
        (FileStatus::Ready, Some(key)) => key.to_owned(),
        _ => {
            return Err(ApiError::new(ErrorCode::Conflict, "The file has no content yet").with_details(ErrorDetails {
                status: Some(file.status.as_str().to_owned()),
                ..ErrorDetails::default()
            }));
        }
    };
    let size = file.size_bytes.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
    let mime = file.mime_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
    serve_blob(&state, &request, &blob_key, size, &file.name, &mime).await
}

/// Serves stored bytes as a download named `name` (UTF-8 in `Content-Disposition`), honouring one `Range`.
pub(crate) async fn serve_blob(
    state: &AppState,
    request: &actix_web::HttpRequest,
    blob_key: &str,
    size: u64,
    name: &str,
    mime: &str,
) -> ApiResult<HttpResponse> {
    let range_header = request.headers().get(actix_web::http::header::RANGE).and_then(|v| v.to_str().ok());
    let range = match requested_range(range_header, size) {
        Ok(range) => range,
        Err(()) => {
            return Err(ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("The requested range is outside the file's {size} bytes"),
            )
            .with_details(ErrorDetails { size_bytes: Some(size), ..ErrorDetails::default() }));
        }
    };
    let read = state
        .storage
        .get_stream(blob_key, range.clone())
        .await
        .map_err(|err| ApiError::internal("reading a blob", &err))?;
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::FilenameExt(actix_web::http::header::ExtendedValue {
            charset: actix_web::http::header::Charset::Ext("UTF-8".to_owned()),
            language_tag: None,
            value: name.as_bytes().to_vec(),
        })],
    };
    let body = read.stream.map_err(|err| {
        tracing::error!(error = %err, "blob stream failed mid-download");
        actix_web::error::ErrorInternalServerError("blob read failed")
    });
    let mut response = match &range {
        Some(range) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                "Content-Range",
                format!("bytes {}-{}/{}", range.start, range.end.saturating_sub(1), read.size),
            ));
            partial
        }
        None => HttpResponse::Ok(),
    };
    let length = range.as_ref().map(|r| r.end - r.start).unwrap_or(read.size);
    Ok(response
        .content_type(mime.to_owned())
        .insert_header(disposition)
        .insert_header(("Accept-Ranges", "bytes"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .no_chunking(length)
        .streaming(body))
}

/// Small text fields of the upload form are capped at this size.
const MAX_FIELD_BYTES: usize = 16 * 1024;

#[utoipa::path(operation_id = "files_upload", post, path = "/files", tag = "files", description = "Upload a file (multipart).", request_body(content = UploadForm, content_type = "multipart/form-data"), responses((status = 201, description = "Stored", body = FileView), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "The folder does not exist (field `folder_id`)", body = crate::error::ErrorBody), (status = 413, description = "Too large", body = crate::error::ErrorBody)))]
async fn upload(state: web::Data<AppState>, tenant: Tenant, form: Multipart) -> ApiResult<HttpResponse> {
    let id = FileId::new();
    let blob_key = file_blob_key(&tenant.id().0, &id.0);
    let collected = match collect_upload(&state, &tenant, &blob_key, form).await {
        Ok(collected) => collected,
        Err(err) => {
            // Whatever was stored before the form turned out to be invalid belongs to no file.
            let _ = state.storage.delete(&blob_key).await;
            return Err(err);
        }
    };
    let (form, stored, folder_id) = collected;
    let UploadedContent { blob: stored, content_type, original_name } = stored;
    let name = form.name;
    let tags: Vec<String> = form
        .tags
        .iter()
        .flat_map(|raw| raw.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let name = name.or(original_name).filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "upload.bin".to_owned());
    let mime = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
    let size = i64::try_from(stored.size).map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "file too large"))?;
    let file = tenant
        .db()
        .insert_uploaded_file(NewUploadedFile {
            id,
            name: &name,
            mime_type: &mime,
            size_bytes: size,
            sha256: &stored.sha256_hex,
            md5: &stored.md5_hex,
            blob_key: &blob_key,
            tags: &tags,
            folder_id,
            description: "",
            access_info: None,
        })
        .await;
    let file = match file {
        Ok(file) => file,
        Err(err) => {
            // Nothing references the blob yet: remove it rather than leave an orphan.
            let _ = state.storage.delete(&blob_key).await;
            return Err(err.into());
        }
    };
    Ok(HttpResponse::Created().json(FileView::new(&file, None)))
}

/// Reads the form: streams `file` into the blob store under `blob_key`, reads the text parts, refuses unknown
/// and repeated parts, and resolves the folder. On an error the caller removes the blob.
async fn collect_upload(
    state: &AppState,
    tenant: &Tenant,
    blob_key: &str,
    mut multipart: Multipart,
) -> ApiResult<(UploadForm, UploadedContent, Option<uuid::Uuid>)> {
    let mut form = UploadForm::default();
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|err| ApiError::validation(format!("Invalid multipart body: {err}")))?;
        let part = field.content_disposition().and_then(|cd| cd.get_name()).unwrap_or_default().to_owned();
        let slot = match part.as_str() {
            "file" => {
                if form.file.is_some() {
                    return Err(ApiError::field("file", "send exactly one `file` part"));
                }
                let original_name = field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned);
                let content_type = field.content_type().map(|m| m.essence_str().to_owned());
                let limit = state.settings.gateway.max_upload_bytes;
                let blob =
                    state.storage.put_stream_limited(blob_key, &mut field, limit).await.map_err(|err| match err {
                        StorageError::TooLarge { limit, .. } => ApiError::new(
                            ErrorCode::PayloadTooLarge,
                            format!("The file is larger than the {limit}-byte upload limit"),
                        ),
                        StorageError::Source { source, .. } => {
                            ApiError::validation(format!("The upload was interrupted: {source}"))
                        }
                        other => ApiError::internal("storing an upload", &other),
                    })?;
                form.file = Some(UploadedContent { blob, content_type, original_name });
                continue;
            }
            "name" => &mut form.name,
            "tags" => &mut form.tags,
            "folder_id" => &mut form.folder_id,
            other => {
                return Err(ApiError::validation(format!(
                    "Unknown part `{}`; the form's parts are {}",
                    other.chars().filter(|c| !c.is_control()).take(100).collect::<String>(),
                    UploadForm::PARTS.join(", ")
                ))
                .with_details(ErrorDetails {
                    allowed: Some(UploadForm::PARTS.map(str::to_owned).to_vec()),
                    ..ErrorDetails::field("parts")
                }));
            }
        };
        if slot.is_some() {
            return Err(ApiError::field(&part, format!("send at most one `{part}` part")));
        }
        let text = read_text(&mut field, &part).await?;
        storable(&part, &text)?;
        *slot = Some(text);
    }
    let content =
        form.file.take().ok_or_else(|| ApiError::field("file", "a multipart part named `file` is required"))?;
    let folder = form.folder_id.as_deref().map(str::trim).filter(|raw| !raw.is_empty());
    let folder_id = match folder {
        None => None,
        Some(raw) => {
            let id = parse_folder_id(raw, "folder_id")?;
            tenant.db().get_folder(id).await?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, "Folder not found").with_details(ErrorDetails::field("folder_id"))
            })?;
            Some(id)
        }
    };
    Ok((form, content, folder_id))
}

async fn read_text(field: &mut actix_multipart::Field, name: &str) -> ApiResult<String> {
    let mut buffer = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(|err| ApiError::validation(err.to_string()))? {
        if buffer.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(ApiError::field(name, format!("`{name}` must be at most {MAX_FIELD_BYTES} bytes")));
        }
        buffer.extend_from_slice(&chunk);
    }
    String::from_utf8(buffer).map_err(|_| ApiError::field(name, format!("`{name}` must be UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::requested_range;

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(requested_range(None, 100), Ok(None));
        assert_eq!(requested_range(Some("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(requested_range(Some("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(requested_range(Some("bytes=-10"), 100), Ok(Some(90..100)));
        assert_eq!(requested_range(Some("bytes=-500"), 100), Ok(Some(0..100)));
        assert_eq!(requested_range(Some("bytes=50-5000"), 100), Ok(Some(50..100)));
        assert_eq!(requested_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(requested_range(Some("bytes=-0"), 100), Err(()));
        assert_eq!(requested_range(Some("bytes=0-0"), 0), Err(()));
        // Ignored (served whole): several ranges, other units, nonsense.
        assert_eq!(requested_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(requested_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(requested_range(Some("bytes=9-1"), 100), Ok(None));
        assert_eq!(requested_range(Some("bytes=a-b"), 100), Ok(None));
    }
}
