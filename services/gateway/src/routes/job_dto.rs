//! The job endpoints' bodies (import, export, get, list, cancel, events): what the handlers return and what the
//! OpenAPI document shows. Both job modules build their answers from here, so neither imports the other.

use ferry_core::{ConnectionId, FileId, ItemStatus, JobId, JobKind};
use ferry_db::TenantDb;
use ferry_db::jobs::{Job, JobItem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::routes::timestamp;

/// A job as every job endpoint shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobView {
    #[schema(pattern = "^job_[0-9a-f]{32}$", example = "job_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")]
    pub job_id: String,
    /// `import`, `export`, or `sync` (a library sync run: its transfers).
    #[serde(rename = "type")]
    #[schema(rename = "type", value_type = String, pattern = "^(import|export|sync)$")]
    pub kind: String,
    /// pending | in_progress | completed | partial | failed | cancelled
    #[schema(pattern = "^(pending|in_progress|completed|partial|failed|cancelled)$")]
    pub status: &'static str,
    #[schema(format = Uuid)]
    pub connection_id: String,
    pub provider: String,
    pub total_files: i32,
    pub completed_files: i32,
    pub failed_files: i32,
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// Exports only (absent on imports): the Drive ids of the uploaded files once the job finished, null before.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub cloud_file_ids: Option<Option<Vec<String>>>,
}

impl JobView {
    /// The job without `cloud_file_ids` (see [`full_job_view`]).
    pub fn new(job: &Job, provider: &str) -> ApiResult<Self> {
        Ok(JobView {
            job_id: JobId(job.id).to_string(),
            kind: job.kind.as_str().to_owned(),
            status: job.status.api_name(),
            connection_id: job.connection_id.to_string(),
            provider: provider.to_owned(),
            total_files: job.total_files,
            completed_files: job.completed_files,
            failed_files: job.failed_files,
            error: job.error.clone(),
            created_at: timestamp(job.created_at),
            updated_at: timestamp(job.updated_at),
            completed_at: job.completed_at.map(timestamp),
            cloud_file_ids: None,
        })
    }
}

/// The job object of every job endpoint, with `cloud_file_ids` filled for finished exports.
pub async fn full_job_view(db: &TenantDb, job: &Job, provider: &str) -> ApiResult<JobView> {
    let mut view = JobView::new(job, provider)?;
    if job.kind == JobKind::Export {
        let finished = job.status.is_terminal();
        view.cloud_file_ids = Some(if finished { Some(db.exported_drive_ids(job.job_id()).await?) } else { None });
    }
    Ok(view)
}

/// The provider of the job's connection (connections are never deleted, only deactivated).
pub async fn provider_of(db: &TenantDb, job: &Job) -> ApiResult<String> {
    Ok(db
        .get_connection(ConnectionId(job.connection_id))
        .await?
        .map(|c| c.provider)
        .unwrap_or_else(|| "google_drive".to_owned()))
}

/// `{"job": ...}`: one job (also the data of each server-sent event).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobResponse {
    pub job: JobView,
}

/// One page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub items: Vec<JobView>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl From<crate::routes::Page<JobView>> for JobList {
    fn from(page: crate::routes::Page<JobView>) -> Self {
        JobList {
            items: page.items,
            total_count: page.total_count,
            limit: page.limit,
            offset: page.offset,
            has_more: page.has_more,
        }
    }
}

/// What an import answers at once; the files are filled as the job runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResponse {
    /// Placeholder files, filled as the job runs.
    #[schema(inline = false, value_type = Vec<String>)]
    pub image_ids: Vec<String>,
    #[schema(pattern = "^job_[0-9a-f]{32}$")]
    pub job_id: String,
    /// Always `pending`.
    pub status: &'static str,
    pub total_files: usize,
    /// Always true.
    pub is_async: bool,
    pub message: String,
}

