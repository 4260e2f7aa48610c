//! Import and export jobs: validated, written with their items and outbox commands in one transaction,
//! then polled here while workers move the files.

use std::collections::HashSet;

use actix_web::{HttpResponse, web};
use ferry_core::{FileId, FileStatus, ItemId, JobId};
use ferry_db::jobs::{NewExportItem, NewExportJob, NewImportItem, NewImportJob};
use ferry_messages::Message;
use serde_json::Value;
use tracing::Instrument;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};
use crate::routes::connections::{active_connection, mark_used, parse_connection_id, with_drive_token};
use crate::routes::job_dto::{
    ExportRequest, ExportResponse, ImageId, ImportRequest, ImportResponse, JobResponse, JobView, Tag,
};
use crate::routes::{is_blank, path_id, storable};
use crate::state::AppState;

/// Most files one job may carry.
pub const MAX_FILES_PER_JOB: usize = 1000;
/// Longest Drive file id accepted (Drive's are 28 to 44 characters).
pub const MAX_DRIVE_ID_BYTES: usize = 256;
/// Longest file name accepted, in UTF-8 bytes.
pub const MAX_FILE_NAME_BYTES: usize = 1024;
/// Longest MIME type accepted.
pub const MAX_MIME_TYPE_BYTES: usize = 255;
/// Most tags per request, and the longest tag in characters.
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;
/// Largest `provider_metadata`, serialized as compact JSON. It is stored once per job.
pub const MAX_PROVIDER_METADATA_BYTES: usize = 16 * 1024;

/// The JSON body limit: the largest legal request (an import of [`MAX_FILES_PER_JOB`] files with every field at
/// its limit and the largest metadata), string content counted twice for JSON escapes (tags, limited in characters,
/// six times: `\u0001`), plus framing and slack.
pub const MAX_JSON_BODY_BYTES: usize = MAX_FILES_PER_JOB
    * (2 * (MAX_DRIVE_ID_BYTES + MAX_FILE_NAME_BYTES + 2 * MAX_MIME_TYPE_BYTES) + FILE_FRAMING_BYTES)
    + 2 * MAX_PROVIDER_METADATA_BYTES
    + MAX_TAGS * (6 * MAX_TAG_CHARS + 4)
    + 64 * 1024;
/// Keys, quotes and punctuation of one file entry, with room for `size_bytes`.
const FILE_FRAMING_BYTES: usize = 128;

/// A request string field at most `max` bytes long.
fn bounded(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.len() > max {
        return Err(ApiError::field(field, format!("`{field}` must be at most {max} bytes (got {})", value.len())));
    }
    Ok(())
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cloud-storage/import", web::post().to(import))
        .route("/cloud-storage/export", web::post().to(export))
        .route("/cloud-storage/jobs/{job_id}", web::get().to(get_job));
}

/// Google Workspace types Ferry imports, with the formats Drive documents for each; the first is the default.
pub const WORKSPACE_EXPORTS: &[(&str, &[&str])] = &[
    (
        "application/vnd.google-apps.document",
        &[
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.oasis.opendocument.text",
            "application/rtf",
            "application/pdf",
            "text/plain",
            "application/zip",
            "application/epub+zip",
            "text/markdown",
        ],
    ),
    (
        "application/vnd.google-apps.spreadsheet",
        &[
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/x-vnd.oasis.opendocument.spreadsheet",
            "application/vnd.oasis.opendocument.spreadsheet",
            "application/pdf",
            "application/zip",
            "text/csv",
            "text/tab-separated-values",
        ],
    ),
    (
        "application/vnd.google-apps.presentation",
        &[
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.oasis.opendocument.presentation",
            "application/pdf",
            "text/plain",
            "image/jpeg",
            "image/png",
            "image/svg+xml",
        ],
    ),
    ("application/vnd.google-apps.drawing", &["image/png", "application/pdf", "image/jpeg", "image/svg+xml"]),
];

/// True for the Google Workspace types an import exports.
pub fn is_exportable_workspace(mime: &str) -> bool {
    WORKSPACE_EXPORTS.iter().any(|(kind, _)| *kind == mime)
}

