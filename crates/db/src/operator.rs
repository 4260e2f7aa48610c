//! Jobs as an operator sees them, across tenants (`ferryctl jobs list|watch`, worker metrics): the system
//! view, never used to answer an API request.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ferry_core::{ItemId, ItemStatus, JobId, JobStatus};
use uuid::Uuid;

use crate::jobs::Job;
use crate::schema::{files, job_items, jobs, tenants};
use crate::words::Word;
use crate::{Db, DbError};

/// A job with its tenant's name.
#[derive(Debug, Clone)]
pub struct JobOverview {
    pub job: Job,
    pub tenant_name: String,
}

/// Where a job stands, in files and bytes.
#[derive(Debug, Clone)]
pub struct JobProgress {
    pub job: Job,
    /// Bytes of the files transferred so far.
    pub bytes_done: i64,
    /// Bytes of all the job's files, when every size is known (exports; imports learn sizes as they go).
    pub bytes_total: Option<i64>,
}

/// A file of a job that failed, with the reason recorded on it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct FailedItem {
    pub item_id: Uuid,
    pub position: i32,
    pub name: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl Db {
    /// The newest jobs of every tenant, optionally only those with one of the stored `statuses`.
    pub async fn list_recent_jobs(&self, statuses: &[JobStatus], limit: i64) -> Result<Vec<JobOverview>, DbError> {
        let mut conn = self.conn().await?;
        let mut query = jobs::table.inner_join(tenants::table.on(tenants::id.eq(jobs::tenant_id))).into_boxed();
        if !statuses.is_empty() {
            query = query.filter(jobs::status.eq_any(statuses.iter().map(JobStatus::as_str).collect::<Vec<_>>()));
        }
        let rows: Vec<(Job, String)> = query
            .order((jobs::created_at.desc(), jobs::id.desc()))
            .limit(limit)
            .select((Job::as_select(), tenants::name))
            .load(&mut conn)
            .await?;
        Ok(rows.into_iter().map(|(job, tenant_name)| JobOverview { job, tenant_name }).collect())
    }

    /// The job (of any tenant) with its byte counts, or `None` if there is no such job.
    pub async fn job_progress(&self, job_id: JobId) -> Result<Option<JobProgress>, DbError> {
        let mut conn = self.conn().await?;
        let Some(job) = jobs::table.find(job_id.0).select(Job::as_select()).first(&mut conn).await.optional()? else {
            return Ok(None);
        };
        let sizes: Vec<(Word<ItemStatus>, Option<i64>)> = job_items::table
            .inner_join(files::table.on(files::id.eq(job_items::file_id)))
            .filter(job_items::job_id.eq(job_id.0))
            .select((job_items::status, files::size_bytes))
            .load(&mut conn)
            .await?;
        let bytes_done =
            sizes.iter().filter(|(status, _)| status.0 == ItemStatus::Succeeded).filter_map(|(_, size)| *size).sum();
        let bytes_total = sizes.iter().map(|(_, size)| *size).sum::<Option<i64>>();
        Ok(Some(JobProgress { job, bytes_done, bytes_total }))
    }

    /// The job's failed files in order.
    pub async fn failed_job_items(&self, job_id: JobId) -> Result<Vec<FailedItem>, DbError> {
        let mut conn = self.conn().await?;
        Ok(job_items::table
            .filter(job_items::job_id.eq(job_id.0))
            .filter(job_items::status.eq(ItemStatus::Failed.as_str()))
            .order(job_items::position.asc())
            .select((
                job_items::id,
                job_items::position,
                job_items::name,
                job_items::error_code,
                job_items::error_message,
            ))
            .load(&mut conn)
            .await?)
    }

    /// Kind, status, creation and completion time of the job `item_id` belongs to (for the job-duration metric
    /// once an item finished its job).
    pub async fn job_timing_of_item(
        &self,
        item_id: ItemId,
    ) -> Result<Option<(String, String, DateTime<Utc>, Option<DateTime<Utc>>)>, DbError> {
        let mut conn = self.conn().await?;
        Ok(job_items::table
            .inner_join(jobs::table.on(jobs::id.eq(job_items::job_id)))
            .filter(job_items::id.eq(item_id.0))
            .select((jobs::kind, jobs::status, jobs::created_at, jobs::completed_at))
            .first(&mut conn)
            .await
            .optional()?)
    }
}
