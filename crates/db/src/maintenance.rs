//! Housekeeping an operator runs (`ferryctl prune`): rows that have done their job and only grow the tables.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Double, Timestamptz};
use diesel_async::RunQueryDsl;

use crate::schema::{oauth_states, outbox, picker_sessions};
use crate::{Db, DbError};

/// Rows removed by [`Db::prune`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    pub outbox_rows: usize,
    pub oauth_states: usize,
    pub picker_sessions: usize,
}

impl Db {
    /// Deletes outbox rows published more than `retention` ago, OAuth states that expired (or were consumed)
    /// more than `retention` ago, and picker sessions that expired more than `retention` ago. Unpublished
    /// outbox rows and live states or sessions are never touched. Times are the database's clock.
    pub async fn prune(&self, retention: Duration) -> Result<Pruned, DbError> {
        // Capped so the interval stays representable; a century is "keep everything" in practice.
        let retention = retention.as_secs().min(100 * 365 * 86_400) as f64;
        let cutoff =
            || diesel::dsl::sql::<Timestamptz>("now() - make_interval(secs => ").bind::<Double, _>(retention).sql(")");
        let mut conn = self.conn().await?;
        let outbox_rows = diesel::delete(outbox::table)
            .filter(outbox::published_at.is_not_null())
            .filter(outbox::published_at.lt(cutoff().nullable()))
            .execute(&mut conn)
            .await?;
        let oauth_states = diesel::delete(oauth_states::table)
            .filter(oauth_states::expires_at.lt(cutoff()).or(oauth_states::consumed_at.lt(cutoff().nullable())))
            .execute(&mut conn)
            .await?;
        let picker_sessions = diesel::delete(picker_sessions::table)
            .filter(picker_sessions::expires_at.lt(cutoff()))
            .execute(&mut conn)
            .await?;
        Ok(Pruned { outbox_rows, oauth_states, picker_sessions })
    }
}
