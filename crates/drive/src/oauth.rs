//! Google OAuth 2.0 web-server flow: authorization URL with PKCE, code and refresh exchanges
//! (through the `oauth2` crate over our own reqwest 0.13 adapter), revoke and userinfo.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use reqwest::StatusCode;
use serde::Deserialize;
use tracing::debug;
use url::Url;

use crate::OAuthError;
use crate::error::{describe_reqwest, oauth_transport};

/// Google's access-token lifetime, used only if a token reply omits `expires_in`.
const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(3600);
/// Cap on what we read from an OAuth error body.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Where the OAuth and Drive endpoints live: Google's, or the emulator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleEndpoints {
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub userinfo_url: String,
    /// Drive root (not `drive/v3/`), e.g. `https://www.googleapis.com/` or `http://127.0.0.1:8088/`.
    pub drive_root_url: String,
}

impl GoogleEndpoints {
    /// Google's production endpoints.
    pub fn google() -> Self {
        GoogleEndpoints {
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
            token_url: "https://oauth2.googleapis.com/token".to_owned(),
            revoke_url: "https://oauth2.googleapis.com/revoke".to_owned(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".to_owned(),
            drive_root_url: "https://www.googleapis.com/".to_owned(),
        }
    }
}

/// The registered OAuth client.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthClientConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Default redirect URI; each call may override it.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// Bounds of the token and revoke requests (made through an internal client).
    pub timeouts: HttpTimeouts,
}

/// Connect and read (idle) timeouts of an HTTP client. No total timeout: a long download or upload may take
/// as long as it needs as long as bytes keep moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts { connect: Duration::from_secs(10), read: Duration::from_secs(60) }
    }
}

/// How long an idle connection to Google stays pooled (servers commonly close idle ones after 60 s or more).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl HttpTimeouts {
    /// A client for Google's endpoints: these timeouts, and no redirects (secrets are never re-sent elsewhere).
    /// Idle pooled connections are dropped well before a server's keep-alive would close them, so a request
    /// never goes out on a connection the server is closing.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect)
            .read_timeout(self.read)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()
    }
}

impl fmt::Debug for OAuthClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// Where to send the user, and the PKCE verifier to keep (server-side, with the state) until
/// the callback.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub url: String,
    pub pkce_verifier: String,
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest").field("url", &self.url).field("pkce_verifier", &"[redacted]").finish()
    }
}

/// Tokens from a code exchange or a refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    /// `None` when the provider sent none (Google never sends one on refresh: keep the old one).
    pub refresh_token: Option<String>,
    /// Receipt time + `expires_in`.
    pub expires_at: DateTime<Utc>,
    /// Space-separated granted scopes, when the provider said.
    pub scope: Option<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

/// OpenID Connect userinfo.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    /// Stable Google account id. (`id` in the legacy v2 endpoint.)
    #[serde(alias = "id")]
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
}

type OAuthClient = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Google OAuth client. Cheap to clone.
#[derive(Clone)]
pub struct GoogleOAuth {
    client: OAuthClient,
    redirect_uri: RedirectUrl,
    scopes: Vec<Scope>,
    revoke_url: Url,
    userinfo_url: Url,
    /// For userinfo: the caller's client.
    http: reqwest::Client,
    /// For token and revoke POSTs, which carry secrets: never follows redirects.
    no_redirect_http: reqwest::Client,
}