/// Checks the request's `export_formats` and per-file overrides and turns them into what is stored per file.
fn export_formats_of(
    request: Option<std::collections::HashMap<String, String>>,
) -> ApiResult<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for (kind, target) in request.unwrap_or_default() {
        let full = if kind.contains('/') { kind.clone() } else { format!("application/vnd.google-apps.{kind}") };
        let Some((_, allowed)) = WORKSPACE_EXPORTS.iter().find(|(k, _)| *k == full) else {
            return Err(ApiError::field(
                "export_formats",
                format!("`{kind}` is not a Google Workspace type; use document, spreadsheet, presentation or drawing"),
            ));
        };
        if !allowed.contains(&target.as_str()) {
            return Err(ApiError::field("export_formats", format!("Drive cannot export {kind} files to `{target}`"))
                .with_details(ErrorDetails {
                    kind: Some(kind.clone()),
                    allowed: Some(allowed.iter().map(|a| (*a).to_owned()).collect()),
                    ..ErrorDetails::field("export_formats")
                }));
        }
        out.insert(full, Value::String(target));
    }
    Ok(out)
}

fn required_connection(raw: Option<&str>) -> ApiResult<ferry_core::ConnectionId> {
    let raw =
        raw.filter(|v| !v.is_empty()).ok_or_else(|| ApiError::field("connection_id", "connection_id is required"))?;
    parse_connection_id(raw)
}

#[utoipa::path(operation_id = "import_files", post, path = "/cloud-storage/import", tag = "jobs", description = "Import files as a background job; placeholder files are created at once.", request_body = ImportRequest, responses((status = 200, description = "Job created", body = ImportResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 413, description = "provider_metadata over 16 KiB, or the body over the limit", body = crate::error::ErrorBody)))]
async fn import(state: web::Data<AppState>, tenant: Tenant, body: web::Json<ImportRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let connection_id = required_connection(body.connection_id.as_deref())?;
    let files = body.files.unwrap_or_default();
    if files.is_empty() || files.len() > MAX_FILES_PER_JOB {
        return Err(ApiError::field("files", format!("files must hold between 1 and {MAX_FILES_PER_JOB} entries")));
    }
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    let mut items = Vec::with_capacity(files.len());
    for (index, file) in files.into_iter().enumerate() {
        let id = file
            .id
            .filter(|v| !is_blank(v))
            .ok_or_else(|| ApiError::field(&format!("files[{index}].id"), format!("files[{index}].id is required")))?;
        let name = file.name.filter(|v| !is_blank(v)).ok_or_else(|| {
            ApiError::field(&format!("files[{index}].name"), format!("files[{index}].name is required"))
        })?;
        bounded(&format!("files[{index}].id"), &id, MAX_DRIVE_ID_BYTES)?;
        bounded(&format!("files[{index}].name"), &name, MAX_FILE_NAME_BYTES)?;
        storable(&format!("files[{index}].id"), &id)?;
        storable(&format!("files[{index}].name"), &name)?;
        if let Some(mime) = file.mime_type.as_deref() {
            bounded(&format!("files[{index}].mime_type"), mime, MAX_MIME_TYPE_BYTES)?;
            storable(&format!("files[{index}].mime_type"), mime)?;
        }
        if !seen.insert(id.clone()) {
            duplicates.push(id.clone());
        }
        if let Some(target) = file.export_mime_type.as_deref()
            && !WORKSPACE_EXPORTS.iter().any(|(_, allowed)| allowed.contains(&target))
        {
            return Err(ApiError::field(
                &format!("files[{index}].export_mime_type"),
                format!("`{target}` is not a format Drive exports Workspace files to"),
            ));
        }
        items.push((id, name, file.mime_type, file.export_mime_type));
    }
    let request_formats = export_formats_of(body.export_formats)?;
    if !duplicates.is_empty() {
        return Err(ApiError::validation("Each Drive file may appear only once per import")
            .with_details(ErrorDetails { duplicate_ids: Some(duplicates), ..ErrorDetails::field("files") }));
    }
    let folder_id = match (body.folder_id.as_deref(), body.collection_id.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field("collection_id", "send folder_id or its older name collection_id, not both"));
        }
        (Some(raw), None) | (None, Some(raw)) if !raw.is_empty() => {
            let id = crate::routes::folders::parse_folder_id(raw, "folder_id")?;
            tenant.db().get_folder(id).await?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, "The destination folder does not exist")
                    .with_details(ErrorDetails::field("folder_id"))
            })?;
            Some(id)
        }
        _ => None,
    };
    let tags = normalise_tags(body.tags.unwrap_or_default())?;
    if let Some(metadata) = &body.provider_metadata {
        if !metadata.is_object() {
            return Err(ApiError::field("provider_metadata", "provider_metadata must be a JSON object"));
        }
        let size = serde_json::to_vec(metadata).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_PROVIDER_METADATA_BYTES {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "provider_metadata is {size} bytes as compact JSON; at most {MAX_PROVIDER_METADATA_BYTES} bytes \
                     (16 KiB) are stored per job. Keep large data on your side and send a reference"
                ),
            )
            .with_details(ErrorDetails {
                size_bytes: Some(size as u64),
                max_bytes: Some(MAX_PROVIDER_METADATA_BYTES as u64),
                ..ErrorDetails::field("provider_metadata")
            }));
        }
    }
    active_connection(&tenant, connection_id).await?;

    let job_id = JobId::new();
    let mut formats: Vec<(FileId, Value)> = Vec::new();
    let new_items: Vec<NewImportItem> = items
        .into_iter()
        .map(|(drive_file_id, name, mime_type, export_mime_type)| {
            let item_id = ItemId::new();
            let command = ferry_messages::ImportItem {
                job_id: job_id.0.to_string(),
                item_id: item_id.0.to_string(),
                tenant_id: tenant.id().0.to_string(),
                traceparent: String::new(),
            }
            .encode_to_vec();
            let file_id = FileId::new();
            let mut chosen = request_formats.clone();
            if let Some(target) = export_mime_type {
                chosen.insert("*".to_owned(), Value::String(target));
            }
            if !chosen.is_empty() {
                formats.push((file_id, Value::Object(chosen)));
            }
            NewImportItem { item_id, file_id, drive_file_id, name, mime_type, command }
        })
        .collect();
    let image_ids: Vec<String> = new_items.iter().map(|item| item.file_id.to_string()).collect();
    let total = new_items.len();
    // The job's transaction is a span of its own; its trace context is stored with the outbox rows.
    let transaction = tracing::info_span!("db.create_import_job", %job_id, files = total);
    let traceparent = ferry_telemetry::traceparent_of(&transaction);
    tenant
        .db()
        .create_import_job(
            NewImportJob {
                job_id,
                tenant_id: tenant.id(),
                connection_id,
                tags,
                folder_id,
                provider_metadata: body.provider_metadata,
                items: new_items,
                command_name: state.import_command.to_owned(),
                traceparent,
            },
            &formats,
        )
        .instrument(transaction)
        .await?;
    mark_used(&tenant, connection_id).await;
    tracing::info!(%job_id, files = total, "import job created");
    Ok(HttpResponse::Ok().json(ImportResponse {
        image_ids,
        job_id: job_id.to_string(),
        status: "pending",
        total_files: total,
        is_async: true,
        message: format!("Importing {total} file{}", if total == 1 { "" } else { "s" }),
    }))
}