/// What an export answers at once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportResponse {
    /// Always null here; the job's `cloud_file_ids` holds them once it finished.
    #[schema(value_type = Option<Vec<String>>)]
    pub cloud_file_ids: Option<Vec<String>>,
    #[schema(pattern = "^job_[0-9a-f]{32}$")]
    pub job_id: String,
    /// Always `pending`.
    pub job_status: &'static str,
    /// Always true.
    pub is_async: bool,
    pub message: String,
}

/// What a cancel did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelResponse {
    pub job: JobView,
    /// Pending files cancelled by this request.
    pub cancelled_files: i64,
    /// Files already in transfer, which finish normally.
    pub running_files: i32,
    pub message: String,
}

/// The public word of an item status: the same vocabulary as jobs (`running` → `in_progress`,
/// `succeeded` → `completed`).
pub fn item_status_word(status: ItemStatus) -> &'static str {
    match status {
        ItemStatus::Pending => "pending",
        ItemStatus::Running => "in_progress",
        ItemStatus::Succeeded => "completed",
        ItemStatus::Failed => "failed",
        ItemStatus::Cancelled => "cancelled",
    }
}

/// One file of a job. `image_id` is the stored file (filled by an import, read by an export);
/// `drive_file_id` is the Drive file read (import) or created (export, once uploaded).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobItemView {
    #[schema(pattern = "^item_[0-9a-f]{32}$")]
    pub item_id: String,
    pub position: i32,
    pub name: String,
    pub mime_type: Option<String>,
    /// pending | in_progress | completed | failed | cancelled
    #[schema(pattern = "^(pending|in_progress|completed|failed|cancelled)$")]
    pub status: &'static str,
    #[schema(pattern = "^img_[0-9a-f]{32}$")]
    pub image_id: String,
    pub drive_file_id: Option<String>,
    /// Set on finished (and retried pending) items that failed: a stable snake_case code.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub attempts: i32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

impl JobItemView {
    pub fn new(job: &Job, item: &JobItem) -> ApiResult<Self> {
        let status = item.status;
        let is_export = job.kind == JobKind::Export;
        let settled = status.is_terminal() || status == ItemStatus::Pending;
        Ok(JobItemView {
            item_id: item.item_id().to_string(),
            position: item.position,
            name: item.name.clone(),
            mime_type: item.mime_type.clone(),
            status: item_status_word(status),
            image_id: FileId(item.file_id).to_string(),
            drive_file_id: if is_export && status != ItemStatus::Succeeded { None } else { item.drive_file_id.clone() },
            error_code: if settled { item.error_code.clone() } else { None },
            error_message: if settled { item.error_message.clone() } else { None },
            attempts: item.attempts,
            created_at: timestamp(item.created_at),
            updated_at: timestamp(item.updated_at),
            completed_at: item.completed_at.map(timestamp),
        })
    }
}

/// One page of a job's items, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobItemList {
    #[schema(pattern = "^job_[0-9a-f]{32}$")]
    pub job_id: String,
    pub items: Vec<JobItemView>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

impl JobItemList {
    pub fn new(job_id: JobId, page: crate::routes::Page<JobItemView>) -> Self {
        JobItemList {
            job_id: job_id.to_string(),
            items: page.items,
            total_count: page.total_count,
            limit: page.limit,
            offset: page.offset,
            has_more: page.has_more,
        }
    }
}

/// One Drive file to import.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportFile {
    /// The Drive file id (at most 256 bytes).
    #[schema(required = true, value_type = String, min_length = 1, max_length = 256, pattern = r"^[^\u0000]*[^\u0000 \t\n\f\r][^\u0000]*$")]
    pub id: Option<String>,
    /// The name to store it under (at most 1024 bytes).
    #[schema(required = true, value_type = String, min_length = 1, max_length = 1024, pattern = r"^[^\u0000]*[^\u0000 \t\n\f\r][^\u0000]*$")]
    pub name: Option<String>,
    #[schema(max_length = 255, pattern = r"^[^\u0000]*$")]
    pub mime_type: Option<String>,
    /// Informational (any number); the size Drive reports is the one used.
    #[allow(dead_code)]
    pub size_bytes: Option<f64>,
    /// For a Google Workspace file: the format to export it to (overrides `export_formats` and the default).
    #[schema(example = "application/pdf")]
    pub export_mime_type: Option<String>,
}

