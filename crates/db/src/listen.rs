//! A dedicated connection LISTENing on one Postgres notification channel: the outbox relay and the gateway's job
//! event streams are woken by NOTIFY instead of polling.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::StreamExt;

use crate::DbError;

/// One connection, outside the pool, subscribed to `channel`.
pub struct Listener {
    conn: AsyncPgConnection,
    channel: &'static str,
}

impl Listener {
    /// Opens the connection and subscribes. `channel` is one of this crate's constants, never user input.
    pub async fn connect(url: &str, channel: &'static str) -> Result<Self, DbError> {
        let mut conn = AsyncPgConnection::establish(url)
            .await
            .map_err(|err| DbError::Unavailable(format!("cannot open a listener on {channel}: {err}")))?;
        diesel::sql_query(format!("LISTEN {channel}")).execute(&mut conn).await?;
        Ok(Listener { conn, channel })
    }

    /// The next notification's payload, or `None` when `timeout` passed first. `Err` when the connection died:
    /// the caller reconnects, and should assume it missed notifications meanwhile.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<String>, DbError> {
        let mut stream = std::pin::pin!(self.conn.notifications_stream());
        match tokio::time::timeout(timeout, stream.next()).await {
            Err(_) => Ok(None),
            Ok(Some(Ok(notification))) => Ok(Some(notification.payload)),
            Ok(Some(Err(err))) => Err(DbError::from(err)),
            Ok(None) => Err(DbError::Unavailable(format!("the listener on {} was closed", self.channel))),
        }
    }
}
