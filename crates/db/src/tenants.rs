//! Tenants and their API keys.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ferry_core::{Scope, TenantId};
use uuid::Uuid;

use crate::schema::{api_keys, tenants};
use crate::{Db, DbError, TenantDb};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// The tenant an API key belongs to, found by the key's hash.
#[derive(Debug, Clone)]
pub struct ApiKeyOwner {
    pub tenant_id: TenantId,
    pub key_hash: String,
    /// What the key may do; `None`: everything.
    pub scopes: Option<Vec<Scope>>,
}

impl Db {
    /// Returns the tenant with this name, creating it on first use.
    pub async fn ensure_tenant(&self, name: &str) -> Result<Tenant, DbError> {
        let mut conn = self.conn().await?;
        diesel::insert_into(tenants::table)
            .values((tenants::id.eq(Uuid::now_v7()), tenants::name.eq(name)))
            .on_conflict(tenants::name)
            .do_nothing()
            .execute(&mut conn)
            .await?;
        Ok(tenants::table.filter(tenants::name.eq(name)).select(Tenant::as_select()).first(&mut conn).await?)
    }

    /// Stores a new key for the tenant; only its hash and a short prefix (for recognising it in listings) are kept.
    pub async fn insert_api_key(&self, tenant_id: TenantId, key_hash: &str, key_prefix: &str) -> Result<(), DbError> {
        self.insert_scoped_api_key(tenant_id, key_hash, key_prefix, None).await
    }

    /// [`Db::insert_api_key`] for a key limited to `scopes` (`None`: every scope).
    pub async fn insert_scoped_api_key(
        &self,
        tenant_id: TenantId,
        key_hash: &str,
        key_prefix: &str,
        scopes: Option<&[Scope]>,
    ) -> Result<(), DbError> {
        let scopes: Option<Vec<&str>> = scopes.map(|s| s.iter().map(|scope| scope.as_str()).collect());
        let mut conn = self.conn().await?;
        diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(Uuid::now_v7()),
                api_keys::tenant_id.eq(tenant_id.0),
                api_keys::key_hash.eq(key_hash),
                api_keys::key_prefix.eq(key_prefix),
                api_keys::scopes.eq(scopes),
            ))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Looks up an unrevoked key by its hash. The caller still compares the hash in constant time.
    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyOwner>, DbError> {
        let mut conn = self.conn().await?;
        let found: Option<(Uuid, String, Option<Vec<String>>)> = api_keys::table
            .filter(api_keys::key_hash.eq(key_hash))
            .filter(api_keys::revoked_at.is_null())
            .select((api_keys::tenant_id, api_keys::key_hash, api_keys::scopes))
            .first(&mut conn)
            .await
            .optional()?;
        let Some((tenant_id, key_hash, names)) = found else { return Ok(None) };
        // A name this build does not know grants nothing (a newer release may have written it).
        let scopes = names.map(|names| names.iter().filter_map(|name| Scope::expand(name).ok()).flatten().collect());
        Ok(Some(ApiKeyOwner { tenant_id: TenantId(tenant_id), key_hash, scopes }))
    }
}

impl TenantDb {
    /// The tenant this handle is scoped to.
    pub async fn tenant_record(&self) -> Result<Tenant, DbError> {
        let mut conn = self.conn().await?;
        Ok(tenants::table.find(self.tenant.0).select(Tenant::as_select()).first(&mut conn).await?)
    }
}
