//! Operator views of API keys: list a tenant's keys (by their display prefix, never the key) and revoke them.
//! The gateway looks keys up with `revoked_at IS NULL` (see `tenants.rs`) and trusts an answer for a few seconds
//! (`ferry_gateway::auth::API_KEY_CACHE_TTL`), so a revoked key is refused within seconds.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::schema::{api_keys, tenants};
use crate::{Db, DbError};

/// One key as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct ApiKeySummary {
    pub id: Uuid,
    pub tenant_name: String,
    /// The first characters of the key (`fry_` + 4), as shown when it was created.
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a revoke by prefix did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked(ApiKeySummary),
    /// No unrevoked key has this prefix (or hash).
    NotFound,
    /// Several unrevoked keys share the prefix: nothing was revoked.
    Ambiguous(Vec<ApiKeySummary>),
}

impl Db {
    /// Every key of the tenant named `tenant`, oldest first (revoked ones included, marked).
    pub async fn list_api_keys(&self, tenant: &str) -> Result<Vec<ApiKeySummary>, DbError> {
        let mut conn = self.conn().await?;
        Ok(api_keys::table
            .inner_join(tenants::table)
            .filter(tenants::name.eq(tenant))
            .order((api_keys::created_at.asc(), api_keys::id.asc()))
            .select((api_keys::id, tenants::name, api_keys::key_prefix, api_keys::created_at, api_keys::revoked_at))
            .load(&mut conn)
            .await?)
    }

    /// Revokes the one unrevoked key whose display prefix is `prefix` or whose hash is `key_hash` (when the
    /// operator has the whole key), optionally only within the tenant named `tenant`. Refuses to choose
    /// between several keys.
    pub async fn revoke_api_key(
        &self,
        prefix: &str,
        key_hash: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<RevokeOutcome, DbError> {
        let mut conn = self.conn().await?;
        let mut query = api_keys::table
            .inner_join(tenants::table)
            .filter(api_keys::revoked_at.is_null())
            .select((api_keys::id, tenants::name, api_keys::key_prefix, api_keys::created_at, api_keys::revoked_at))
            .into_boxed();
        query = match key_hash {
            Some(hash) => query.filter(api_keys::key_hash.eq(hash.to_owned())),
            None => query.filter(api_keys::key_prefix.eq(prefix.to_owned())),
        };
        if let Some(tenant) = tenant {
            query = query.filter(tenants::name.eq(tenant.to_owned()));
        }
        let mut matches: Vec<ApiKeySummary> = query.load(&mut conn).await?;
        match matches.len() {
            0 => Ok(RevokeOutcome::NotFound),
            1 => {
                let mut key = matches.remove(0);
                let revoked_at: Option<DateTime<Utc>> = diesel::update(api_keys::table.find(key.id))
                    .filter(api_keys::revoked_at.is_null())
                    .set(api_keys::revoked_at.eq(diesel::dsl::now))
                    .returning(api_keys::revoked_at)
                    .get_result(&mut conn)
                    .await
                    .optional()?
                    .flatten();
                match revoked_at {
                    Some(at) => {
                        key.revoked_at = Some(at);
                        Ok(RevokeOutcome::Revoked(key))
                    }
                    // Revoked by someone else in between.
                    None => Ok(RevokeOutcome::NotFound),
                }
            }
            _ => Ok(RevokeOutcome::Ambiguous(matches)),
        }
    }
}
