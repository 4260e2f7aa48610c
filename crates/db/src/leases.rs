//! Reliability repository functions: the reaper that hands out again items whose worker died (expired lease)
//! or whose message was lost (a `pending` item nobody touched for too long), giving items back at shutdown,
//! and requeueing a job's failed items for operators. Every re-enqueue writes its outbox row in the same
//! transaction that resets the item, so an item is never reset without a message on its way.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use ferry_core::{FileStatus, ItemId, ItemStatus, JobId, JobKind, JobStatus};
use uuid::Uuid;

use crate::schema::{files, job_items, jobs, outbox};
use crate::words::Word;
use crate::{Db, DbError};

/// An item being put back on the queue; what the caller needs to build its command payload.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RequeuedItem {
    #[diesel(sql_type = SqlUuid)]
    pub item_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub job_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub tenant_id: Uuid,
    #[diesel(sql_type = Text, deserialize_as = Word<ItemStatus>)]
    pub status: ItemStatus,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// What one reaper pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// Running items whose lease had expired, re-enqueued.
    pub expired_leases: usize,
    /// Pending items whose message had been lost, re-enqueued.
    pub stale_pending: usize,
    /// Items that had used up their attempts and were failed instead.
    pub exhausted: usize,
}

impl ReapReport {
    pub fn total(&self) -> usize {
        self.expired_leases + self.stale_pending + self.exhausted
    }
}

/// How the reaper looks for items and what it writes for them.
pub struct ReapParams<'a> {
    pub kind: JobKind,
    /// The outbox `command` column for this kind (the routing key workers consume).
    pub command: &'a str,
    /// A pending item untouched for longer than this may have lost its message.
    pub stale_pending: Duration,
    /// At most this many stale pending items are re-enqueued: the messages the caller could prove lost (see
    /// [`Db::estimate_lost_messages`]). A queue that is merely long holds every pending item's message, and
    /// re-enqueueing would only duplicate them.
    pub lost_messages: i64,
    /// Items claimed this many times are failed (`attempts_exhausted`) instead of re-enqueued, so an item that
    /// kills its worker every time cannot loop forever.
    pub max_attempts: i32,
    /// Items handled per pass.
    pub limit: i64,
}

impl Db {
    /// One reaper pass over `params.kind` items (a sync job's transfers are import items). Safe to run from many
    /// processes at once (`SKIP LOCKED`).
    pub async fn reap_items(
        &self,
        params: &ReapParams<'_>,
        encode: impl Fn(&RequeuedItem) -> Vec<u8> + Send + Sync,
    ) -> Result<ReapReport, DbError> {
        let mut conn = self.conn().await?;
        let stale_secs = params.stale_pending.as_secs_f64();
        let (report, exhausted) = conn
            .transaction::<_, DbError, _>(async |conn| {
                let mut found: Vec<RequeuedItem> = diesel::sql_query(
                    "SELECT i.id AS item_id, i.job_id, i.tenant_id, i.status, i.attempts \
                     FROM job_items i JOIN jobs j ON j.id = i.job_id \
                     WHERE (j.kind = $1 OR ($1 = 'import' AND j.kind = 'sync')) AND i.status = 'running' AND i.lease_expires_at < now() \
                     ORDER BY i.updated_at LIMIT $2 \
                     FOR UPDATE OF i SKIP LOCKED",
                )
                .bind::<Text, _>(params.kind.as_str())
                .bind::<BigInt, _>(params.limit)
                .load(conn)
                .await?;
                let lost = params.lost_messages;
                if lost > 0 {
                    let stale: Vec<RequeuedItem> = diesel::sql_query(
                        "SELECT i.id AS item_id, i.job_id, i.tenant_id, i.status, i.attempts \
                         FROM job_items i JOIN jobs j ON j.id = i.job_id \
                         WHERE (j.kind = $1 OR ($1 = 'import' AND j.kind = 'sync')) AND i.status = 'pending' \
                           AND i.updated_at < now() - make_interval(secs => $2) \
                         ORDER BY i.updated_at LIMIT $3 \
                         FOR UPDATE OF i SKIP LOCKED",
                    )
                    .bind::<Text, _>(params.kind.as_str())
                    .bind::<Double, _>(stale_secs)
                    .bind::<BigInt, _>(lost.min(params.limit))
                    .load(conn)
                    .await?;
                    found.extend(stale);
                }
                let mut report = ReapReport::default();
                let mut exhausted = Vec::new();
                let mut requeue = Vec::new();
                for item in found {
                    if item.attempts >= params.max_attempts {
                        exhausted.push(item);
                    } else {
                        if item.status == ItemStatus::Running {
                            report.expired_leases += 1;
                        } else {
                            report.stale_pending += 1;
                        }
                        requeue.push(item);
                    }
                }
                reset_and_enqueue(conn, &requeue, params.command, &encode).await?;
                Ok((report, exhausted))
            })
            .await?;
        let mut report = report;
        // Failing goes through the normal path (item, file and job counters in one transaction each), and only
        // if the item still has the attempt count seen here: one a worker claimed meanwhile is left alone.
        for item in exhausted {
            let message =
                format!("gave up after {} attempts (workers kept dying or the item kept failing)", item.attempts);
            let failed = self
                .fail_item_unclaimed(ItemId(item.item_id), Some(item.attempts), "attempts_exhausted", &message)
                .await?;
            if failed.applied {
                report.exhausted += 1;
            }
        }
        Ok(report)
    }