impl fmt::Debug for GoogleOAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleOAuth")
            .field("client_id", &self.client.client_id().as_str())
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl GoogleOAuth {
    /// Validates the endpoints and the redirect URI. `http` is used for userinfo; token and
    /// revoke requests go through an internal client with redirects disabled, so secrets in a
    /// POST body are never re-sent to another location.
    pub fn new(
        endpoints: &GoogleEndpoints,
        config: OAuthClientConfig,
        http: reqwest::Client,
    ) -> Result<Self, OAuthError> {
        let auth_url =
            AuthUrl::new(endpoints.auth_url.clone()).map_err(|e| config_error("auth_url", &endpoints.auth_url, e))?;
        let token_url = TokenUrl::new(endpoints.token_url.clone())
            .map_err(|e| config_error("token_url", &endpoints.token_url, e))?;
        let revoke_url =
            Url::parse(&endpoints.revoke_url).map_err(|e| config_error("revoke_url", &endpoints.revoke_url, e))?;
        let userinfo_url = Url::parse(&endpoints.userinfo_url)
            .map_err(|e| config_error("userinfo_url", &endpoints.userinfo_url, e))?;
        let redirect_uri = RedirectUrl::new(config.redirect_uri.clone())
            .map_err(|e| config_error("redirect_uri", &config.redirect_uri, e))?;
        if config.client_id.is_empty() {
            return Err(OAuthError::Config("client_id is empty".to_owned()));
        }

        let client = BasicClient::new(ClientId::new(config.client_id))
            .set_client_secret(ClientSecret::new(config.client_secret))
            .set_auth_uri(auth_url)
            .set_token_uri(token_url)
            // Google documents credentials in the form body; Basic works too.
            .set_auth_type(AuthType::RequestBody);

        let no_redirect_http = config
            .timeouts
            .client()
            .map_err(|e| OAuthError::Config(format!("building HTTP client: {}", describe_reqwest(e))))?;

        Ok(GoogleOAuth {
            client,
            redirect_uri,
            scopes: config.scopes.into_iter().map(Scope::new).collect(),
            revoke_url,
            userinfo_url,
            http,
            no_redirect_http,
        })
    }

    /// Builds the consent URL: offline access (a refresh token), forced consent (so Google
    /// sends the refresh token again on re-connect), incremental scopes, PKCE S256. `state` is
    /// the caller's CSRF token. `redirect_uri` overrides the configured one; pass the same
    /// value to [`GoogleOAuth::exchange_code`].
    pub fn authorization_request(
        &self,
        state: &str,
        login_hint: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> AuthorizationRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(|| CsrfToken::new(state.to_owned()))
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent")
            .add_extra_param("include_granted_scopes", "true");
        req = match redirect_uri {
            None => req.set_redirect_uri(Cow::Borrowed(&self.redirect_uri)),
            Some(raw) => match RedirectUrl::new(raw.to_owned()) {
                Ok(url) => req.set_redirect_uri(Cow::Owned(url)),
                // Not a URL: pass it through verbatim so the provider rejects it visibly
                // (redirect_uri_mismatch) instead of silently using another URI.
                Err(_) => req.add_extra_param("redirect_uri", raw.to_owned()),
            },
        };
        if let Some(hint) = login_hint {
            req = req.add_extra_param("login_hint", hint.to_owned());
        }
        let (url, _state) = req.url();
        AuthorizationRequest { url: url.into(), pkce_verifier: verifier.secret().clone() }
    }

    /// Exchanges the callback's `code` (with the PKCE verifier from
    /// [`GoogleOAuth::authorization_request`]) for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: Option<&str>,
    ) -> Result<TokenSet, OAuthError> {
        let redirect = match redirect_uri {
            None => Cow::Borrowed(&self.redirect_uri),
            Some(raw) => {
                Cow::Owned(RedirectUrl::new(raw.to_owned()).map_err(|e| config_error("redirect_uri", raw, e))?)
            }
        };
        let http = TokenHttp::new(&self.no_redirect_http);
        debug!("oauth authorization_code exchange");
        let result = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .set_redirect_uri(redirect)
            .request_async(&http)
            .await;
        match result {
            Ok(resp) => Ok(token_set(&resp)),
            Err(e) => Err(token_error(e, http.status())),
        }
    }

    /// Gets a fresh access token. The result's `refresh_token` is `None` unless the provider
    /// rotated it. `InvalidGrant` means the grant is gone: the user must reconnect.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, OAuthError> {
        let refresh_token = RefreshToken::new(refresh_token.to_owned());
        let http = TokenHttp::new(&self.no_redirect_http);
        debug!("oauth refresh_token exchange");
        let result = self.client.exchange_refresh_token(&refresh_token).request_async(&http).await;
        match result {
            Ok(resp) => Ok(token_set(&resp)),
            Err(e) => Err(token_error(e, http.status())),
        }
    }

    /// Revokes a token (access or refresh; either kills the whole grant). A token the provider
    /// no longer knows (400 `invalid_token`) counts as already revoked.
    ///
    /// Plain reqwest rather than `oauth2`'s revoke, which refuses http URLs (the emulator).
    pub async fn revoke(&self, token: &str) -> Result<(), OAuthError> {
        debug!("oauth revoke");
        let resp = self
            .no_redirect_http
            .post(self.revoke_url.clone())
            .form(&[("token", token)])
            .send()
            .await
            .map_err(oauth_transport)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let err = provider_error(resp).await;
        match err {
            OAuthError::Provider { status: 400, ref error, .. } if error == "invalid_token" => Ok(()),
            _ => Err(err),
        }
    }

    /// The account behind an access token.
    pub async fn userinfo(&self, access_token: &str) -> Result<UserInfo, OAuthError> {
        let resp =
            self.http.get(self.userinfo_url.clone()).bearer_auth(access_token).send().await.map_err(oauth_transport)?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(OAuthError::Unauthorized);
        }
        if !status.is_success() {
            return Err(provider_error(resp).await);
        }
        let body = resp.bytes().await.map_err(oauth_transport)?;
        serde_json::from_slice(&body).map_err(|e| OAuthError::Decode(format!("userinfo: {e}")))
    }
}

