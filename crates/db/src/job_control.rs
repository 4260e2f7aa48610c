//! What the API does with existing jobs: list them, page through their items, cancel what has not started,
//! and read the Drive ids an export produced.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ferry_core::{FileStatus, ItemStatus, JobCounts, JobId, JobStatus};
use uuid::Uuid;

use crate::jobs::{Job, JobItem};
use crate::schema::{files, job_items, jobs};
use crate::{DbError, TenantDb};

/// Which jobs to list. Status words are the stored ones.
#[derive(Debug, Clone, Default)]
pub struct JobFilter<'a> {
    pub statuses: Option<&'a [&'a str]>,
    pub kind: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

/// What a cancel request did.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// Pending items were cancelled (`cancelled` of them, possibly 0 when every item was already running).
    Cancelled {
        job: Job,
        cancelled: i64,
    },
    /// The job had already finished: nothing changed.
    AlreadyFinished(Job),
    NotFound,
}

/// The error code and message recorded on items (and placeholder files) stopped by a cancel.
pub const CANCELLED_CODE: &str = "cancelled";
pub const CANCELLED_MESSAGE: &str = "The job was cancelled before this file was transferred";

/// Stored job status words matching a public status word (`in_progress`, `partial`, or a stored word).
pub fn stored_status_words(public: &str) -> Option<&'static str> {
    JobStatus::from_api_name(public).ok().map(|s| s.as_str())
}

impl TenantDb {
    /// The tenant's jobs, newest first, with the total matching the filter.
    pub async fn list_jobs(&self, filter: &JobFilter<'_>) -> Result<(Vec<Job>, i64), DbError> {
        let mut conn = self.conn().await?;
        let query = || {
            let mut query = jobs::table.filter(jobs::tenant_id.eq(self.tenant.0)).into_boxed();
            if let Some(statuses) = filter.statuses {
                query = query.filter(jobs::status.eq_any(statuses.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()));
            }
            if let Some(kind) = filter.kind {
                query = query.filter(jobs::kind.eq(kind.to_owned()));
            }
            query
        };
        let total: i64 = query().count().get_result(&mut conn).await?;
        let rows = query()
            .order((jobs::created_at.desc(), jobs::id.desc()))
            .limit(filter.limit)
            .offset(filter.offset)
            .select(Job::as_select())
            .load(&mut conn)
            .await?;
        Ok((rows, total))
    }

    /// One page of a job's items in request order, with the job's item total. The job must be the tenant's.
    pub async fn page_job_items(
        &self,
        job_id: JobId,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<JobItem>, i64), DbError> {
        let mut conn = self.conn().await?;
        let query = || {
            let mut query = job_items::table
                .filter(job_items::job_id.eq(job_id.0))
                .filter(job_items::tenant_id.eq(self.tenant.0))
                .into_boxed();
            if let Some(status) = status {
                query = query.filter(job_items::status.eq(status.to_owned()));
            }
            query
        };
        let total: i64 = query().count().get_result(&mut conn).await?;
        let rows = query()
            .order(job_items::position.asc())
            .limit(limit)
            .offset(offset)
            .select(JobItem::as_select())
            .load(&mut conn)
            .await?;
        Ok((rows, total))
    }

