//! Google Picker sessions: an opaque id the browser holds instead of a token, stored as a hash, bound to a
//! tenant and a connection, and expiring.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ferry_core::ConnectionId;
use uuid::Uuid;

use crate::schema::{connections, picker_sessions};
use crate::{Db, DbError, TenantDb};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = picker_sessions)]
pub struct PickerSession {
    pub session_hash: String,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Db {
    /// Moves a session's expiry (tests use it to simulate the passage of time).
    pub async fn set_picker_session_expiry(
        &self,
        session_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let updated = diesel::update(picker_sessions::table.find(session_hash))
            .set(picker_sessions::expires_at.eq(expires_at))
            .execute(&mut conn)
            .await?;
        Ok(updated == 1)
    }
}

impl TenantDb {
    /// Stores a new session (and forgets sessions that expired more than a day ago).
    pub async fn create_picker_session(
        &self,
        session_hash: &str,
        connection_id: ConnectionId,
        expires_at: DateTime<Utc>,
    ) -> Result<PickerSession, DbError> {
        let mut conn = self.conn().await?;
        diesel::delete(
            picker_sessions::table.filter(picker_sessions::expires_at.lt(Utc::now() - chrono::Duration::days(1))),
        )
        .execute(&mut conn)
        .await?;
        Ok(diesel::insert_into(picker_sessions::table)
            .values((
                picker_sessions::session_hash.eq(session_hash),
                picker_sessions::tenant_id.eq(self.tenant.0),
                picker_sessions::connection_id.eq(connection_id.0),
                picker_sessions::expires_at.eq(expires_at),
            ))
            .returning(PickerSession::as_returning())
            .get_result(&mut conn)
            .await?)
    }

    /// The tenant's unexpired session with this hash whose connection is still active; anything else is `None`.
    pub async fn find_picker_session(&self, session_hash: &str) -> Result<Option<PickerSession>, DbError> {
        let mut conn = self.conn().await?;
        Ok(picker_sessions::table
            .inner_join(connections::table.on(connections::id.eq(picker_sessions::connection_id)))
            .filter(picker_sessions::session_hash.eq(session_hash))
            .filter(picker_sessions::tenant_id.eq(self.tenant.0))
            .filter(picker_sessions::expires_at.gt(Utc::now()))
            .filter(connections::is_active.eq(true))
            .filter(connections::tenant_id.eq(self.tenant.0))
            .select(PickerSession::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }
}
