//! The handles the API uses. [`TenantDb`] holds one tenant and every query it offers filters by it, so a
//! handler cannot reach another tenant's rows by mistake; [`ApiDb`] is all the gateway holds besides it: the
//! few look-ups that find the tenant in the first place (an API key, an OAuth state) and health.
//!
//! The plain [`Db`] is the system handle of workers and operator tools.

use ferry_core::TenantId;

use crate::oauth_states::ConsumedOAuthState;
use crate::tenants::ApiKeyOwner;
use crate::{Db, DbError, PooledConnection};

/// The database as one tenant sees it. Cheap to clone.
#[derive(Clone)]
pub struct TenantDb {
    pub(crate) db: Db,
    pub(crate) tenant: TenantId,
}

impl std::fmt::Debug for TenantDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDb").field("tenant", &self.tenant).finish_non_exhaustive()
    }
}

impl Db {
    /// A handle whose every query is scoped to `tenant`.
    pub fn tenant(&self, tenant: TenantId) -> TenantDb {
        TenantDb { db: self.clone(), tenant }
    }
}

impl TenantDb {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    pub(crate) async fn conn(&self) -> Result<PooledConnection, DbError> {
        self.db.conn().await
    }
}

/// The gateway's database handle: tenant data only through [`ApiDb::tenant`]. Cheap to clone.
#[derive(Clone)]
pub struct ApiDb {
    db: Db,
}

impl ApiDb {
    pub fn new(db: Db) -> Self {
        ApiDb { db }
    }

    /// A handle whose every query is scoped to `tenant`.
    pub fn tenant(&self, tenant: TenantId) -> TenantDb {
        self.db.tenant(tenant)
    }

    /// The tenant of an unrevoked API key, found by the key's hash.
    pub async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyOwner>, DbError> {
        self.db.find_api_key(key_hash).await
    }

    /// Consumes an OAuth state for the browser redirect, which carries no API key: the single-use state is
    /// what binds it to its tenant.
    pub async fn consume_oauth_state_from_redirect(
        &self,
        state: &str,
        provider: &str,
    ) -> Result<Option<ConsumedOAuthState>, DbError> {
        self.db.consume_oauth_state(state, provider, None).await
    }

    /// True when the database answers (for `/readyz`).
    pub async fn is_ready(&self) -> bool {
        self.db.is_ready().await
    }
}