pub fn normalise_tags(tags: Vec<Tag>) -> ApiResult<Vec<String>> {
    // The limit is on the list as sent (the document's `maxItems`), before duplicates are dropped.
    if tags.len() > MAX_TAGS {
        return Err(ApiError::field("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for Tag(tag) in tags {
        // Limits as the document states them: at most 100 characters, at least one that is not ASCII whitespace
        // (which is trimmed).
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(ApiError::field("tags", format!("each tag must be at most {MAX_TAG_CHARS} characters")));
        }
        storable("tags", &tag)?;
        let tag = tag.trim_matches(|c: char| c.is_ascii_whitespace()).to_owned();
        if tag.is_empty() {
            return Err(ApiError::field("tags", "a tag must not be empty or blank"));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::field("tags", format!("at most {MAX_TAGS} tags")));
    }
    Ok(out)
}

#[utoipa::path(operation_id = "export_files", post, path = "/cloud-storage/export", tag = "jobs", description = "Export stored files to Drive as a background job.", request_body = ExportRequest, responses((status = 200, description = "Job created", body = ExportResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 409, description = "Conflict", body = crate::error::ErrorBody), (status = 502, description = "Provider error", body = crate::error::ErrorBody), (status = 504, description = "The cloud provider did not answer in time (PROVIDER_TIMEOUT)", body = crate::error::ErrorBody)))]
async fn export(state: web::Data<AppState>, tenant: Tenant, body: web::Json<ExportRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let connection_id = required_connection(body.connection_id.as_deref())?;
    let raw_ids = body.image_ids.unwrap_or_default();
    if raw_ids.is_empty() || raw_ids.len() > MAX_FILES_PER_JOB {
        return Err(ApiError::field("image_ids", format!("image_ids must hold between 1 and {MAX_FILES_PER_JOB} ids")));
    }
    let mut ids = Vec::with_capacity(raw_ids.len());
    for ImageId(raw) in &raw_ids {
        let id =
            FileId::parse(raw).map_err(|_| ApiError::field("image_ids", format!("`{raw}` is not a valid image id")))?;
        if ids.contains(&id) {
            return Err(ApiError::field("image_ids", format!("`{raw}` appears more than once")));
        }
        ids.push(id);
    }
    for (field, value) in [("folder_id", &body.folder_id), ("folder_name", &body.folder_name)] {
        storable(field, value.as_deref().unwrap_or_default())?;
    }
    let folder_id = body.folder_id.filter(|v| !v.trim().is_empty());
    let folder_name = body.folder_name.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if folder_name.as_ref().is_some_and(|n| n.len() > 255) {
        return Err(ApiError::field("folder_name", "folder_name must be at most 255 characters"));
    }
    active_connection(&tenant, connection_id).await?;

    let stored = tenant.db().get_files(&ids).await?;
    let missing: Vec<String> =
        ids.iter().filter(|id| !stored.iter().any(|f| f.id == id.0)).map(ToString::to_string).collect();
    if !missing.is_empty() {
        return Err(ApiError::new(ErrorCode::NotFound, "Some images do not exist")
            .with_details(ErrorDetails { missing_ids: Some(missing), ..ErrorDetails::field("image_ids") }));
    }
    let not_ready: Vec<String> =
        stored.iter().filter(|f| f.status != FileStatus::Ready).map(|f| f.file_id().to_string()).collect();
    if !not_ready.is_empty() {
        return Err(ApiError::new(ErrorCode::Conflict, "Some images have no content yet (still importing or failed)")
            .with_details(ErrorDetails { not_ready_ids: Some(not_ready), ..ErrorDetails::field("image_ids") }));
    }

    if let Some(folder) = folder_id.as_deref() {
        let drive = &state.drive;
        let found =
            with_drive_token(&state, connection_id, |token| async move { drive.get_file(&token, folder).await }).await;
        match found {
            Ok(file) if file.is_folder() && !file.trashed => {}
            Ok(_) => return Err(ApiError::field("folder_id", "folder_id names a Drive item that is not a folder")),
            Err(err) if err.code == ErrorCode::NotFound => {
                return Err(ApiError::field("folder_id", "folder_id does not exist in the connected drive"));
            }
            Err(err) => return Err(err),
        }
    }

    let job_id = JobId::new();
    let by_id: std::collections::HashMap<uuid::Uuid, &ferry_db::files::StoredFile> =
        stored.iter().map(|f| (f.id, f)).collect();
    let mut items = Vec::with_capacity(ids.len());
    for id in &ids {
        let file = by_id.get(&id.0).ok_or_else(|| ApiError::internal("export", &"validated file vanished"))?;
        let item_id = ItemId::new();
        let command = ferry_messages::ExportItem {
            job_id: job_id.0.to_string(),
            item_id: item_id.0.to_string(),
            tenant_id: tenant.id().0.to_string(),
            traceparent: String::new(),
        }
        .encode_to_vec();
        items.push(NewExportItem {
            item_id,
            file_id: *id,
            name: file.name.clone(),
            mime_type: file.mime_type.clone(),
            command,
        });
    }
    let transaction = tracing::info_span!("db.create_export_job", %job_id, files = ids.len());
    let traceparent = ferry_telemetry::traceparent_of(&transaction);
    tenant
        .db()
        .create_export_job(NewExportJob {
            job_id,
            connection_id,
            target_folder_id: folder_id,
            target_folder_name: folder_name,
            items,
            command_name: state.export_command.to_owned(),
            traceparent,
        })
        .instrument(transaction)
        .await?;
    mark_used(&tenant, connection_id).await;
    tracing::info!(%job_id, files = ids.len(), "export job created");
    Ok(HttpResponse::Ok().json(ExportResponse {
        cloud_file_ids: None,
        job_id: job_id.to_string(),
        job_status: "pending",
        is_async: true,
        message: "Export job created".to_owned(),
    }))
}

#[utoipa::path(operation_id = "get_job", get, path = "/cloud-storage/jobs/{job_id}", tag = "jobs", description = "A job's status and counts.", params(("job_id" = String, Path, pattern = "^job_[0-9a-f]{32}$", example = "job_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")), responses((status = 200, description = "The job", body = JobResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn get_job(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let job_id = path_id(JobId::parse(&path), "Job")?;
    // One query: the job, its provider and an export's Drive ids (status polling is the hottest read).
    let found = tenant.db().job_status(job_id).await?.ok_or_else(|| ApiError::not_found("Job"))?;
    let provider = found.provider.unwrap_or_else(|| "google_drive".to_owned());
    let mut view = JobView::new(&found.job, &provider)?;
    if let Some(exported) = found.exported_drive_ids {
        view.cloud_file_ids = Some(found.job.status.is_terminal().then_some(exported));
    }
    Ok(HttpResponse::Ok().json(JobResponse { job: view }))
}
