//! Connection credentials: sealing provider tokens for storage, and handing out a valid access token,
//! refreshing it at most once at a time per connection. A refresh the provider refuses (`invalid_grant`)
//! marks the connection as needing re-authorisation. [`rotation`] re-seals stored secrets under a new key.

pub mod rotation;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use ferry_core::ConnectionId;
use ferry_crypto::TokenCipher;
use ferry_db::{Db, DbError};
use ferry_drive::{GoogleOAuth, OAuthError, TokenSet};

/// Tokens are refreshed this long before they expire, so a transfer never starts with a token about to lapse.
const REFRESH_MARGIN: Duration = Duration::seconds(60);

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("connection not found")]
    NotFound,
    #[error("connection is disconnected")]
    Disconnected,
    #[error("the provider revoked access; the account must be connected again")]
    NeedsReauthorization,
    #[error("refreshing the access token failed: {0}")]
    Refresh(#[source] OAuthError),
    #[error("stored token cannot be opened: {0}")]
    Seal(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl CredentialError {
    /// Worth trying again later (the provider or the database hiccuped).
    pub fn is_transient(&self) -> bool {
        match self {
            CredentialError::Refresh(err) => err.is_retryable(),
            CredentialError::Db(err) => err.is_unavailable(),
            _ => false,
        }
    }
}

/// Sealed forms of a token set, ready to store.
#[derive(Debug, Clone)]
pub struct SealedTokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Binds a sealed token to its row and role, so a ciphertext copied to another row or column does not open.
fn associated_data(connection_id: ConnectionId, role: &str) -> Vec<u8> {
    ferry_crypto::binding::connection_token(&connection_id, role)
}

#[derive(Clone)]
pub struct Credentials {
    db: Db,
    oauth: GoogleOAuth,
    cipher: TokenCipher,
    refresh_locks: Arc<Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>>,
}

impl Credentials {
    pub fn new(db: Db, oauth: GoogleOAuth, cipher: TokenCipher) -> Self {
        Credentials { db, oauth, cipher, refresh_locks: Arc::default() }
    }

    pub fn cipher(&self) -> &TokenCipher {
        &self.cipher
    }

    /// Seals a fresh token set for the connection `connection_id`.
    pub fn seal(&self, connection_id: ConnectionId, tokens: &TokenSet) -> Result<SealedTokenSet, CredentialError> {
        let access_token = self
            .cipher
            .seal(&tokens.access_token, &associated_data(connection_id, "access"))
            .map_err(|err| CredentialError::Seal(err.to_string()))?;
        let refresh_token = tokens
            .refresh_token
            .as_deref()
            .map(|token| self.cipher.seal(token, &associated_data(connection_id, "refresh")))
            .transpose()
            .map_err(|err| CredentialError::Seal(err.to_string()))?;
        Ok(SealedTokenSet { access_token, refresh_token, expires_at: tokens.expires_at })
    }

    /// The stored tokens in clear (for revoking them at disconnect). `None` when nothing is stored.
    pub async fn stored_tokens(
        &self,
        connection_id: ConnectionId,
    ) -> Result<(Option<String>, Option<String>), CredentialError> {
        let sealed = self.db.connection_tokens(connection_id).await?.ok_or(CredentialError::NotFound)?;
        let open = |value: Option<String>, role| {
            value
                .map(|v| self.cipher.open(&v, &associated_data(connection_id, role)))
                .transpose()
                .map_err(|err| CredentialError::Seal(err.to_string()))
        };
        Ok((open(sealed.access_token_sealed, "access")?, open(sealed.refresh_token_sealed, "refresh")?))
    }

    /// A valid access token for the connection, refreshed first when it expired or is about to.
    pub async fn access_token(&self, connection_id: ConnectionId) -> Result<String, CredentialError> {
        if let Some(token) = self.current_token(connection_id, false).await? {
            return Ok(token);
        }
        let lock = self.refresh_lock(connection_id);
        let _guard = lock.lock().await;
        // Another task may have refreshed while this one waited for the lock.
        if let Some(token) = self.current_token(connection_id, false).await? {
            return Ok(token);
        }
        self.refresh(connection_id).await
    }

    /// Refreshes even though the stored token looks valid (the provider answered 401 with it).
    /// `rejected` is the token that was refused: if another task already replaced it, that one is returned.
    pub async fn refresh_after_rejection(
        &self,
        connection_id: ConnectionId,
        rejected: &str,
    ) -> Result<String, CredentialError> {
        let lock = self.refresh_lock(connection_id);
        let _guard = lock.lock().await;
        if let Some(token) = self.current_token(connection_id, true).await?
            && token != rejected
        {
            return Ok(token);
        }
        self.refresh(connection_id).await
    }

    async fn current_token(
        &self,
        connection_id: ConnectionId,
        ignore_expiry: bool,
    ) -> Result<Option<String>, CredentialError> {
        let sealed = self.db.connection_tokens(connection_id).await?.ok_or(CredentialError::NotFound)?;
        if !sealed.is_active {
            return Err(CredentialError::Disconnected);
        }
        if sealed.needs_reauth {
            return Err(CredentialError::NeedsReauthorization);
        }
        let fresh = sealed.token_expires_at.is_some_and(|at| at - REFRESH_MARGIN > Utc::now());
        match sealed.access_token_sealed {
            Some(token) if fresh || ignore_expiry => Ok(Some(
                self.cipher
                    .open(&token, &associated_data(connection_id, "access"))
                    .map_err(|err| CredentialError::Seal(err.to_string()))?,
            )),
            _ => Ok(None),
        }
    }

    async fn refresh(&self, connection_id: ConnectionId) -> Result<String, CredentialError> {
        let sealed = self.db.connection_tokens(connection_id).await?.ok_or(CredentialError::NotFound)?;
        let Some(refresh_sealed) = sealed.refresh_token_sealed else {
            self.db.mark_connection_needs_reauth(connection_id).await?;
            return Err(CredentialError::NeedsReauthorization);
        };
        let refresh_token = self
            .cipher
            .open(&refresh_sealed, &associated_data(connection_id, "refresh"))
            .map_err(|err| CredentialError::Seal(err.to_string()))?;
        let tokens = match self.oauth.refresh(&refresh_token).await {
            Ok(tokens) => tokens,
            Err(OAuthError::InvalidGrant(reason)) => {
                tracing::warn!(%connection_id, %reason, "refresh token refused; connection needs re-authorisation");
                self.db.mark_connection_needs_reauth(connection_id).await?;
                return Err(CredentialError::NeedsReauthorization);
            }
            Err(err) => return Err(CredentialError::Refresh(err)),
        };
        let sealed = self.seal(connection_id, &tokens)?;
        self.db
            .update_connection_tokens(
                connection_id,
                &sealed.access_token,
                sealed.refresh_token.as_deref(),
                sealed.expires_at,
            )
            .await?;
        tracing::info!(%connection_id, "access token refreshed");
        Ok(tokens.access_token)
    }

    fn refresh_lock(&self, connection_id: ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refresh_locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(connection_id).or_default().clone()
    }
}

/// The provider clients and token cipher every service builds from its settings.
pub struct ProviderClients {
    pub oauth: GoogleOAuth,
    pub drive: ferry_drive::DriveClient,
    pub cipher: TokenCipher,
}

impl ProviderClients {
    pub fn from_settings(settings: &ferry_config::Settings) -> anyhow::Result<Self> {
        use anyhow::Context;
        // Every call to Google is bounded by a connect and a read (idle) timeout; none has a total timeout,
        // so a large transfer runs as long as bytes keep moving.
        let timeouts = ferry_drive::HttpTimeouts {
            connect: settings.drive.connect_timeout(),
            read: settings.drive.read_timeout(),
        };
        let http = timeouts.client().context("building the HTTP client")?;
        let google = &settings.google;
        let endpoints = ferry_drive::GoogleEndpoints {
            auth_url: google.auth_url.clone(),
            token_url: google.token_url.clone(),
            revoke_url: google.revoke_url.clone(),
            userinfo_url: google.userinfo_url.clone(),
            drive_root_url: google.drive_root_url.clone(),
        };
        let oauth = GoogleOAuth::new(
            &endpoints,
            ferry_drive::OAuthClientConfig {
                client_id: google.client_id.clone(),
                timeouts,
                client_secret: google.client_secret.expose().to_owned(),
                redirect_uri: google.redirect_uri.clone(),
                scopes: google.scopes.clone(),
            },
            http.clone(),
        )
        .context("configuring the OAuth client")?;
        let drive =
            ferry_drive::DriveClient::new(&google.drive_root_url, http).context("configuring the Drive client")?;
        let cipher = token_cipher(settings)?;
        Ok(ProviderClients { oauth, drive, cipher })
    }
}

/// The token cipher the settings describe: `crypto.token_key` for sealing, `crypto.previous_token_keys` for opening
/// what older keys sealed.
pub fn token_cipher(settings: &ferry_config::Settings) -> anyhow::Result<TokenCipher> {
    use anyhow::Context;
    let previous: Vec<(String, String)> = settings
        .crypto
        .previous_keys()
        .context("reading crypto.previous_token_keys")?
        .into_iter()
        .map(|(id, key)| (id, key.expose().to_owned()))
        .collect();
    TokenCipher::new(&settings.crypto.token_key_id, settings.crypto.token_key.expose())
        .context("crypto.token_key")?
        .with_previous_keys(previous)
        .context("crypto.previous_token_keys")
}
