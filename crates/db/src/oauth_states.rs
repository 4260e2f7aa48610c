//! OAuth authorization requests in flight: single use, expiring, bound to the tenant that started them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ferry_core::TenantId;

use crate::schema::oauth_states;
use crate::{Db, DbError, TenantDb};

#[derive(Debug, Clone)]
pub struct NewOAuthState<'a> {
    pub state: &'a str,
    pub provider: &'a str,
    pub pkce_verifier_sealed: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
}

/// A state that was just consumed: it can never be used again.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_states)]
pub struct ConsumedOAuthState {
    pub state: String,
    pub tenant_id: uuid::Uuid,
    pub provider: String,
    pub pkce_verifier_sealed: String,
    pub redirect_uri: Option<String>,
}

impl Db {
    /// Marks the state used and returns it, if it exists, is unused, unexpired and belongs to the tenant
    /// (`None` for the tenant means the browser redirect, which carries no API key: the state alone binds it).
    /// One statement, so two concurrent callbacks cannot both succeed.
    pub async fn consume_oauth_state(
        &self,
        state: &str,
        provider: &str,
        tenant_id: Option<TenantId>,
    ) -> Result<Option<ConsumedOAuthState>, DbError> {
        let mut conn = self.conn().await?;
        let now = Utc::now();
        let target = oauth_states::table
            .filter(oauth_states::state.eq(state))
            .filter(oauth_states::provider.eq(provider))
            .filter(oauth_states::consumed_at.is_null())
            .filter(oauth_states::expires_at.gt(now));
        let consumed = match tenant_id {
            Some(tenant) => {
                diesel::update(target.filter(oauth_states::tenant_id.eq(tenant.0)))
                    .set(oauth_states::consumed_at.eq(now))
                    .returning(ConsumedOAuthState::as_returning())
                    .get_result(&mut conn)
                    .await
            }
            None => {
                diesel::update(target)
                    .set(oauth_states::consumed_at.eq(now))
                    .returning(ConsumedOAuthState::as_returning())
                    .get_result(&mut conn)
                    .await
            }
        };
        Ok(consumed.optional()?)
    }
}

impl TenantDb {
    pub async fn insert_oauth_state(&self, new: NewOAuthState<'_>) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(oauth_states::table)
            .values((
                oauth_states::state.eq(new.state),
                oauth_states::tenant_id.eq(self.tenant.0),
                oauth_states::provider.eq(new.provider),
                oauth_states::pkce_verifier_sealed.eq(new.pkce_verifier_sealed),
                oauth_states::redirect_uri.eq(new.redirect_uri),
                oauth_states::expires_at.eq(new.expires_at),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Consumes a state this tenant started (see [`Db::consume_oauth_state`]).
    pub async fn consume_oauth_state(
        &self,
        state: &str,
        provider: &str,
    ) -> Result<Option<ConsumedOAuthState>, DbError> {
        self.db.consume_oauth_state(state, provider, Some(self.tenant)).await
    }
}
