//! Who may do what in the documents API. An API key owns the whole tree. Without one, a request may carry
//! exactly one token in its query: `token` (a download token: named items, downloads only), `public_token` (a
//! share link: its level on the shared item's subtree, `public_password` when the link has one) or
//! `twake_tab_token` (a tab: its level on the tab item's subtree). A token that does not check is a 401 and a
//! token used beyond what it grants is a 403: never a fallback to something else.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use ferry_core::{FileId, TenantId};
use ferry_crypto::TokenSigner;
use ferry_db::items::ItemKey;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::documents::dto::{ROOT_ID, StoredAccess, TRASH_ID};
use crate::state::AppState;

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Read,
    Write,
}

impl Level {
    pub fn parse(raw: &str) -> Option<Level> {
        match raw {
            "read" => Some(Level::Read),
            "write" => Some(Level::Write),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
        }
    }
}

/// What the caller was granted.
#[derive(Debug, Clone)]
pub enum Grant {
    /// An API key of the tenant: everything.
    Owner,
    /// A share link, checked against the items above the one a request names.
    PublicLink { token: String, password: Option<String> },
    /// A tab: `level` on `item` and everything below it.
    Tab { item: ItemKey, level: Level },
    /// A download token: downloads of exactly these items, at this version.
    Download { items: Vec<String>, version_id: Option<String> },
}

/// The documents API's caller: a tenant handle and what it was granted.
#[derive(Debug, Clone)]
pub struct DocumentsCaller {
    pub tenant: Tenant,
    pub grant: Grant,
}

/// The signed part of a download token.
#[derive(Debug, Serialize, Deserialize)]
pub struct DownloadClaims {
    /// Tenant id.
    pub t: String,
    /// Item ids.
    pub i: Vec<String>,
    /// Version id, when one was named.
    pub v: Option<String>,
    /// Expiry, seconds since the epoch.
    pub e: i64,
}

/// The signed part of a tab token.
#[derive(Debug, Serialize, Deserialize)]
pub struct TabClaims {
    pub t: String,
    pub tab: String,
}

/// The keys documents tokens are signed with, each derived from `crypto.token_key` with its own label.
#[derive(Debug, Clone)]
pub struct DocumentSigners {
    pub download: TokenSigner,
    pub tab: TokenSigner,
    /// Keys the digests of share-link passwords.
    pub share_password: TokenSigner,
}

impl DocumentSigners {
    pub fn from_settings(settings: &ferry_config::Settings) -> anyhow::Result<Self> {
        let secret = settings.crypto.token_key.expose();
        let derive = |label: &str| {
            TokenSigner::derive(secret, label).map_err(|err| anyhow::anyhow!("crypto.token_key ({label}): {err}"))
        };
        Ok(DocumentSigners {
            download: derive("documents.download-token")?,
            tab: derive("documents.tab-token")?,
            share_password: derive("documents.share-password")?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct TokenQuery {
    token: Option<String>,
    public_token: Option<String>,
    public_password: Option<String>,
    twake_tab_token: Option<String>,
}

impl FromRequest for DocumentsCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let query = web::Query::<TokenQuery>::from_query(req.query_string()).map(web::Query::into_inner);
        let company = req.match_info().get("company_id").map(str::to_owned);
        let key_caller = Tenant::from_request(req, payload);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("auth", &"application state missing"))?;
            let query = query.unwrap_or_default();
            let given = [query.token.is_some(), query.public_token.is_some(), query.twake_tab_token.is_some()];
            match given.iter().filter(|g| **g).count() {
                0 => return Ok(DocumentsCaller { tenant: key_caller.await?, grant: Grant::Owner }),
                1 => {}
                _ => {
                    return Err(ApiError::unauthorized(
                        "Send one of token, public_token and twake_tab_token, not several",
                    ));
                }
            }
            // Without an API key the company in the path names the tenant; each token then proves itself.
            let tenant_id = company
                .as_deref()
                .and_then(|raw| Uuid::parse_str(raw).ok())
                .map(TenantId)
                .ok_or_else(|| ApiError::not_found("Company"))?;
            let tenant = Tenant::scoped(tenant_id, state.db.tenant(tenant_id));
            let grant = if let Some(token) = query.token {
                download_grant(&state.signers.download, &token, tenant_id)?
            } else if let Some(token) = query.public_token {
                if token.is_empty() || token.len() > 200 {
                    return Err(ApiError::unauthorized("The share link token is not valid"));
                }
                Grant::PublicLink { token, password: query.public_password }
            } else {
                let token = query.twake_tab_token.unwrap_or_default();
                tab_grant(&state, &tenant, &token).await?
            };
            Ok(DocumentsCaller { tenant, grant })
        })
    }
}

