//! API key authentication: `Authorization: Bearer fry_...` resolves to the tenant every query is scoped to.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use ferry_core::TenantId;
use ferry_db::TenantDb;

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
            let owner = state.db.find_api_key(&hash).await?;
            match owner {
                Some(owner) if ferry_crypto::verify_api_key(&key, &owner.key_hash) => {
                    Ok(Tenant { id: owner.tenant_id, db: state.db.tenant(owner.tenant_id) })
                }
                _ => Err(ApiError::unauthorized("Invalid or revoked API key")),
            }
        })
    }
}
