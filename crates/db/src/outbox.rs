//! The transactional outbox: commands written with their job, published to the broker by a relay.

use std::future::Future;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::StreamExt;

use crate::schema::outbox;
use crate::{Db, DbError};

/// The channel the insert trigger notifies (see the initial migration).
pub const OUTBOX_CHANNEL: &str = "ferry_outbox";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub command: String,
    pub payload: Vec<u8>,
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

impl Db {
    /// Claims up to `limit` unpublished rows (locked with SKIP LOCKED so several relays never take the same
    /// ones), hands them to `publish`, and marks them published in the same transaction only when `publish`
    /// succeeded. A crash between the broker's confirm and the commit publishes the rows again: consumers are
    /// idempotent, so that is a harmless duplicate, never a loss.
    pub async fn relay_outbox_batch<F, Fut, E>(&self, limit: i64, publish: F) -> Result<usize, RelayError<E>>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut + Send,
        Fut: Future<Output = Result<(), E>> + Send,
        E: std::error::Error + Send + 'static,
    {
        let mut conn = self.conn().await?;
        conn.transaction::<_, RelayError<E>, _>(async |conn| {
            let rows: Vec<OutboxRow> = outbox::table
                .filter(outbox::published_at.is_null())
                .order(outbox::id.asc())
                .limit(limit)
                .for_update()
                .skip_locked()
                .select(OutboxRow::as_select())
                .load(conn)
                .await
                .map_err(DbError::from)?;
            if rows.is_empty() {
                return Ok(0);
            }
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            publish(rows).await.map_err(RelayError::Publish)?;
            diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
                .set(outbox::published_at.eq(chrono::Utc::now()))
                .execute(conn)
                .await
                .map_err(DbError::from)?;
            Ok(ids.len())
        })
        .await
    }

    /// Unpublished rows and the age of the oldest, in seconds (for metrics and tests).
    pub async fn outbox_backlog(&self) -> Result<(i64, f64), DbError> {
        let mut conn = self.conn().await?;
        let pending: i64 = outbox::table.filter(outbox::published_at.is_null()).count().get_result(&mut conn).await?;
        let oldest: Option<chrono::DateTime<chrono::Utc>> = outbox::table
            .filter(outbox::published_at.is_null())
            .select(diesel::dsl::min(outbox::created_at))
            .first(&mut conn)
            .await?;
        let age = oldest.map(|t| (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0);
        Ok((pending, age))
    }
}

/// A dedicated connection LISTENing on the outbox channel.
pub struct OutboxListener {
    conn: AsyncPgConnection,
}

impl OutboxListener {
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let mut conn = AsyncPgConnection::establish(url)
            .await
            .map_err(|err| DbError::Unavailable(format!("cannot open the outbox listener: {err}")))?;
        diesel::sql_query(format!("LISTEN {OUTBOX_CHANNEL}")).execute(&mut conn).await?;
        Ok(OutboxListener { conn })
    }

    /// Waits until a notification arrives or `timeout` passes. Returns `Err` when the connection died
    /// (the caller reconnects).
    pub async fn wait(&mut self, timeout: Duration) -> Result<bool, DbError> {
        let mut stream = std::pin::pin!(self.conn.notifications_stream());
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => Ok(false),
            Ok(Some(Ok(_))) => Ok(true),
            Ok(Some(Err(err))) => Err(DbError::from(err)),
            Ok(None) => Err(DbError::Unavailable("outbox listener connection closed".into())),
        }
    }
}
