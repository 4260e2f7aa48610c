//! Reading and steering existing jobs: the list, per-file items, cancel, and a server-sent event stream of
//! progress.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use ferry_core::{ItemStatus, JobId, JobKind, JobStatus};
use ferry_db::job_control::{CancelOutcome, JobFilter};
use serde::Deserialize;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};
use crate::routes::job_dto::{
    CancelResponse, JobEvent, JobItemList, JobItemView, JobList, JobResponse, full_job_view, item_status_word,
    provider_of,
};
use crate::routes::{Page, paging, path_id};

/// A comment line is sent after this much silence so proxies keep the stream open.
const EVENT_KEEPALIVE: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cloud-storage/jobs", web::get().to(list))
        .route("/cloud-storage/jobs/{job_id}/items", web::get().to(items))
        .route("/cloud-storage/jobs/{job_id}/cancel", web::post().to(cancel))
        .route("/cloud-storage/jobs/{job_id}/events", web::get().to(events));
}

fn item_status_from_word(word: &str) -> Option<ItemStatus> {
    ItemStatus::ALL.iter().copied().find(|s| item_status_word(*s) == word || s.as_str() == word)
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

#[utoipa::path(operation_id = "list_jobs", get, path = "/cloud-storage/jobs", tag = "jobs", description = "List jobs, newest first.", params(("status" = Option<String>, Query, pattern = "^( *(pending|in_progress|completed|partial|failed|cancelled) *(, *(pending|in_progress|completed|partial|failed|cancelled) *)*)?$", description = "public status words, comma-separated"), ("type" = Option<String>, Query, pattern = "^(import|export|sync)?$", description = "import, export or sync"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "default 20"), ("offset" = Option<i64>, Query, minimum = 0, description = "default 0")), responses((status = 200, description = "Jobs", body = JobList), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody)))]
async fn list(tenant: Tenant, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
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
                .map_err(|_| ApiError::field("type", format!("`{raw}` is not a job type; use import, export or sync")))?
                .as_str(),
        ),
    };
    let filter = JobFilter { statuses: statuses.as_deref(), kind, limit, offset };
    let (rows, total) = tenant.db().list_jobs(&filter).await?;
    let mut providers: HashMap<uuid::Uuid, String> = HashMap::new();
    let mut views = Vec::with_capacity(rows.len());
    for job in &rows {
        let provider = match providers.get(&job.connection_id) {
            Some(provider) => provider.clone(),
            None => {
                let provider = provider_of(tenant.db(), job).await?;
                providers.insert(job.connection_id, provider.clone());
                provider
            }
        };
        views.push(full_job_view(tenant.db(), job, &provider).await?);
    }
    Ok(HttpResponse::Ok().json(JobList::from(Page::new(views, total, limit, offset))))
}

