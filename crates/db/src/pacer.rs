//! The shared Drive pacing state, one row per Google user (`drive_pacers`). This module only stores it: the
//! policy (how slots are granted, how the rate is cut and recovers) is the caller's closure, run while the row is
//! locked, at the database's clock, so every process that calls Drive for one user draws from one timeline.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use ferry_core::ConnectionId;

use crate::{Db, DbError};

/// One Google user's pacing state, as stored.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct PacerRow {
    /// `provider:provider_user_id`.
    #[diesel(sql_type = Text)]
    pub drive_user: String,
    /// Requests per second granted now.
    #[diesel(sql_type = Double)]
    pub rate: f64,
    /// The rate at which the last refusal happened.
    #[diesel(sql_type = Nullable<Double>)]
    pub ceiling: Option<f64>,
    /// The first slot nobody has leased yet.
    #[diesel(sql_type = Timestamptz)]
    pub next_slot_at: DateTime<Utc>,
    /// No slot before this (Drive's `Retry-After`).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub blocked_until: Option<DateTime<Utc>>,
    /// When the rate last recovered.
    #[diesel(sql_type = Timestamptz)]
    pub adjusted_at: DateTime<Utc>,
    /// When the rate was last cut.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub cut_at: Option<DateTime<Utc>>,
    /// The start of the current measuring window.
    #[diesel(sql_type = Timestamptz)]
    pub window_started_at: DateTime<Utc>,
    /// Slots leased since `window_started_at`.
    #[diesel(sql_type = BigInt)]
    pub window_leased: i64,
    /// Refusals reported since `window_started_at`.
    #[diesel(sql_type = BigInt)]
    pub window_refused: i64,
    /// Slots leased less refusals, per second, over the last whole window.
    #[diesel(sql_type = Nullable<Double>)]
    pub observed_rate: Option<f64>,
    /// Refusals reported since the row was made.
    #[diesel(sql_type = BigInt)]
    pub refusals: i64,
    /// Slots leased since the row was made.
    #[diesel(sql_type = BigInt)]
    pub leased: i64,
}

const COLUMNS: &str = "p.drive_user, p.rate, p.ceiling, p.next_slot_at, p.blocked_until, p.adjusted_at, p.cut_at, \
    p.window_started_at, p.window_leased, p.window_refused, p.observed_rate, p.refusals, p.leased";

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(embed)]
    pacer: PacerRow,
    #[diesel(sql_type = Timestamptz)]
    db_now: DateTime<Utc>,
}

/// Whose pacer: the Google user behind a connection, or a user key already known.
#[derive(Debug, Clone, Copy)]
pub enum PacerKey<'a> {
    Connection(ConnectionId),
    DriveUser(&'a str),
}

impl Db {
    /// Locks the pacing row of the Google user `key` names (creating it at `initial_rate` on first use), runs
    /// `change` on it with the database's current time, stores the result and returns what `change` returned.
    /// One short transaction; concurrent callers for the same user queue on the row lock. `None` when `key` is a
    /// connection that does not exist.
    pub async fn change_drive_pacer<R: Send>(
        &self,
        key: PacerKey<'_>,
        initial_rate: f64,
        change: impl FnOnce(&mut PacerRow, DateTime<Utc>) -> R + Send,
    ) -> Result<Option<R>, DbError> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, DbError, _>(async |conn| {
            // Upsert-as-lock: the no-op update takes the row lock and returns the stored row.
            let select_user = match key {
                PacerKey::Connection(_) => "SELECT provider || ':' || provider_user_id FROM connections WHERE id = $1",
                PacerKey::DriveUser(_) => "SELECT $2",
            };
            let sql = format!(
                "INSERT INTO drive_pacers AS p (drive_user, rate, next_slot_at, adjusted_at, window_started_at) \
                 SELECT u.drive_user, $3, now(), now(), now() FROM ({select_user}) AS u(drive_user) \
                 ON CONFLICT (drive_user) DO UPDATE SET rate = p.rate \
                 RETURNING {COLUMNS}, now() AS db_now"
            );
            let (connection, user) = match key {
                PacerKey::Connection(id) => (id.0, String::new()),
                PacerKey::DriveUser(user) => (uuid::Uuid::nil(), user.to_owned()),
            };
            let locked: Option<LockedRow> = diesel::sql_query(sql)
                .bind::<SqlUuid, _>(connection)
                .bind::<Text, _>(user)
                .bind::<Double, _>(initial_rate)
                .get_result(conn)
                .await
                .map(Some)
                .or_else(|err| if err == diesel::result::Error::NotFound { Ok(None) } else { Err(err) })?;
            let Some(LockedRow { pacer: mut row, db_now }) = locked else {
                return Ok(None);
            };
            let drive_user = row.drive_user.clone();
            let answer = change(&mut row, db_now);
            diesel::sql_query(
                "UPDATE drive_pacers SET rate = $2, ceiling = $3, next_slot_at = $4, blocked_until = $5, \
                   adjusted_at = $6, cut_at = $7, refusals = $8, leased = $9, window_started_at = $10, \
                   window_leased = $11, window_refused = $12, observed_rate = $13 WHERE drive_user = $1",
            )
            .bind::<Text, _>(drive_user)
            .bind::<Double, _>(row.rate)
            .bind::<Nullable<Double>, _>(row.ceiling)
            .bind::<Timestamptz, _>(row.next_slot_at)
            .bind::<Nullable<Timestamptz>, _>(row.blocked_until)
            .bind::<Timestamptz, _>(row.adjusted_at)
            .bind::<Nullable<Timestamptz>, _>(row.cut_at)
            .bind::<BigInt, _>(row.refusals)
            .bind::<BigInt, _>(row.leased)
            .bind::<Timestamptz, _>(row.window_started_at)
            .bind::<BigInt, _>(row.window_leased)
            .bind::<BigInt, _>(row.window_refused)
            .bind::<Nullable<Double>, _>(row.observed_rate)
            .execute(conn)
            .await?;
            Ok(Some(answer))
        })
        .await
    }

    /// Every Google user's pacing row, busiest first (for operators and tests).
    pub async fn drive_pacers(&self) -> Result<Vec<PacerRow>, DbError> {
        let mut conn = self.conn().await?;
        Ok(diesel::sql_query(format!("SELECT {COLUMNS} FROM drive_pacers p ORDER BY leased DESC, drive_user"))
            .load(&mut conn)
            .await?)
    }

    /// The stored pacing row of one Google user (`provider:provider_user_id`), for operators and tests.
    pub async fn drive_pacer(&self, drive_user: &str) -> Result<Option<PacerRow>, DbError> {
        let mut conn = self.conn().await?;
        let rows: Vec<PacerRow> =
            diesel::sql_query(format!("SELECT {COLUMNS} FROM drive_pacers p WHERE drive_user = $1"))
                .bind::<Text, _>(drive_user)
                .load(&mut conn)
                .await?;
        Ok(rows.into_iter().next())
    }
}
