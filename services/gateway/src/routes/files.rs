//! The files API: what Ferry stores (uploaded directly or imported from a drive).

use actix_multipart::Multipart;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use ferry_core::{FileId, FileStatus};
use ferry_db::files::{NewUploadedFile, StoredFile};
use ferry_storage::{StorageError, file_blob_key};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::{Page, paging, timestamp};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/files", web::get().to(list))
        .route("/files", web::post().to(upload))
        .route("/files/{file_id}", web::get().to(get))
        .route("/files/{file_id}/content", web::get().to(content));
}

pub fn file_view(file: &StoredFile) -> Value {
    json!({
        "id": file.file_id().to_string(),
        "name": file.name,
        "mime_type": file.mime_type,
        "size_bytes": file.size_bytes,
        "sha256": file.sha256,
        "md5": file.md5,
        "status": file.status,
        "tags": file.tags,
        "folder_id": file.folder_id,
        "source": file.source_file_id.as_ref().map(|id| json!({
            "connection_id": file.source_connection_id,
            "file_id": id,
        })),
        "provider_metadata": file.provider_metadata,
        "error": file.error_code.as_ref().map(|code| json!({ "code": code, "message": file.error_message })),
        "created_at": timestamp(file.created_at),
        "updated_at": timestamp(file.updated_at),
    })
}

fn parse_file_id(raw: &str) -> ApiResult<FileId> {
    FileId::parse(raw).map_err(|_| ApiError::field("file_id", format!("`{raw}` is not a valid file id")))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

async fn list(state: web::Data<AppState>, tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let (limit, offset) = paging(query.limit, query.offset, 50, 200)?;
    let (rows, total) = state.db.list_files(tenant.0, limit, offset).await?;
    let items: Vec<Value> = rows.iter().map(file_view).collect();
    Ok(HttpResponse::Ok().json(Page::new(items, total, limit, offset)))
}

async fn get(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_file_id(&path)?;
    let file = state.db.get_file(tenant.0, id).await?.ok_or_else(|| ApiError::not_found("File"))?;
    Ok(HttpResponse::Ok().json(file_view(&file)))
}

async fn content(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let id = parse_file_id(&path)?;
    let file = state.db.get_file(tenant.0, id).await?.ok_or_else(|| ApiError::not_found("File"))?;
    let status = file.status().map_err(|err| ApiError::internal("file status", &err))?;
    let blob_key = match (status, file.blob_key.as_deref()) {
        (FileStatus::Ready, Some(key)) => key.to_owned(),
        _ => {
            return Err(ApiError::new(ErrorCode::Conflict, "The file has no content yet")
                .with_details(json!({ "status": file.status })));
        }
    };
    let read =
        state.storage.get_stream(&blob_key, None).await.map_err(|err| ApiError::internal("reading a blob", &err))?;
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::FilenameExt(actix_web::http::header::ExtendedValue {
            charset: actix_web::http::header::Charset::Ext("UTF-8".to_owned()),
            language_tag: None,
            value: file.name.clone().into_bytes(),
        })],
    };
    let mime = file.mime_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
    let body = read.stream.map_err(|err| {
        tracing::error!(error = %err, "blob stream failed mid-download");
        actix_web::error::ErrorInternalServerError("blob read failed")
    });
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(disposition)
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .no_chunking(read.size)
        .streaming(body))
}

/// Small text fields of the upload form are capped at this size.
const MAX_FIELD_BYTES: usize = 16 * 1024;

async fn upload(state: web::Data<AppState>, tenant: Tenant, mut form: Multipart) -> ApiResult<HttpResponse> {
    let id = FileId::new();
    let blob_key = file_blob_key(&tenant.0.0, &id.0);
    let mut name: Option<String> = None;
    let mut tags: Vec<String> = Vec::new();
    let mut stored = None;
    let mut content_type: Option<String> = None;
    let mut original_name: Option<String> = None;

    while let Some(field) = form.next().await {
        let mut field = field.map_err(|err| ApiError::validation(format!("Invalid multipart body: {err}")))?;
        let field_name = field.content_disposition().and_then(|cd| cd.get_name()).unwrap_or_default().to_owned();
        match field_name.as_str() {
            "file" => {
                if stored.is_some() {
                    return Err(ApiError::field("file", "send exactly one `file` part"));
                }
                original_name = field.content_disposition().and_then(|cd| cd.get_filename()).map(str::to_owned);
                content_type = field.content_type().map(|m| m.essence_str().to_owned());
                let limit = state.settings.gateway.max_upload_bytes;
                let result = state.storage.put_stream_limited(&blob_key, &mut field, limit).await;
                stored = Some(result.map_err(|err| match err {
                    StorageError::TooLarge { limit, .. } => ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("The file is larger than the {limit}-byte upload limit"),
                    ),
                    StorageError::Source { source, .. } => {
                        ApiError::validation(format!("The upload was interrupted: {source}"))
                    }
                    other => ApiError::internal("storing an upload", &other),
                })?);
            }
            "name" => name = Some(read_text(&mut field, "name").await?),
            "tags" => {
                let raw = read_text(&mut field, "tags").await?;
                tags.extend(raw.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned));
            }
            _ => {
                // Unknown parts are drained and ignored.
                while field.try_next().await.map_err(|err| ApiError::validation(err.to_string()))?.is_some() {}
            }
        }
    }
    let stored = stored.ok_or_else(|| ApiError::field("file", "a multipart part named `file` is required"))?;
    let name = name.or(original_name).filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "upload.bin".to_owned());
    let mime = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
    let size = i64::try_from(stored.size).map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "file too large"))?;
    let file = state
        .db
        .insert_uploaded_file(NewUploadedFile {
            id,
            tenant_id: tenant.0,
            name: &name,
            mime_type: &mime,
            size_bytes: size,
            sha256: &stored.sha256_hex,
            md5: &stored.md5_hex,
            blob_key: &blob_key,
            tags: &tags,
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
    Ok(HttpResponse::Created().json(file_view(&file)))
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