    /// How many messages of `kind` can be proven lost: pending items beyond the messages the broker holds for
    /// them (`queued`: ready in the work queue and its delay tiers) and the outbox rows not published yet. Zero
    /// while a backlog holds a message for every pending item.
    pub async fn estimate_lost_messages(&self, kind: JobKind, command: &str, queued: i64) -> Result<i64, DbError> {
        let mut conn = self.conn().await?;
        lost_messages(&mut conn, kind, command, queued).await
    }

    /// Gives back every item `worker_id` still holds (a worker shutting down past its deadline), so they can be
    /// claimed again at once instead of after their lease. Their messages are requeued by the broker when the
    /// worker's connection closes. Returns how many were released.
    pub async fn release_items_of_worker(&self, worker_id: &str) -> Result<usize, DbError> {
        let mut conn = self.conn().await?;
        Ok(diesel::update(
            job_items::table
                .filter(job_items::lease_owner.eq(worker_id))
                .filter(job_items::status.eq(ItemStatus::Running.as_str())),
        )
        .set((
            job_items::status.eq(ItemStatus::Pending.as_str()),
            job_items::lease_owner.eq(None::<String>),
            job_items::lease_expires_at.eq(None::<DateTime<Utc>>),
            job_items::error_code.eq("worker_shutdown"),
            job_items::error_message.eq("the worker stopped before finishing; the item will be retried"),
            job_items::updated_at.eq(crate::clock::db_now()),
        ))
        .execute(&mut conn)
        .await?)
    }

