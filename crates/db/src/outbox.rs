//! The transactional outbox: commands written with their job, published to the broker by a relay.

use std::future::Future;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::schema::outbox;
use crate::{Db, DbError};

/// The channel the insert trigger notifies (see the initial migration).
pub const OUTBOX_CHANNEL: &str = "ferry_outbox";

/// Writes store tasks into the outbox, in the caller's transaction.
pub(crate) async fn insert_store_tasks(
    conn: &mut AsyncPgConnection,
    tasks: Vec<ferry_messages::StoreTask>,
) -> Result<(), DbError> {
    use ferry_messages::Message;
    if tasks.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = tasks
        .iter()
        .map(|task| (outbox::command.eq(ferry_messages::STORE_TASK_COMMAND), outbox::payload.eq(task.encode_to_vec())))
        .collect();
    diesel::insert_into(outbox::table).values(rows).execute(conn).await?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub command: String,
    pub payload: Vec<u8>,
    /// The W3C traceparent of the transaction that wrote the row (absent when traces were off).
    pub traceparent: Option<String>,
}

/// Publishing failed: the rows stay unpublished and are retried.
#[derive(Debug, thiserror::Error)]
pub enum RelayError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("publish failed: {0}")]
    Publish(#[source] E),
}

impl<E: std::error::Error + 'static> From<diesel::result::Error> for RelayError<E> {
    fn from(err: diesel::result::Error) -> Self {
        RelayError::Db(DbError::from(err))
    }
}

/// What became of one row handed to the relay's publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// The broker confirmed it: mark it published.
    Published,
    /// It can never be published as it is: set it aside with this reason, so the rows behind it flow.
    Park(String),
    /// Not confirmed this time: leave it for a later batch.
    Retry,
}

/// What one relay batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayedRows {
    pub published: usize,
    pub parked: usize,
    pub retry: usize,
}

impl Db {
    /// Claims up to `limit` unpublished, unparked rows (locked with SKIP LOCKED so several relays never take the
    /// same ones), hands them to `publish`, which answers one [`RowOutcome`] per row in order, and in the same
    /// transaction marks the confirmed ones published and parks the unpublishable ones. A crash between the
    /// broker's confirm and the commit publishes the rows again: consumers are idempotent, so that is a
    /// harmless duplicate, never a loss.
    pub async fn relay_outbox_rows<F, Fut>(&self, limit: i64, publish: F) -> Result<RelayedRows, DbError>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut + Send,
        Fut: Future<Output = Vec<RowOutcome>> + Send,
    {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let rows: Vec<OutboxRow> = outbox::table
                .filter(outbox::published_at.is_null())
                .filter(outbox::parked_at.is_null())
                .order(outbox::id.asc())
                .limit(limit)
                .for_update()
                .skip_locked()
                .select(OutboxRow::as_select())
                .load(conn)
                .await?;
            if rows.is_empty() {
                return Ok(RelayedRows::default());
            }
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            let outcomes = publish(rows).await;
            let mut relayed = RelayedRows::default();
            let mut published = Vec::new();
            for (id, outcome) in ids.iter().zip(outcomes.into_iter().chain(std::iter::repeat(RowOutcome::Retry))) {
                match outcome {
                    RowOutcome::Published => published.push(*id),
                    RowOutcome::Park(reason) => {
                        diesel::update(outbox::table.find(id))
                            .set((
                                outbox::parked_at.eq(crate::clock::db_now_nullable()),
                                outbox::park_reason.eq(reason),
                            ))
                            .execute(conn)
                            .await?;
                        relayed.parked += 1;
                    }
                    RowOutcome::Retry => relayed.retry += 1,
                }
            }
            if !published.is_empty() {
                diesel::update(outbox::table.filter(outbox::id.eq_any(&published)))
                    .set(outbox::published_at.eq(crate::clock::db_now_nullable()))
                    .execute(conn)
                    .await?;
            }
            relayed.published = published.len();
            Ok(relayed)
        })
        .await
    }

    /// All-or-nothing relay of up to `limit` rows: marked published only when `publish` succeeded for the whole
    /// batch (tools and tests that drain the outbox use it). Returns how many rows were published.
    pub async fn relay_outbox_batch<F, Fut, E>(&self, limit: i64, publish: F) -> Result<usize, RelayError<E>>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut + Send,
        Fut: Future<Output = Result<(), E>> + Send,
        E: std::error::Error + Send + 'static,
    {
        let mut failure = None;
        let relayed = self
            .relay_outbox_rows(limit, async |rows| {
                let count = rows.len();
                match publish(rows).await {
                    Ok(()) => vec![RowOutcome::Published; count],
                    Err(err) => {
                        failure = Some(err);
                        vec![RowOutcome::Retry; count]
                    }
                }
            })
            .await?;
        match failure {
            Some(err) => Err(RelayError::Publish(err)),
            None => Ok(relayed.published),
        }
    }

    /// Unpublished (and unparked) rows and the age of the oldest, in seconds (for metrics and tests).
    pub async fn outbox_backlog(&self) -> Result<(i64, f64), DbError> {
        let mut conn = self.conn().await?;
        let waiting = outbox::table.filter(outbox::published_at.is_null()).filter(outbox::parked_at.is_null());
        let pending: i64 = waiting.count().get_result(&mut conn).await?;
        let oldest: Option<chrono::DateTime<chrono::Utc>> =
            waiting.select(diesel::dsl::min(outbox::created_at)).first(&mut conn).await?;
        let age = oldest.map(|t| (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0);
        Ok((pending, age))
    }

    /// Parked rows with their reasons, oldest first (for operators and tests).
    pub async fn parked_outbox_rows(&self, limit: i64) -> Result<Vec<(i64, String, String)>, DbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<(i64, String, Option<String>)> = outbox::table
            .filter(outbox::parked_at.is_not_null())
            .order(outbox::id.asc())
            .limit(limit)
            .select((outbox::id, outbox::command, outbox::park_reason))
            .load(&mut conn)
            .await?;
        Ok(rows.into_iter().map(|(id, command, reason)| (id, command, reason.unwrap_or_default())).collect())
    }
}

/// A dedicated connection LISTENing on the outbox channel.
pub struct OutboxListener(crate::listen::Listener);

impl OutboxListener {
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        crate::listen::Listener::connect(url, OUTBOX_CHANNEL).await.map(OutboxListener)
    }

    /// Waits until a notification arrives or `timeout` passes. Returns `Err` when the connection died
    /// (the caller reconnects).
    pub async fn wait(&mut self, timeout: Duration) -> Result<bool, DbError> {
        Ok(self.0.next(timeout).await?.is_some())
    }
}