fn download_grant(signer: &TokenSigner, token: &str, tenant: TenantId) -> ApiResult<Grant> {
    let claims = signer.verify(token).map_err(|_| ApiError::unauthorized("The download token is not valid"))?;
    let claims: DownloadClaims =
        serde_json::from_slice(&claims).map_err(|_| ApiError::unauthorized("The download token is not valid"))?;
    if claims.e <= chrono::Utc::now().timestamp() {
        return Err(ApiError::unauthorized("The download token has expired; ask for a new one"));
    }
    if claims.t != tenant.0.to_string() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "The download token is for another company"));
    }
    Ok(Grant::Download { items: claims.i, version_id: claims.v })
}

async fn tab_grant(state: &AppState, tenant: &Tenant, token: &str) -> ApiResult<Grant> {
    let invalid = || ApiError::unauthorized("The tab token is not valid");
    let claims = state.signers.tab.verify(token).map_err(|_| invalid())?;
    let claims: TabClaims = serde_json::from_slice(&claims).map_err(|_| invalid())?;
    if claims.t != tenant.id().0.to_string() {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "The tab token is for another company"));
    }
    // The tab's current configuration decides: a tab pointed elsewhere or removed stops granting the old item.
    let tab = tenant.db().get_tab(&claims.tab).await?.ok_or_else(invalid)?;
    let item = item_key(&tab.item_id).ok_or_else(invalid)?;
    let level = Level::parse(&tab.level).ok_or_else(invalid)?;
    Ok(Grant::Tab { item, level })
}

/// The stored item an id names (`None` for `root`, `trash` and malformed ids).
pub fn item_key(raw: &str) -> Option<ItemKey> {
    if raw == ROOT_ID || raw == TRASH_ID {
        return None;
    }
    if raw.starts_with("img_") {
        return FileId::parse(raw).ok().map(|id| ItemKey::File(id.0));
    }
    Uuid::parse_str(raw).ok().filter(|_| raw.len() == 36).map(ItemKey::Directory)
}

fn denied(message: &str) -> ApiError {
    ApiError::new(ErrorCode::PermissionDenied, message)
}

impl DocumentsCaller {
    pub fn is_owner(&self) -> bool {
        matches!(self.grant, Grant::Owner)
    }

    /// Checks that the caller may act at `need` on the item `id` names (for a new item: its parent). The owner
    /// may do anything; a share link or tab only inside its subtree and at its level; a download token never
    /// here (see [`Self::may_download`]).
    pub async fn authorize(&self, state: &AppState, id: &str, need: Level) -> ApiResult<()> {
        match &self.grant {
            Grant::Owner => Ok(()),
            Grant::Download { .. } => Err(denied("A download token only downloads the items it names")),
            Grant::Tab { item, level } => {
                let key = item_key(id).ok_or_else(|| denied("A tab reaches only its item and what is inside it"))?;
                if need > *level {
                    return Err(denied("This tab is read-only"));
                }
                let chain = self.tenant.db().item_chain(key).await?.ok_or_else(|| ApiError::not_found("Item"))?;
                if chain.iter().any(|link| link.key == *item) {
                    Ok(())
                } else {
                    Err(denied("A tab reaches only its item and what is inside it"))
                }
            }
            Grant::PublicLink { token, password } => {
                let key =
                    item_key(id).ok_or_else(|| denied("A share link reaches only its item and what is inside it"))?;
                let chain = self.tenant.db().item_chain(key).await?.ok_or_else(|| ApiError::not_found("Item"))?;
                let now_ms = chrono::Utc::now().timestamp_millis();
                for link in &chain {
                    let info = StoredAccess::of(link.access_info.as_ref());
                    let public = &info.public;
                    // Compared in constant time; an empty stored token (no link) never matches.
                    if public.token.is_empty() || !ferry_crypto::constant_time_eq(&public.token, token) {
                        continue;
                    }
                    let Some(level) = Level::parse(&public.level) else {
                        return Err(ApiError::unauthorized("The share link was revoked"));
                    };
                    if public.expiration > 0 && public.expiration <= now_ms {
                        return Err(ApiError::unauthorized("The share link has expired"));
                    }
                    if let Some(digest) = &public.password_digest {
                        let given = password.as_deref().unwrap_or_default();
                        let given = state.signers.share_password.digest(&public.token, given);
                        if !ferry_crypto::constant_time_eq(&given, digest) {
                            return Err(ApiError::unauthorized("The share link needs its password (public_password)"));
                        }
                    }
                    if need > level {
                        return Err(denied("This share link is read-only"));
                    }
                    return Ok(());
                }
                Err(ApiError::unauthorized("The share link token is not valid for this item"))
            }
        }
    }

    /// Checks that the caller may download `ids` (at `version_id` when given).
    pub async fn may_download(&self, state: &AppState, ids: &[String], version_id: Option<&str>) -> ApiResult<()> {
        match &self.grant {
            Grant::Download { items, version_id: granted } => {
                if ids.iter().any(|id| !items.contains(id)) {
                    return Err(denied("The download token was made for other items"));
                }
                if granted.as_deref() != version_id {
                    return Err(denied("The download token was made for another version"));
                }
                Ok(())
            }
            _ => {
                for id in ids {
                    self.authorize(state, id, Level::Read).await?;
                }
                Ok(())
            }
        }
    }
}