    /// Operator tool: puts a job's failed items back to `pending` with fresh attempts, takes them off the job's
    /// failed counter, reopens the job, and writes one outbox row per item, all in one transaction. Import
    /// placeholders go back to `pending` too. Returns the items requeued.
    pub async fn requeue_failed_items(
        &self,
        job_id: JobId,
        command: &str,
        encode: impl Fn(&RequeuedItem) -> Vec<u8> + Send + Sync,
    ) -> Result<Vec<RequeuedItem>, DbError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let failed: Vec<RequeuedItem> = diesel::sql_query(
                "SELECT id AS item_id, job_id, tenant_id, status, attempts FROM job_items \
                 WHERE job_id = $1 AND status = 'failed' ORDER BY position FOR UPDATE",
            )
            .bind::<SqlUuid, _>(job_id.0)
            .load(conn)
            .await?;
            if failed.is_empty() {
                return Ok(failed);
            }
            let ids: Vec<Uuid> = failed.iter().map(|item| item.item_id).collect();
            let now = Utc::now();
            let file_ids: Vec<Uuid> = diesel::update(job_items::table.filter(job_items::id.eq_any(&ids)))
                .set((
                    job_items::status.eq(ItemStatus::Pending.as_str()),
                    job_items::attempts.eq(0),
                    job_items::error_code.eq(None::<String>),
                    job_items::error_message.eq(None::<String>),
                    job_items::completed_at.eq(None::<DateTime<Utc>>),
                    job_items::updated_at.eq(now),
                ))
                .returning(job_items::file_id)
                .get_results(conn)
                .await?;
            diesel::update(
                files::table.filter(files::id.eq_any(&file_ids)).filter(files::status.eq(FileStatus::Failed.as_str())),
            )
            .set((
                files::status.eq(FileStatus::Pending.as_str()),
                files::error_code.eq(None::<String>),
                files::error_message.eq(None::<String>),
                files::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
            let count = i32::try_from(ids.len()).map_err(|_| DbError::Corrupt("too many items".into()))?;
            diesel::update(jobs::table.find(job_id.0))
                .set((
                    jobs::failed_files.eq(jobs::failed_files - count),
                    jobs::status.eq(JobStatus::Processing.as_str()),
                    jobs::completed_at.eq(None::<DateTime<Utc>>),
                    jobs::updated_at.eq(now),
                ))
                .execute(conn)
                .await?;
            let rows: Vec<_> =
                failed.iter().map(|item| (outbox::command.eq(command), outbox::payload.eq(encode(item)))).collect();
            diesel::insert_into(outbox::table).values(rows).execute(conn).await?;
            Ok(failed)
        })
        .await
    }

    /// The job's kind, for tools that need the command name (any tenant: operators only).
    pub async fn job_kind_any_tenant(&self, job_id: JobId) -> Result<Option<JobKind>, DbError> {
        let mut conn = self.conn().await?;
        let kind: Option<Word<JobKind>> =
            jobs::table.find(job_id.0).select(jobs::kind).first(&mut conn).await.optional()?;
        Ok(kind.map(|kind| kind.0))
    }

    /// Items of `job_id` per status (any tenant: for operators and the chaos checks).
    pub async fn item_status_counts(&self, job_id: JobId) -> Result<Vec<(ItemStatus, i64)>, DbError> {
        let mut conn = self.conn().await?;
        let counts: Vec<(Word<ItemStatus>, i64)> = job_items::table
            .filter(job_items::job_id.eq(job_id.0))
            .group_by(job_items::status)
            .select((job_items::status, diesel::dsl::count_star()))
            .load(&mut conn)
            .await?;
        Ok(counts.into_iter().map(|(status, count)| (status.0, count)).collect())
    }
}

/// See [`Db::estimate_lost_messages`].
async fn lost_messages(
    conn: &mut diesel_async::AsyncPgConnection,
    kind: JobKind,
    command: &str,
    queued: i64,
) -> Result<i64, DbError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let pending: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM job_items i JOIN jobs j ON j.id = i.job_id \
         WHERE (j.kind = $1 OR ($1 = 'import' AND j.kind = 'sync')) AND i.status = 'pending'",
    )
    .bind::<Text, _>(kind.as_str())
    .get_result(conn)
    .await?;
    let unpublished: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM outbox WHERE published_at IS NULL AND parked_at IS NULL AND command = $1",
    )
    .bind::<Text, _>(command)
    .get_result(conn)
    .await?;
    Ok((pending.count - unpublished.count - queued).max(0))
}

/// Puts items back to `pending` (no lease) and writes one outbox row each, in the caller's transaction.
async fn reset_and_enqueue(
    conn: &mut diesel_async::AsyncPgConnection,
    items: &[RequeuedItem],
    command: &str,
    encode: &(impl Fn(&RequeuedItem) -> Vec<u8> + Send + Sync),
) -> Result<(), DbError> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = items.iter().map(|item| item.item_id).collect();
    diesel::update(job_items::table.filter(job_items::id.eq_any(&ids)))
        .set((
            job_items::status.eq(ItemStatus::Pending.as_str()),
            job_items::lease_owner.eq(None::<String>),
            job_items::lease_expires_at.eq(None::<DateTime<Utc>>),
            job_items::updated_at.eq(crate::clock::db_now()),
        ))
        .execute(conn)
        .await?;
    let rows: Vec<_> =
        items.iter().map(|item| (outbox::command.eq(command), outbox::payload.eq(encode(item)))).collect();
    diesel::insert_into(outbox::table).values(rows).execute(conn).await?;
    Ok(())
}