/// Imports Drive files into the store as a background job.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportRequest {
    /// An active connection of the caller.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub connection_id: Option<String>,
    /// 1 to 1000 files; each Drive id at most once (a repeated id is a 400 listing `duplicate_ids`).
    #[schema(required = true, value_type = Vec<ImportFile>, min_items = 1, max_items = 1000)]
    pub files: Option<Vec<ImportFile>>,
    /// Deprecated; accepted and ignored.
    #[allow(dead_code)]
    pub auto_describe: Option<bool>,
    /// At most 50 tags.
    #[schema(max_items = 50)]
    pub tags: Option<Vec<Tag>>,
    /// An existing folder of the caller's store (404 otherwise); empty or null means none.
    #[schema(pattern = r"^$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub folder_id: Option<String>,
    /// Older clients' name for `folder_id` (also `col_…`); send one of the two, not both.
    #[schema(
        pattern = r"^$|^(col_)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        deprecated
    )]
    pub collection_id: Option<String>,
    /// Kept with the job and shown on each imported file; at most 16 KiB as compact JSON (413 beyond).
    #[schema(value_type = Option<Object>)]
    pub provider_metadata: Option<serde_json::Value>,
    /// Export formats for Google Workspace files by type (`document`, `spreadsheet`, `presentation`, `drawing`,
    /// or the full `application/vnd.google-apps.*` type) → a MIME type Drive can export that type to. Defaults:
    /// docx, xlsx, pptx, png.
    pub export_formats: Option<std::collections::HashMap<String, String>>,
}

/// Exports stored files to Drive as a background job.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExportRequest {
    /// An active connection of the caller.
    #[schema(required = true, value_type = String, format = Uuid)]
    pub connection_id: Option<String>,
    /// 1 to 1000 distinct ready files of the caller (`img_` ids; a repeated id is a 400).
    #[schema(required = true, value_type = Vec<ImageId>, min_items = 1, max_items = 1000)]
    pub image_ids: Option<Vec<ImageId>>,
    /// An existing Drive folder (400 if it does not exist).
    #[schema(pattern = r"^[^\u0000]*$")]
    pub folder_id: Option<String>,
    /// A new folder created once for the job (inside `folder_id` when both are given); at most 255 bytes.
    #[schema(max_length = 255, pattern = r"^[^\u0000]*$")]
    pub folder_name: Option<String>,
}

/// One server-sent event of a job's `/events` stream, as the wire carries it (`id:`, `event:` and `data:` lines).
#[derive(Debug, Clone, PartialEq, ToSchema)]
pub struct JobEvent {
    /// Counts the events of this stream from 1.
    #[schema(pattern = "^[0-9]+$")]
    pub id: String,
    /// `progress` on every change, then one `end`; `error` when progress cannot be read (then the stream ends).
    #[schema(pattern = "^(progress|end|error)$")]
    pub event: &'static str,
    /// JSON text: `{"job": ...}` (a `JobResponse`) for `progress` and `end`, an `ErrorBody` for `error`.
    pub data: String,
}

impl JobEvent {
    pub fn new<T: Serialize>(id: u64, event: &'static str, data: &T) -> Self {
        let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
        JobEvent { id: id.to_string(), event, data }
    }

    /// The event as `text/event-stream` text.
    pub fn frame(&self) -> String {
        format!("id: {}\nevent: {}\ndata: {}\n\n", self.id, self.event, self.data)
    }
}

/// A stored file's id, as a request names it (checked with `FileId::parse`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(pattern = "^img_[0-9a-f]{32}$", example = "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")]
pub struct ImageId(pub String);

/// A tag: at most 100 characters, not blank (surrounding ASCII whitespace is trimmed; duplicates are dropped).
/// Checked by `normalise_tags`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(pattern = r"^[^\u0000]*[^\u0000 \t\n\f\r][^\u0000]*$", max_length = 100, example = "invoices")]
pub struct Tag(pub String);
