//! Connected cloud accounts and their sealed tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ferry_core::{ConnectionId, TenantId};
use uuid::Uuid;

use crate::schema::connections;
use crate::{Db, DbError, TenantDb};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = connections)]
pub struct Connection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider: String,
    pub provider_user_id: String,
    pub provider_email: Option<String>,
    pub provider_display_name: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub needs_reauth: bool,
    pub connected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The sealed tokens of a connection (opened by the caller, who holds the key).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = connections)]
pub struct SealedTokens {
    pub access_token_sealed: Option<String>,
    pub refresh_token_sealed: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub needs_reauth: bool,
}

#[derive(Debug, Clone)]
pub struct ConnectionUpsert<'a> {
    /// The id to use when the account is new (tokens are sealed for it beforehand).
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub provider: &'a str,
    pub provider_user_id: &'a str,
    pub provider_email: Option<&'a str>,
    pub provider_display_name: Option<&'a str>,
    pub access_token_sealed: &'a str,
    /// `None` keeps the refresh token already stored (providers send one only on first consent).
    pub refresh_token_sealed: Option<&'a str>,
    pub token_expires_at: DateTime<Utc>,
    pub scopes: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter<'a> {
    pub provider: Option<&'a str>,
    pub active_only: bool,
    pub limit: i64,
    pub offset: i64,
}

impl Db {
    /// Creates the connection, or, when this tenant already connected the same provider account, refreshes it
    /// in place (same id, active again). Returns the connection and whether it is new.
    pub async fn upsert_connection(&self, new: ConnectionUpsert<'_>) -> Result<(Connection, bool), DbError> {
        let mut conn = self.conn().await?;
        let now = Utc::now();
        let fresh_id = new.id.0;
        let mut is_new = false;
        let id: Uuid = diesel::insert_into(connections::table)
            .values((
                connections::id.eq(fresh_id),
                connections::tenant_id.eq(new.tenant_id.0),
                connections::provider.eq(new.provider),
                connections::provider_user_id.eq(new.provider_user_id),
                connections::provider_email.eq(new.provider_email),
                connections::provider_display_name.eq(new.provider_display_name),
                connections::access_token_sealed.eq(new.access_token_sealed),
                connections::refresh_token_sealed.eq(new.refresh_token_sealed),
                connections::token_expires_at.eq(new.token_expires_at),
                connections::scopes.eq(new.scopes),
            ))
            .on_conflict((connections::tenant_id, connections::provider, connections::provider_user_id))
            .do_update()
            .set((
                connections::provider_email.eq(new.provider_email),
                connections::provider_display_name.eq(new.provider_display_name),
                connections::access_token_sealed.eq(new.access_token_sealed),
                connections::refresh_token_sealed.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Text>,
                >(
                    "COALESCE(excluded.refresh_token_sealed, connections.refresh_token_sealed)",
                )),
                connections::token_expires_at.eq(new.token_expires_at),
                connections::scopes.eq(new.scopes),
                connections::is_active.eq(true),
                connections::needs_reauth.eq(false),
                connections::disconnected_at.eq(None::<DateTime<Utc>>),
                connections::connected_at.eq(now),
                connections::updated_at.eq(now),
            ))
            // xmax is 0 only for a freshly inserted row version, so it tells an insert from an update.
            .returning((connections::id, diesel::dsl::sql::<diesel::sql_types::Bool>("xmax = 0")))
            .get_result::<(Uuid, bool)>(&mut conn)
            .await
            .map(|(id, inserted)| {
                is_new = inserted;
                id
            })?;
        let row = connections::table.find(id).select(Connection::as_select()).first(&mut conn).await?;
        Ok((row, is_new))
    }

    pub async fn connection_tokens(&self, id: ConnectionId) -> Result<Option<SealedTokens>, DbError> {
        let mut conn = self.conn().await?;
        Ok(connections::table.find(id.0).select(SealedTokens::as_select()).first(&mut conn).await.optional()?)
    }

    /// Stores refreshed tokens. `refresh_token_sealed` of `None` keeps the stored one.
    pub async fn update_connection_tokens(
        &self,
        id: ConnectionId,
        access_token_sealed: &str,
        refresh_token_sealed: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        let target = connections::table.find(id.0);
        match refresh_token_sealed {
            Some(refresh) => {
                diesel::update(target)
                    .set((
                        connections::access_token_sealed.eq(access_token_sealed),
                        connections::refresh_token_sealed.eq(refresh),
                        connections::token_expires_at.eq(expires_at),
                        connections::updated_at.eq(Utc::now()),
                    ))
                    .execute(&mut conn)
                    .await?
            }
            None => {
                diesel::update(target)
                    .set((
                        connections::access_token_sealed.eq(access_token_sealed),
                        connections::token_expires_at.eq(expires_at),
                        connections::updated_at.eq(Utc::now()),
                    ))
                    .execute(&mut conn)
                    .await?
            }
        };
        Ok(())
    }

    /// The provider refused the refresh token: the user must connect again.
    pub async fn mark_connection_needs_reauth(&self, id: ConnectionId) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::update(connections::table.find(id.0))
            .set((connections::needs_reauth.eq(true), connections::updated_at.eq(Utc::now())))
            .execute(&mut conn)
            .await?;
        Ok(())
    }
}