#[derive(Debug, Deserialize)]
pub struct ItemsQuery {
    /// One item status word (`pending`, `in_progress`, `completed`, `failed`, `cancelled`).
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(operation_id = "list_job_items", get, path = "/cloud-storage/jobs/{job_id}/items", tag = "jobs", description = "The job's files with their status, error and resulting ids.", params(("job_id" = String, Path, pattern = "^job_[0-9a-f]{32}$", example = "job_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d"), ("status" = Option<String>, Query, pattern = "^(pending|in_progress|completed|failed|cancelled|running|succeeded)?$", description = "one item status"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "default 100"), ("offset" = Option<i64>, Query, minimum = 0, description = "default 0")), responses((status = 200, description = "Items", body = JobItemList), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn items(tenant: Tenant, path: web::Path<String>, query: web::Query<ItemsQuery>) -> ApiResult<HttpResponse> {
    let job_id = path_id(JobId::parse(&path), "Job")?;
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
    let job = tenant.db().get_job(job_id).await?.ok_or_else(|| ApiError::not_found("Job"))?;
    let (rows, total) = tenant.db().page_job_items(job_id, status.map(|s| s.as_str()), limit, offset).await?;
    let views = rows.iter().map(|item| JobItemView::new(&job, item)).collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(JobItemList::new(job_id, Page::new(views, total, limit, offset))))
}

#[utoipa::path(operation_id = "cancel_job", post, path = "/cloud-storage/jobs/{job_id}/cancel", tag = "jobs", description = "Cancel the pending files; files already in transfer finish.", params(("job_id" = String, Path, pattern = "^job_[0-9a-f]{32}$", example = "job_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")), responses((status = 200, description = "Cancelled", body = CancelResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody), (status = 409, description = "Conflict", body = crate::error::ErrorBody)))]
async fn cancel(tenant: Tenant, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let job_id = path_id(JobId::parse(&path), "Job")?;
    match tenant.db().cancel_job(job_id).await? {
        CancelOutcome::NotFound => Err(ApiError::not_found("Job")),
        CancelOutcome::AlreadyFinished(job) => {
            let status = job.status;
            Err(ApiError::new(ErrorCode::Conflict, "The job has already finished; there is nothing to cancel")
                .with_details(ErrorDetails {
                    job_id: Some(job_id.to_string()),
                    status: Some(status.api_name().to_owned()),
                    ..ErrorDetails::default()
                }))
        }
        CancelOutcome::Cancelled { job, cancelled } => {
            tracing::info!(%job_id, cancelled, "job cancelled");
            let provider = provider_of(tenant.db(), &job).await?;
            let running = job.total_files - job.completed_files - job.failed_files - job.cancelled_files;
            Ok(HttpResponse::Ok().json(CancelResponse {
                job: full_job_view(tenant.db(), &job, &provider).await?,
                cancelled_files: cancelled,
                running_files: running.max(0),
                message: if running > 0 {
                    format!("Cancelled {cancelled} pending file(s); {running} file(s) already in transfer will finish")
                } else {
                    format!("Cancelled {cancelled} pending file(s)")
                },
            }))
        }
    }
}

fn sse_frame<T: serde::Serialize>(id: u64, event: &'static str, data: &T) -> Bytes {
    Bytes::from(JobEvent::new(id, event, data).frame())
}

/// Streams `progress` events (the job object) whenever the job changes, then one `end` event with the final
/// job and closes. A client that reconnects simply gets the current state first.
#[utoipa::path(operation_id = "job_events", get, path = "/cloud-storage/jobs/{job_id}/events", tag = "jobs", description = "Server-sent events: `progress` with `{\"job\": ...}` on every change, then one `end` event, then the stream closes.", params(("job_id" = String, Path, pattern = "^job_[0-9a-f]{32}$", example = "job_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")), responses((status = 200, description = "Event stream: one `JobEvent` per event", content_type = "text/event-stream", body = JobEvent), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "Not found (also another tenant's object)", body = crate::error::ErrorBody)))]
async fn events(
    tenant: Tenant,
    path: web::Path<String>,
    state: web::Data<crate::state::AppState>,
) -> ApiResult<HttpResponse> {
    let job_id = path_id(JobId::parse(&path), "Job")?;
    // Subscribed before the first read, so a change between the two is not missed.
    let mut changes = state.job_changes.subscribe();
    let poll = state.settings.gateway.event_poll_interval();
    let job = tenant.db().get_job(job_id).await?.ok_or_else(|| ApiError::not_found("Job"))?;
    let provider = provider_of(tenant.db(), &job).await?;
    let (mut sender, receiver) = futures::channel::mpsc::channel::<Result<Bytes, actix_web::Error>>(4);
    actix_web::rt::spawn(async move {
        use futures::SinkExt;
        let mut sequence = 0u64;
        let mut last: Option<JobResponse> = None;
        let mut quiet = Duration::ZERO;
        loop {
            let job = match tenant.db().get_job(job_id).await {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(%job_id, error = %err, "job event stream cannot read the job");
                    let error = ApiError::new(
                        ErrorCode::ServiceUnavailable,
                        "Progress cannot be read right now; reconnect shortly",
                    );
                    let _ = sender.send(Ok(sse_frame(sequence + 1, "error", &error.body()))).await;
                    break;
                }
            };
            let view = match full_job_view(tenant.db(), &job, &provider).await {
                Ok(view) => JobResponse { job: view },
                Err(_) => break,
            };
            let terminal = job.status.is_terminal();
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
            // Read again when this job changed (or anything may have), after the safety poll, or to send a
            // keep-alive, whichever comes first.
            let waited = tokio::time::Instant::now();
            let limit = poll.min(EVENT_KEEPALIVE.saturating_sub(quiet)).max(Duration::from_millis(10));
            let deadline = waited + limit;
            loop {
                use crate::job_changes::JobChange;
                match tokio::time::timeout_at(deadline, changes.recv()).await {
                    Err(_) => break,
                    Ok(Ok(JobChange::Job(changed))) if changed != job_id => continue,
                    // This job, anything, or the stream fell behind (lagged): read again.
                    Ok(Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                }
            }
            quiet += waited.elapsed();
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(receiver))
}