    /// The Drive ids of an export job's uploaded files, in request order.
    pub async fn exported_drive_ids(&self, job_id: JobId) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn().await?;
        let ids: Vec<Option<String>> = job_items::table
            .filter(job_items::job_id.eq(job_id.0))
            .filter(job_items::tenant_id.eq(self.tenant.0))
            .filter(job_items::status.eq(ItemStatus::Succeeded.as_str()))
            .order(job_items::position.asc())
            .select(job_items::drive_file_id)
            .load(&mut conn)
            .await?;
        Ok(ids.into_iter().flatten().collect())
    }

    /// Cancels every pending item of the job and counts them on it. Running items are left to finish (their
    /// worker settles them as usual); workers skip cancelled items because only pending or lease-expired running
    /// items can be claimed. An import's placeholder files of cancelled items are marked failed (`cancelled`).
    ///
    /// Items are updated before the job row, in the same order as a claim, so the two never deadlock.
    pub async fn cancel_job(&self, job_id: JobId) -> Result<CancelOutcome, DbError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let Some(job) = jobs::table
                .filter(jobs::id.eq(job_id.0))
                .filter(jobs::tenant_id.eq(self.tenant.0))
                .select(Job::as_select())
                .first(conn)
                .await
                .optional()?
            else {
                return Ok(CancelOutcome::NotFound);
            };
            if job.status.is_terminal() {
                return Ok(CancelOutcome::AlreadyFinished(job));
            }
            let now = Utc::now();
            let file_ids: Vec<Uuid> = diesel::update(
                job_items::table
                    .filter(job_items::job_id.eq(job_id.0))
                    .filter(job_items::status.eq(ItemStatus::Pending.as_str())),
            )
            .set((
                job_items::status.eq(ItemStatus::Cancelled.as_str()),
                job_items::error_code.eq(CANCELLED_CODE),
                job_items::error_message.eq(CANCELLED_MESSAGE),
                job_items::lease_owner.eq(None::<String>),
                job_items::lease_expires_at.eq(None::<chrono::DateTime<Utc>>),
                job_items::completed_at.eq(now),
                job_items::updated_at.eq(now),
            ))
            .returning(job_items::file_id)
            .get_results(conn)
            .await?;
            let cancelled = file_ids.len() as i64;
            if cancelled == 0 {
                // Only running items are left: they finish, and the flag ends the job `cancelled` after them.
                let job = diesel::update(jobs::table.find(job_id.0))
                    .set((jobs::cancel_requested_at.eq(now), jobs::updated_at.eq(now)))
                    .returning(Job::as_returning())
                    .get_result(conn)
                    .await?;
                return Ok(CancelOutcome::Cancelled { job, cancelled });
            }
            if job.kind != ferry_core::JobKind::Export {
                diesel::update(
                    files::table
                        .filter(files::id.eq_any(&file_ids))
                        .filter(files::status.eq(FileStatus::Pending.as_str())),
                )
                .set((
                    files::status.eq(FileStatus::Failed.as_str()),
                    files::error_code.eq(CANCELLED_CODE),
                    files::error_message.eq(CANCELLED_MESSAGE),
                    files::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            }
            let added = i32::try_from(cancelled).map_err(|_| DbError::Corrupt("too many items".into()))?;
            let (total, completed, failed, cancelled_files, started_at): (
                i32,
                i32,
                i32,
                i32,
                Option<chrono::DateTime<Utc>>,
            ) = diesel::update(jobs::table.find(job_id.0))
                .set((
                    jobs::cancelled_files.eq(jobs::cancelled_files + added),
                    jobs::cancel_requested_at.eq(now),
                    jobs::updated_at.eq(now),
                ))
                .returning((
                    jobs::total_files,
                    jobs::completed_files,
                    jobs::failed_files,
                    jobs::cancelled_files,
                    jobs::started_at,
                ))
                .get_result(conn)
                .await?;
            let counts = JobCounts { total, completed, failed, cancelled: cancelled_files };
            let status = if counts.finished() < total {
                counts.status(started_at.is_some())
            } else {
                counts.status_after_cancel()
            };
            let completed_at = status.is_terminal().then_some(now);
            let job = diesel::update(jobs::table.find(job_id.0))
                .set((jobs::status.eq(status.as_str()), jobs::completed_at.eq(completed_at)))
                .returning(Job::as_returning())
                .get_result(conn)
                .await?;
            if status.is_terminal() {
                // A cancelled sync run ends here too, so its library can sync again.
                crate::sync::finish_run(conn, job_id.0).await?;
            }
            Ok(CancelOutcome::Cancelled { job, cancelled })
        })
        .await
    }
}
