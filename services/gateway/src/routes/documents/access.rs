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
    Download { items: Vec<ItemKey>, version_id: Option<Uuid> },
}

/// The documents API's caller: a tenant handle and what it was granted.
#[derive(Debug, Clone)]
pub struct DocumentsCaller {
    pub tenant: Tenant,
    pub grant: Grant,
}

/// The signed part of a download token, packed in binary so a token for many items still fits in a URL:
/// version byte, tenant (16 bytes), expiry (8, big-endian seconds since the epoch), a version flag and id (1 + 16),
/// then each item as a kind byte (0 directory, 1 file) and its 16-byte id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadClaims {
    pub tenant: Uuid,
    pub items: Vec<ItemKey>,
    pub version: Option<Uuid>,
    /// Expiry, seconds since the epoch.
    pub expires: i64,
}

const DOWNLOAD_CLAIMS_FORMAT: u8 = 1;

impl DownloadClaims {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(42 + 17 * self.items.len());
        out.push(DOWNLOAD_CLAIMS_FORMAT);
        out.extend_from_slice(self.tenant.as_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.push(u8::from(self.version.is_some()));
        out.extend_from_slice(self.version.unwrap_or_default().as_bytes());
        for item in &self.items {
            let (kind, id) = match item {
                ItemKey::Directory(id) => (0u8, id),
                ItemKey::File(id) => (1u8, id),
            };
            out.push(kind);
            out.extend_from_slice(id.as_bytes());
        }
        out
    }

    /// `None` for anything this server did not make (the signature already checked, so only another format).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let uuid = |b: &[u8]| Uuid::from_slice(b).ok();
        let (&format, rest) = bytes.split_first()?;
        if format != DOWNLOAD_CLAIMS_FORMAT || rest.len() < 41 || (rest.len() - 41) % 17 != 0 {
            return None;
        }
        let tenant = uuid(&rest[..16])?;
        let expires = i64::from_be_bytes(rest[16..24].try_into().ok()?);
        let version = match rest[24] {
            0 => None,
            1 => Some(uuid(&rest[25..41])?),
            _ => return None,
        };
        let items = rest[41..]
            .chunks_exact(17)
            .map(|item| match item[0] {
                0 => uuid(&item[1..]).map(ItemKey::Directory),
                1 => uuid(&item[1..]).map(ItemKey::File),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(DownloadClaims { tenant, items, version, expires })
    }
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

// Each limit keeps a request URL with every credential at its longest (even percent-encoded four-byte characters,
// twelve bytes each) under the HTTP server's 32 KiB request head.
/// Longest `?token=`: the signed claims of 50 items take about 1200 characters.
pub const MAX_DOWNLOAD_TOKEN_CHARS: usize = 1300;
/// Longest `?public_token=` (the server makes 32-character ones).
pub const MAX_SHARE_TOKEN_CHARS: usize = 64;
/// Longest `?public_password=`, as a link's password may be.
pub const MAX_SHARE_PASSWORD_CHARS: usize = 200;
/// Longest `?twake_tab_token=` (a tab id of 200 four-byte characters signs to about 1150).
pub const MAX_TAB_TOKEN_CHARS: usize = 1200;

/// The credential parameters: a malformed query is a 400; an empty credential, or a password without a link, is
/// no credential at all (401), never a fallback to the API key.
fn credentials_query(query: Result<TokenQuery, actix_web::error::QueryPayloadError>) -> ApiResult<TokenQuery> {
    let query =
        query.map_err(|err| ApiError::new(ErrorCode::ValidationError, format!("Invalid query parameters: {err}")))?;
    for (name, value) in [
        ("token", &query.token),
        ("public_token", &query.public_token),
        ("public_password", &query.public_password),
        ("twake_tab_token", &query.twake_tab_token),
    ] {
        if value.as_deref().is_some_and(str::is_empty) {
            return Err(ApiError::unauthorized(format!("`{name}` is empty; leave it out instead")));
        }
        let longest = match name {
            "token" => MAX_DOWNLOAD_TOKEN_CHARS,
            "twake_tab_token" => MAX_TAB_TOKEN_CHARS,
            "public_password" => MAX_SHARE_PASSWORD_CHARS,
            _ => MAX_SHARE_TOKEN_CHARS,
        };
        if value.as_deref().is_some_and(|v| v.chars().count() > longest) {
            return Err(ApiError::unauthorized(format!(
                "`{name}` is longer than any valid one ({longest} characters)"
            )));
        }
    }
    if query.public_password.is_some() && query.public_token.is_none() {
        return Err(ApiError::unauthorized("public_password goes with public_token"));
    }
    Ok(query)
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
            let query = credentials_query(query)?;
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
                if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
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
    let claims =
        DownloadClaims::decode(&claims).ok_or_else(|| ApiError::unauthorized("The download token is not valid"))?;
    if claims.expires <= chrono::Utc::now().timestamp() {
        return Err(ApiError::unauthorized("The download token has expired; ask for a new one"));
    }
    if claims.tenant != tenant.0 {
        return Err(ApiError::new(ErrorCode::PermissionDenied, "The download token is for another company"));
    }
    Ok(Grant::Download { items: claims.items, version_id: claims.version })
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
                if ids.iter().any(|id| item_key(id).is_none_or(|key| !items.contains(&key))) {
                    return Err(denied("The download token was made for other items"));
                }
                if *granted != version_id.and_then(|raw| Uuid::parse_str(raw).ok()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_claims_survive_a_round_trip_and_refuse_other_formats() {
        let claims = DownloadClaims {
            tenant: Uuid::now_v7(),
            items: (0..50)
                .map(|n| if n % 2 == 0 { ItemKey::File(Uuid::now_v7()) } else { ItemKey::Directory(Uuid::now_v7()) })
                .collect(),
            version: Some(Uuid::now_v7()),
            expires: 1_900_000_000,
        };
        let bytes = claims.encode();
        assert_eq!(DownloadClaims::decode(&bytes), Some(claims.clone()));
        let signed =
            TokenSigner::derive("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=", "test").expect("key").sign(&bytes);
        assert!(signed.len() <= MAX_DOWNLOAD_TOKEN_CHARS, "a 50-item token is {} characters", signed.len());
        let no_version = DownloadClaims { version: None, ..claims };
        assert_eq!(DownloadClaims::decode(&no_version.encode()), Some(no_version));
        assert_eq!(DownloadClaims::decode(&bytes[..bytes.len() - 1]), None, "a cut item");
        let mut other_format = bytes.clone();
        other_format[0] = 2;
        assert_eq!(DownloadClaims::decode(&other_format), None);
        assert_eq!(DownloadClaims::decode(br#"{"t":"x"}"#), None);
    }
}