fn config_error(field: &str, value: &str, err: impl fmt::Display) -> OAuthError {
    OAuthError::Config(format!("{field} {value:?}: {err}"))
}

/// The adapter's error: text only, already stripped of URLs, and whether a timeout fired.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct AdapterError {
    message: String,
    timeout: bool,
}

impl AdapterError {
    fn text(message: String) -> Self {
        AdapterError { message, timeout: false }
    }

    fn request(err: reqwest::Error) -> Self {
        AdapterError { timeout: err.is_timeout(), message: describe_reqwest(err) }
    }
}

/// `oauth2`'s HTTP client: one request through reqwest 0.13 (redirects off), recording the
/// status so errors can report it (oauth2 drops it). A named type rather than a closure so the
/// futures stay `Send`.
struct TokenHttp<'a> {
    http: &'a reqwest::Client,
    status: AtomicU16,
}

impl<'a> TokenHttp<'a> {
    fn new(http: &'a reqwest::Client) -> Self {
        TokenHttp { http, status: AtomicU16::new(0) }
    }

    /// HTTP status of the last response; 0 if none arrived.
    fn status(&self) -> u16 {
        self.status.load(Ordering::Relaxed)
    }

    async fn call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, AdapterError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| AdapterError::text(format!("building request: {}", describe_reqwest(e))))?;
        let resp = self.http.execute(request).await.map_err(AdapterError::request)?;
        self.status.store(resp.status().as_u16(), Ordering::Relaxed);
        let mut builder = oauth2::http::Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            builder = builder.header(name, value);
        }
        let body = resp.bytes().await.map_err(AdapterError::request)?;
        builder.body(body.to_vec()).map_err(|e| AdapterError::text(format!("building response: {e}")))
    }
}

impl<'c> AsyncHttpClient<'c> for TokenHttp<'_> {
    type Error = AdapterError;
    type Future = Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, AdapterError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(TokenHttp::call(self, request))
    }
}

fn token_set(resp: &BasicTokenResponse) -> TokenSet {
    let expires_in = resp.expires_in().unwrap_or(DEFAULT_EXPIRES_IN);
    let expires_in = chrono::Duration::from_std(expires_in).unwrap_or(chrono::Duration::hours(1));
    TokenSet {
        access_token: resp.access_token().secret().clone(),
        refresh_token: resp.refresh_token().map(|t| t.secret().clone()),
        expires_at: Utc::now() + expires_in,
        scope: resp
            .scopes()
            .filter(|s| !s.is_empty())
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
    }
}