impl TenantDb {
    /// The id of the tenant's connection to this provider account, if it was ever connected.
    pub async fn find_connection_id(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Option<ConnectionId>, DbError> {
        let mut conn = self.conn().await?;
        let found: Option<Uuid> = connections::table
            .filter(connections::tenant_id.eq(self.tenant.0))
            .filter(connections::provider.eq(provider))
            .filter(connections::provider_user_id.eq(provider_user_id))
            .select(connections::id)
            .first(&mut conn)
            .await
            .optional()?;
        Ok(found.map(ConnectionId))
    }

    /// A connection of this tenant (another tenant's id is simply not found).
    pub async fn get_connection(&self, id: ConnectionId) -> Result<Option<Connection>, DbError> {
        let mut conn = self.conn().await?;
        Ok(connections::table
            .filter(connections::id.eq(id.0))
            .filter(connections::tenant_id.eq(self.tenant.0))
            .select(Connection::as_select())
            .first(&mut conn)
            .await
            .optional()?)
    }

    pub async fn list_connections(&self, filter: &ConnectionFilter<'_>) -> Result<(Vec<Connection>, i64), DbError> {
        let mut conn = self.conn().await?;
        let mut count_query = connections::table.filter(connections::tenant_id.eq(self.tenant.0)).into_boxed();
        let mut query = connections::table.filter(connections::tenant_id.eq(self.tenant.0)).into_boxed();
        if let Some(provider) = filter.provider {
            count_query = count_query.filter(connections::provider.eq(provider.to_owned()));
            query = query.filter(connections::provider.eq(provider.to_owned()));
        }
        if filter.active_only {
            count_query = count_query.filter(connections::is_active.eq(true));
            query = query.filter(connections::is_active.eq(true));
        }
        let total: i64 = count_query.count().get_result(&mut conn).await?;
        let rows = query
            .order((connections::connected_at.desc(), connections::id.desc()))
            .limit(filter.limit)
            .offset(filter.offset)
            .select(Connection::as_select())
            .load(&mut conn)
            .await?;
        Ok((rows, total))
    }

    pub async fn touch_connection(&self, id: ConnectionId) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::update(connections::table.find(id.0).filter(connections::tenant_id.eq(self.tenant.0)))
            .set(connections::last_used_at.eq(Utc::now()))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Deactivates the connection and forgets its tokens (jobs keep referring to it, so the row stays).
    /// Returns false when the tenant has no such active connection.
    pub async fn disconnect_connection(&self, id: ConnectionId) -> Result<bool, DbError> {
        let mut conn = self.conn().await?;
        let now = Utc::now();
        let updated = diesel::update(
            connections::table
                .filter(connections::id.eq(id.0))
                .filter(connections::tenant_id.eq(self.tenant.0))
                .filter(connections::is_active.eq(true)),
        )
        .set((
            connections::is_active.eq(false),
            connections::access_token_sealed.eq(None::<String>),
            connections::refresh_token_sealed.eq(None::<String>),
            connections::disconnected_at.eq(now),
            connections::updated_at.eq(now),
        ))
        .execute(&mut conn)
        .await?;
        Ok(updated == 1)
    }

    /// [`Db::upsert_connection`] for this tenant (the handle's tenant wins over `new.tenant_id`).
    pub async fn upsert_connection(&self, new: ConnectionUpsert<'_>) -> Result<(Connection, bool), DbError> {
        self.db.upsert_connection(ConnectionUpsert { tenant_id: self.tenant, ..new }).await
    }

    /// Stores freshly sealed tokens on this tenant's connection; false when the tenant has no such connection.
    pub async fn update_connection_tokens(
        &self,
        id: ConnectionId,
        access_token_sealed: &str,
        refresh_token_sealed: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        if self.get_connection(id).await?.is_none() {
            return Ok(false);
        }
        self.db.update_connection_tokens(id, access_token_sealed, refresh_token_sealed, expires_at).await?;
        Ok(true)
    }
}
