//! Reading and steering existing jobs: the list, per-file items, cancel, and a server-sent event stream of
//! progress.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use ferry_core::{ConnectionId, FileId, ItemStatus, JobId, JobKind, JobStatus};
use ferry_db::job_control::{CancelOutcome, JobFilter};
use ferry_db::jobs::{Job, JobItem};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::jobs::job_view;
use crate::routes::{Page, paging, timestamp};
use crate::state::AppState;

/// How often the event stream reads the job again.
const EVENT_POLL: Duration = Duration::from_millis(500);
/// A comment line is sent after this much silence so proxies keep the stream open.
const EVENT_KEEPALIVE: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cloud-storage/jobs", web::get().to(list))
        .route("/cloud-storage/jobs/{job_id}/items", web::get().to(items))
        .route("/cloud-storage/jobs/{job_id}/cancel", web::post().to(cancel))
        .route("/cloud-storage/jobs/{job_id}/events", web::get().to(events));
}

pub fn parse_job_id(raw: &str) -> ApiResult<JobId> {
    JobId::parse(raw).map_err(|_| ApiError::field("job_id", format!("`{raw}` is not a valid job id")))
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

fn item_status_from_word(word: &str) -> Option<ItemStatus> {
    ItemStatus::ALL.iter().copied().find(|s| item_status_word(*s) == word || s.as_str() == word)
}

/// The job object of every job endpoint, with `cloud_file_ids` filled for finished exports.
pub async fn full_job_view(state: &AppState, job: &Job, provider: &str) -> ApiResult<Value> {
    let mut view = job_view(job, provider)?;
    if job.kind == JobKind::Export.as_str() {
        let finished = job.status().map(|s| s.is_terminal()).unwrap_or(false);
        let ids = if finished {
            json!(state.db.exported_drive_ids(ferry_core::TenantId(job.tenant_id), job.job_id()).await?)
        } else {
            Value::Null
        };
        view["cloud_file_ids"] = ids;
    }
    Ok(view)
}

pub async fn provider_of(state: &AppState, job: &Job) -> ApiResult<String> {
    Ok(state
        .db
        .get_connection(ferry_core::TenantId(job.tenant_id), ConnectionId(job.connection_id))
        .await?
        .map(|c| c.provider)
        .unwrap_or_else(|| "google_drive".to_owned()))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Public status words (`pending`, `in_progress`, `completed`, `partial`, `failed`, `cancelled`),
    /// one or several separated by commas.
    pub status: Option<String>,
    /// `import` or `export`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(operation_id = "list_jobs", get, path = "/cloud-storage/jobs", tag = "jobs", description = "List jobs, newest first.", params(("status" = Option<String>, Query, description = "public status words, comma-separated"), ("type" = Option<String>, Query, description = "import or export"), ("limit" = Option<i64>, Query, description = "1-100, default 20"), ("offset" = Option<i64>, Query)), responses((status = 200, description = "Jobs", body = crate::openapi::JobList), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody)))]
async fn list(state: web::Data<AppState>, tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    let (limit, offset) = paging(query.limit, query.offset, 20, 100)?;
    let statuses: Option<Vec<&'static str>> = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.split(',')
                .map(|word| {
                    JobStatus::from_api_name(word.trim()).map(|s| s.as_str()).map_err(|_| {
                        ApiError::field(
                            "status",
                            format!(
                                "`{}` is not a job status; use pending, in_progress, completed, partial, failed or cancelled",
                                word.trim()
                            ),
                        )
                    })
                })
                .collect::<ApiResult<_>>()?,
        ),
    };
    let kind = match query.kind.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<JobKind>()
                .map_err(|_| ApiError::field("type", format!("`{raw}` is not a job type; use import or export")))?
                .as_str(),
        ),
    };
    let filter = JobFilter { statuses: statuses.as_deref(), kind, limit, offset };
    let (rows, total) = state.db.list_jobs(tenant.0, &filter).await?;
    let mut providers: HashMap<uuid::Uuid, String> = HashMap::new();
    let mut views = Vec::with_capacity(rows.len());
    for job in &rows {
        let provider = match providers.get(&job.connection_id) {
            Some(provider) => provider.clone(),
            None => {
                let provider = provider_of(&state, job).await?;
                providers.insert(job.connection_id, provider.clone());
                provider
            }
        };
        views.push(full_job_view(&state, job, &provider).await?);
    }
    Ok(HttpResponse::Ok().json(Page::new(views, total, limit, offset)))
}

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    /// One item status word (`pending`, `in_progress`, `completed`, `failed`, `cancelled`).
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// One file of a job. `image_id` is the stored file (filled by an import, read by an export);
/// `drive_file_id` is the Drive file read (import) or created (export, once uploaded).
pub fn item_view(job: &Job, item: &JobItem) -> ApiResult<Value> {
    let status = item.status().map_err(|err| ApiError::internal("item status", &err))?;
    let is_export = job.kind == JobKind::Export.as_str();
    let drive_file_id = if is_export && status != ItemStatus::Succeeded { None } else { item.drive_file_id.clone() };
    Ok(json!({
        "item_id": item.item_id().to_string(),
        "position": item.position,
        "name": item.name,
        "mime_type": item.mime_type,
        "status": item_status_word(status),
        "image_id": FileId(item.file_id).to_string(),
        "drive_file_id": drive_file_id,
        "error_code": if status.is_terminal() || status == ItemStatus::Pending { item.error_code.clone() } else { None },
        "error_message": if status.is_terminal() || status == ItemStatus::Pending { item.error_message.clone() } else { None },
        "attempts": item.attempts,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "completed_at": item.completed_at.map(timestamp),
    }))
}

