//! API key authentication: `Authorization: Bearer fry_...` resolves to the tenant every query is scoped to.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use ferry_core::{Scope, TenantId};
use ferry_db::TenantDb;
use ferry_db::tenants::ApiKeyOwner;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller, with the only database handle handlers use for tenant data: every query it
/// offers is scoped to this tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    id: TenantId,
    db: TenantDb,
}

impl Tenant {
    /// A caller proven by something other than an API key (a documents token) for `id`.
    pub(crate) fn scoped(id: TenantId, db: TenantDb) -> Self {
        Tenant { id, db }
    }

    pub fn id(&self) -> TenantId {
        self.id
    }

    pub fn db(&self) -> &TenantDb {
        &self.db
    }
}

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req.headers().get(actix_web::http::header::AUTHORIZATION).map(|v| v.to_str().map(str::to_owned));
        let required = required_scope(req.method(), req.path());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("auth", &"application state missing"))?;
            let key = match header {
                None => {
                    return Err(ApiError::unauthorized(
                        "Missing Authorization header; send `Authorization: Bearer <api key>`",
                    ));
                }
                Some(Err(_)) => return Err(ApiError::unauthorized("Authorization header is not valid text")),
                Some(Ok(value)) => match value.split_once(' ') {
                    Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
                        key.trim().to_owned()
                    }
                    _ => return Err(ApiError::unauthorized("Authorization header must be `Bearer <api key>`")),
                },
            };
            let hash = ferry_crypto::hash_api_key(&key);
            let owner = match state.api_keys.get(&hash) {
                Some(owner) => Some(owner),
                None => {
                    let found = state.db.find_api_key(&hash).await?;
                    if let Some(owner) = &found {
                        state.api_keys.put(hash, owner.clone());
                    }
                    found
                }
            };
            match owner {
                Some(owner) if ferry_crypto::verify_api_key(&key, &owner.key_hash) => {
                    if let (Some(scopes), Some(required)) = (&owner.scopes, required)
                        && !scopes.contains(&required)
                    {
                        return Err(ApiError::new(
                            crate::error::ErrorCode::PermissionDenied,
                            format!("This API key lacks the `{required}` scope this request needs"),
                        ));
                    }
                    Ok(Tenant { id: owner.tenant_id, db: state.db.tenant(owner.tenant_id) })
                }
                _ => Err(ApiError::unauthorized("Invalid or revoked API key")),
            }
        })
    }
}

/// How long a gateway trusts an API key it looked up before asking Postgres again: a revoked key (or a changed
/// scope list) is refused at most this long after the change.
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(3);
/// The most keys one gateway remembers; past it the memory is cleared (keys are looked up again).
const API_KEY_CACHE_CAPACITY: usize = 10_000;

/// Recently seen valid API keys by hash, so a client polling a job costs one query per request, not two. Only
/// keys Postgres accepted are kept; unknown keys are always looked up.
#[derive(Default)]
pub struct ApiKeyCache {
    keys: Mutex<HashMap<String, (Instant, ApiKeyOwner)>>,
}

impl ApiKeyCache {
    fn get(&self, hash: &str) -> Option<ApiKeyOwner> {
        let keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.get(hash).filter(|(seen, _)| seen.elapsed() < API_KEY_CACHE_TTL).map(|(_, owner)| owner.clone())
    }

    fn put(&self, hash: String, owner: ApiKeyOwner) {
        let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if keys.len() >= API_KEY_CACHE_CAPACITY {
            keys.retain(|_, (seen, _)| seen.elapsed() < API_KEY_CACHE_TTL);
            if keys.len() >= API_KEY_CACHE_CAPACITY {
                keys.clear();
            }
        }
        keys.insert(hash, (Instant::now(), owner));
    }
}

/// The scope an API key needs for a request, decided in this one place from the path and method so no route can
/// forget it: reads need `…:read`, anything else `…:write`, and a library sync `library:sync`. `None`: any key.
pub fn required_scope(method: &actix_web::http::Method, path: &str) -> Option<Scope> {
    let reads = method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD;
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/api/libraries") || under("/api/integrations") || under("/api/progress") {
        Some(if path.ends_with("/_sync") {
            Scope::LibrarySync
        } else if reads {
            Scope::LibraryRead
        } else {
            Scope::LibraryWrite
        })
    } else if under("/api/v2/cloud-storage") {
        Some(if reads { Scope::CloudStorageRead } else { Scope::CloudStorageWrite })
    } else if under("/api/v2/files") || under("/api/v2/folders") || under("/internal/services/documents") {
        Some(if reads { Scope::FilesRead } else { Scope::FilesWrite })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn each_api_family_needs_its_own_scope() {
        assert_eq!(required_scope(&Method::POST, "/api/libraries/lib-1/_sync"), Some(Scope::LibrarySync));
        assert_eq!(required_scope(&Method::PUT, "/api/libraries/lib-1/integration"), Some(Scope::LibraryWrite));
        assert_eq!(required_scope(&Method::GET, "/api/libraries"), Some(Scope::LibraryRead));
        assert_eq!(required_scope(&Method::GET, "/api/integrations"), Some(Scope::LibraryRead));
        assert_eq!(required_scope(&Method::POST, "/api/v2/cloud-storage/import"), Some(Scope::CloudStorageWrite));
        assert_eq!(required_scope(&Method::GET, "/api/v2/files/img_x"), Some(Scope::FilesRead));
        assert_eq!(
            required_scope(&Method::DELETE, "/internal/services/documents/v1/companies/c/item/i"),
            Some(Scope::FilesWrite)
        );
        assert_eq!(required_scope(&Method::GET, "/api/v2/me"), None);
        assert_eq!(required_scope(&Method::GET, "/api/librariesx"), None);
    }
}