fn token_error(err: RequestTokenError<AdapterError, BasicErrorResponse>, status: u16) -> OAuthError {
    match err {
        RequestTokenError::ServerResponse(resp) => {
            let error = resp.error().as_ref().to_owned();
            let description = resp.error_description().cloned();
            match error.as_str() {
                "invalid_grant" => OAuthError::InvalidGrant(description.unwrap_or(error)),
                "invalid_client" | "unauthorized_client" => OAuthError::InvalidClient(description.unwrap_or(error)),
                _ => OAuthError::Provider { status, error, description },
            }
        }
        RequestTokenError::Request(e) if e.timeout => OAuthError::Timeout(e.message),
        RequestTokenError::Request(e) => OAuthError::Transport(e.message),
        // Never echo the body: a success body holds tokens. The path and category suffice.
        RequestTokenError::Parse(e, _body) if status == 200 => {
            OAuthError::Decode(format!("token response at {}: {:?} error", e.path(), e.inner().classify()))
        }
        RequestTokenError::Parse(_, _) => {
            OAuthError::Provider { status, error: "unparseable_error_response".to_owned(), description: None }
        }
        RequestTokenError::Other(msg) if status != 200 && status != 0 => {
            OAuthError::Provider { status, error: "http_error".to_owned(), description: Some(msg) }
        }
        RequestTokenError::Other(msg) => OAuthError::Decode(msg),
    }
}

/// Turns a non-success revoke/userinfo response into `Provider`, reading `{error,
/// error_description}` or Google's `{error: {status, message}}` when present.
async fn provider_error(mut resp: reqwest::Response) -> OAuthError {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (error, description) = match value.get("error") {
        Some(serde_json::Value::String(e)) => {
            (e.clone(), value.get("error_description").and_then(|d| d.as_str()).map(str::to_owned))
        }
        Some(obj @ serde_json::Value::Object(_)) => (
            obj.get("status").and_then(|s| s.as_str()).unwrap_or("http_error").to_owned(),
            obj.get("message").and_then(|m| m.as_str()).map(str::to_owned),
        ),
        _ => ("http_error".to_owned(), None),
    };
    OAuthError::Provider { status, error, description }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> GoogleOAuth {
        GoogleOAuth::new(
            &GoogleEndpoints::google(),
            OAuthClientConfig {
                client_id: "cid".into(),
                timeouts: HttpTimeouts::default(),
                client_secret: "secret".into(),
                redirect_uri: "http://127.0.0.1:9/cb".into(),
                scopes: vec!["openid".into(), "email".into()],
            },
            reqwest::Client::new(),
        )
        .expect("oauth")
    }

    #[test]
    fn authorization_url_has_google_params() {
        let req = oauth().authorization_request("st8", Some("a@b.c"), None);
        let url = Url::parse(&req.url).expect("url");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st8");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["access_type"], "offline");
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["include_granted_scopes"], "true");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["login_hint"], "a@b.c");
        assert_eq!(q["scope"], "openid email");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:9/cb");
        assert!(!req.url.contains(&req.pkce_verifier));
        assert!(!format!("{req:?}").contains(&req.pkce_verifier));

        let req = oauth().authorization_request("s", None, Some("http://127.0.0.1:10/other"));
        let url = Url::parse(&req.url).expect("url");
        let redirects: Vec<_> =
            url.query_pairs().filter(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned()).collect();
        assert_eq!(redirects, vec!["http://127.0.0.1:10/other".to_owned()]);
    }

    #[test]
    fn rejects_bad_config() {
        let mut e = GoogleEndpoints::google();
        e.token_url = "not a url".into();
        let err = GoogleOAuth::new(
            &e,
            OAuthClientConfig {
                client_id: "cid".into(),
                timeouts: HttpTimeouts::default(),
                client_secret: "s".into(),
                redirect_uri: "http://127.0.0.1/cb".into(),
                scopes: vec![],
            },
            reqwest::Client::new(),
        )
        .expect_err("bad url");
        assert!(matches!(err, OAuthError::Config(_)));
    }

    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let o = oauth();
        assert_send(o.exchange_code("c", "v", None));
        assert_send(o.refresh("r"));
        assert_send(o.revoke("t"));
        assert_send(o.userinfo("t"));
    }

    #[test]
    fn token_set_debug_is_redacted() {
        let t = TokenSet {
            access_token: "ya29.secret".into(),
            refresh_token: Some("1//refresh".into()),
            expires_at: Utc::now(),
            scope: None,
        };
        let s = format!("{t:?}");
        assert!(!s.contains("ya29") && !s.contains("1//"));
    }
}