#[utoipa::path(operation_id = "list_job_items", get, path = "/cloud-storage/jobs/{job_id}/items", tag = "jobs", description = "The job's files with their status, error and resulting ids.", params(("job_id" = String, Path), ("status" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1-1000, default 100"), ("offset" = Option<i64>, Query)), responses((status = 200, description = "Items", body = crate::openapi::JobItemList), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody)))]
async fn items(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    query: web::Query<ItemsQuery>,
) -> ApiResult<HttpResponse> {
    let job_id = parse_job_id(&path)?;
    let (limit, offset) = paging(query.limit, query.offset, 100, 1000)?;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(word) => Some(item_status_from_word(word).ok_or_else(|| {
            ApiError::field(
                "status",
                format!("`{word}` is not an item status; use pending, in_progress, completed, failed or cancelled"),
            )
        })?),
    };
    let job = state.db.get_job(tenant.0, job_id).await?.ok_or_else(|| ApiError::not_found("Job"))?;
    let (rows, total) = state.db.page_job_items(tenant.0, job_id, status.map(|s| s.as_str()), limit, offset).await?;
    let views = rows.iter().map(|item| item_view(&job, item)).collect::<ApiResult<Vec<_>>>()?;
    let page = Page::new(views, total, limit, offset);
    let mut body = serde_json::to_value(&page).map_err(|err| ApiError::internal("items page", &err))?;
    body["job_id"] = json!(job_id.to_string());
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(operation_id = "cancel_job", post, path = "/cloud-storage/jobs/{job_id}/cancel", tag = "jobs", description = "Cancel the pending files; files already in transfer finish.", params(("job_id" = String, Path)), responses((status = 200, description = "Cancelled", body = crate::openapi::CancelResponse), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody), (status = 409, description = "Conflict", body = crate::openapi::ErrorBody)))]
async fn cancel(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let job_id = parse_job_id(&path)?;
    match state.db.cancel_job(tenant.0, job_id).await? {
        CancelOutcome::NotFound => Err(ApiError::not_found("Job")),
        CancelOutcome::AlreadyFinished(job) => {
            let status = job.status().map_err(|err| ApiError::internal("job status", &err))?;
            Err(ApiError::new(ErrorCode::Conflict, "The job has already finished; there is nothing to cancel")
                .with_details(json!({ "job_id": job_id.to_string(), "status": status.api_name() })))
        }
        CancelOutcome::Cancelled { job, cancelled } => {
            tracing::info!(%job_id, cancelled, "job cancelled");
            let provider = provider_of(&state, &job).await?;
            let running = job.total_files - job.completed_files - job.failed_files - job.cancelled_files;
            Ok(HttpResponse::Ok().json(json!({
                "job": full_job_view(&state, &job, &provider).await?,
                "cancelled_files": cancelled,
                "running_files": running.max(0),
                "message": if running > 0 {
                    format!("Cancelled {cancelled} pending file(s); {running} file(s) already in transfer will finish")
                } else {
                    format!("Cancelled {cancelled} pending file(s)")
                },
            })))
        }
    }
}

fn sse_frame(id: u64, event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {data}\n\n"))
}

/// Streams `progress` events (the job object) whenever the job changes, then one `end` event with the final
/// job and closes. A client that reconnects simply gets the current state first.
#[utoipa::path(operation_id = "job_events", get, path = "/cloud-storage/jobs/{job_id}/events", tag = "jobs", description = "Server-sent events: `progress` with `{\"job\": ...}` on every change, then one `end` event, then the stream closes.", params(("job_id" = String, Path)), responses((status = 200, description = "Event stream", content_type = "text/event-stream", body = String), (status = 400, description = "Invalid request", body = crate::openapi::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::openapi::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::openapi::ErrorBody)))]
async fn events(state: web::Data<AppState>, tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let job_id = parse_job_id(&path)?;
    let job = state.db.get_job(tenant.0, job_id).await?.ok_or_else(|| ApiError::not_found("Job"))?;
    let provider = provider_of(&state, &job).await?;
    let (mut sender, receiver) = futures::channel::mpsc::channel::<Result<Bytes, actix_web::Error>>(4);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        use futures::SinkExt;
        let mut sequence = 0u64;
        let mut last: Option<Value> = None;
        let mut quiet = Duration::ZERO;
        loop {
            let job = match state.db.get_job(tenant.0, job_id).await {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(%job_id, error = %err, "job event stream cannot read the job");
                    let error = json!({ "error": { "code": "SERVICE_UNAVAILABLE", "message": "Progress cannot be read right now; reconnect shortly", "details": {} } });
                    let _ = sender.send(Ok(sse_frame(sequence + 1, "error", &error))).await;
                    break;
                }
            };
            let view = match full_job_view(&state, &job, &provider).await {
                Ok(view) => json!({ "job": view }),
                Err(_) => break,
            };
            let terminal = job.status().map(|s| s.is_terminal()).unwrap_or(true);
            if terminal {
                sequence += 1;
                let _ = sender.send(Ok(sse_frame(sequence, "end", &view))).await;
                break;
            }
            if last.as_ref() != Some(&view) {
                sequence += 1;
                if sender.send(Ok(sse_frame(sequence, "progress", &view))).await.is_err() {
                    break; // the client went away
                }
                last = Some(view);
                quiet = Duration::ZERO;
            } else if quiet >= EVENT_KEEPALIVE {
                if sender.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                    break;
                }
                quiet = Duration::ZERO;
            }
            tokio::time::sleep(EVENT_POLL).await;
            quiet += EVENT_POLL;
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(receiver))
}
