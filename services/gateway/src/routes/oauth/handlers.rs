//! The OAuth web-server flow: start (authorization URL + single-use state with PKCE), and the two ways to
//! finish it (the API call with `{code, state}`, and the browser redirect that reports to its opener window).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use ferry_core::{ConnectionId, Provider, TenantId};
use ferry_db::TenantDb;
use ferry_db::connections::{Connection, ConnectionUpsert};
use ferry_db::oauth_states::NewOAuthState;
use ferry_drive::OAuthError;
use serde::Deserialize;

use crate::auth::Tenant;
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};
use crate::routes::oauth::dto::{
    CompleteAuthRequest, CompleteAuthResponse, ConnectionView, MAX_REDIRECT_URI_CHARS, OAuthCompleteMessage,
    REDIRECT_URI_PATTERN, StartAuthRequest, StartAuthResponse,
};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/cloud-storage/auth/{provider}", web::post().to(start))
        .route("/cloud-storage/auth/{provider}/callback", web::post().to(complete))
        .route("/cloud-storage/auth/{provider}/callback", web::get().to(browser_callback));
}

pub fn parse_provider(raw: &str) -> ApiResult<Provider> {
    raw.parse::<Provider>()
        .map_err(|_| ApiError::field("provider", format!("Unsupported provider `{raw}`; supported: google_drive")))
}

/// A redirect URI is an absolute http(s) URL with a host name or IPv4 address, as the document's pattern says.
fn check_redirect_uri(uri: &str) -> ApiResult<()> {
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(REDIRECT_URI_PATTERN).unwrap_or_else(|err| panic!("REDIRECT_URI_PATTERN is invalid: {err}"))
    });
    let well_formed = uri.chars().count() <= MAX_REDIRECT_URI_CHARS
        && PATTERN.is_match(uri)
        && url::Url::parse(uri).is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
    if well_formed {
        Ok(())
    } else {
        Err(ApiError::field(
            "redirect_uri",
            format!(
                "redirect_uri must be an absolute http(s) URL with a host name or IPv4 address, at most \
                 {MAX_REDIRECT_URI_CHARS} characters"
            ),
        ))
    }
}

fn verifier_associated_data(state: &str) -> Vec<u8> {
    ferry_crypto::binding::oauth_verifier(state)
}

#[utoipa::path(operation_id = "auth_start", post, path = "/cloud-storage/auth/{provider}", tag = "auth", description = "Start OAuth: an authorization URL and a single-use state (PKCE S256, offline access).", params(("provider" = String, Path, pattern = "^google_drive$", example = "google_drive")), request_body(content = Option<StartAuthRequest>, description = "Optional; an empty body is fine"), responses((status = 200, description = "Authorization URL", body = StartAuthResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody)))]
async fn start(
    state: web::Data<AppState>,
    tenant: Tenant,
    provider: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let provider = parse_provider(&provider)?;
    // The body is optional, but a body that is there must be a valid request (not silently replaced by defaults).
    let body: StartAuthRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartAuthRequest::default()
    } else {
        serde_json::from_slice::<Option<StartAuthRequest>>(&body)
            .map_err(|err| ApiError::validation(format!("Invalid JSON body: {err}")))?
            .unwrap_or_default()
    };
    if let Some(named) = body.provider.as_deref()
        && named != provider.as_str()
    {
        return Err(ApiError::field("provider", "provider in the body does not match the path"));
    }
    if let Some(uri) = body.redirect_uri.as_deref() {
        check_redirect_uri(uri)?;
    }
    let oauth_state = ferry_crypto::random_token(32);
    let request =
        state.oauth.authorization_request(&oauth_state, body.login_hint.as_deref(), body.redirect_uri.as_deref());
    let sealed_verifier = state
        .credentials
        .cipher()
        .seal(&request.pkce_verifier, &verifier_associated_data(&oauth_state))
        .map_err(|err| ApiError::internal("sealing the PKCE verifier", &err))?;
    tenant
        .db()
        .insert_oauth_state(NewOAuthState {
            state: &oauth_state,
            provider: provider.as_str(),
            pkce_verifier_sealed: &sealed_verifier,
            redirect_uri: body.redirect_uri.as_deref(),
            expires_at: Utc::now() + state.settings.gateway.oauth_state_ttl(),
        })
        .await?;
    Ok(HttpResponse::Ok().json(StartAuthResponse {
        authorization_url: request.url,
        state: oauth_state,
        provider: provider.as_str().to_owned(),
    }))
}

#[utoipa::path(operation_id = "auth_complete", post, path = "/cloud-storage/auth/{provider}/callback", tag = "auth", description = "Finish OAuth with the code and state; the same Drive account again updates its connection.", params(("provider" = String, Path, pattern = "^google_drive$", example = "google_drive")), request_body = CompleteAuthRequest, responses((status = 200, description = "Connected", body = CompleteAuthResponse), (status = 400, description = "Invalid request", body = crate::error::ErrorBody), (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody), (status = 404, description = "The state or the code is unknown, expired or already used (NOT_FOUND, field `state` or `code`)", body = crate::error::ErrorBody), (status = 502, description = "Provider error", body = crate::error::ErrorBody), (status = 504, description = "The cloud provider did not answer in time (PROVIDER_TIMEOUT)", body = crate::error::ErrorBody)))]
async fn complete(
    state: web::Data<AppState>,
    tenant: Tenant,
    provider: web::Path<String>,
    body: web::Json<CompleteAuthRequest>,
) -> ApiResult<HttpResponse> {
    let provider = parse_provider(&provider)?;
    let code =
        body.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| ApiError::field("code", "code is required"))?;
    let oauth_state =
        body.state.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| ApiError::field("state", "state is required"))?;
    let (connection, is_new) = finish_flow(&state, Some(tenant.db()), provider, code, oauth_state).await?;
    Ok(HttpResponse::Ok().json(CompleteAuthResponse { connection: ConnectionView::from(&connection), is_new }))
}

/// Consumes the state, exchanges the code, identifies the account and stores the connection.
async fn finish_flow(
    state: &AppState,
    tenant: Option<&TenantDb>,
    provider: Provider,
    code: &str,
    oauth_state: &str,
) -> ApiResult<(Connection, bool)> {
    // The API call consumes only its own tenant's state; the browser redirect has no key, and the state names
    // the tenant.
    // A state with NUL cannot have been issued (and Postgres text cannot hold one): it names nothing.
    let consumed = match tenant {
        _ if oauth_state.contains('\0') => None,
        Some(db) => db.consume_oauth_state(oauth_state, provider.as_str()).await?,
        None => state.db.consume_oauth_state_from_redirect(oauth_state, provider.as_str()).await?,
    }
    .ok_or_else(|| {
        // A state names a pending authorisation; one that is not (or no longer) there is a missing object.
        ApiError::new(ErrorCode::NotFound, "OAuth state is unknown, expired or already used; start the flow again")
            .with_details(ErrorDetails::field("state"))
    })?;
    let db = state.db.tenant(TenantId(consumed.tenant_id));
    let verifier = state
        .credentials
        .cipher()
        .open(&consumed.pkce_verifier_sealed, &verifier_associated_data(oauth_state))
        .map_err(|err| ApiError::internal("opening the PKCE verifier", &err))?;
    let unknown_code = || {
        ApiError::new(
            ErrorCode::NotFound,
            "The authorization code is invalid, expired or already used; start the flow again",
        )
        .with_details(ErrorDetails::field("code"))
    };
    let tokens =
        state.oauth.exchange_code(code, &verifier, consumed.redirect_uri.as_deref()).await.map_err(
            |err| match err {
                // Like the state, the code names a grant that is not (or no longer) there; a code the provider
                // cannot even read (its `invalid_request`) names none either.
                OAuthError::InvalidGrant(_) => unknown_code(),
                OAuthError::Provider { error, .. } if error == "invalid_request" => unknown_code(),
                OAuthError::Timeout(_) => ApiError::provider_timeout("code exchange", &err),
                other => {
                    tracing::warn!(error = %other, "code exchange failed");
                    ApiError::new(ErrorCode::ProviderError, "The cloud provider refused the code exchange")
                }
            },
        )?;
    let user = state.oauth.userinfo(&tokens.access_token).await.map_err(|err| match err {
        OAuthError::Timeout(_) => ApiError::provider_timeout("userinfo", &err),
        _ => {
            tracing::warn!(error = %err, "userinfo failed");
            ApiError::new(ErrorCode::ProviderError, "The cloud provider did not identify the account")
        }
    })?;

    let candidate = db.find_connection_id(provider.as_str(), &user.sub).await?.unwrap_or_else(ConnectionId::new);
    let sealed = state.credentials.seal(candidate, &tokens)?;
    let (connection, is_new) = db
        .upsert_connection(ConnectionUpsert {
            id: candidate,
            tenant_id: db.tenant_id(),
            provider: provider.as_str(),
            provider_user_id: &user.sub,
            provider_email: user.email.as_deref(),
            provider_display_name: user.name.as_deref(),
            access_token_sealed: &sealed.access_token,
            refresh_token_sealed: sealed.refresh_token.as_deref(),
            token_expires_at: sealed.expires_at,
            scopes: tokens.scope.as_deref(),
        })
        .await?;
    if connection.id != candidate.0 {
        // A concurrent callback created the row first: seal again for the id that won.
        let winner = ConnectionId(connection.id);
        let resealed = state.credentials.seal(winner, &tokens)?;
        db.update_connection_tokens(
            winner,
            &resealed.access_token,
            resealed.refresh_token.as_deref(),
            resealed.expires_at,
        )
        .await?;
    }
    tracing::info!(connection_id = %connection.id, is_new, "cloud account connected");
    let is_new = is_new && connection.id == candidate.0;
    Ok((connection, is_new))
}

#[derive(Debug, Deserialize)]
pub struct BrowserCallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The page the provider redirects the popup to. It finishes the flow and posts the seed's `oauth-complete`
/// message to its opener, only to the configured origin and to the gateway's own origin (the console), so a
/// page of any other origin that opens it receives nothing. Nothing from the query is echoed as markup.
#[utoipa::path(operation_id = "auth_browser_callback", get, path = "/cloud-storage/auth/{provider}/callback", tag = "auth", description = "The browser redirect: an HTML page that posts `{\"type\": \"oauth-complete\", ...}` to its opener (only to the configured origin and the gateway's own); a failure carries the provider's `error_description` as plain text.", params(("provider" = String, Path, pattern = "^google_drive$", example = "google_drive"), ("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query), ("error_description" = Option<String>, Query)), security(()), responses((status = 200, description = "HTML page", content_type = "text/html", body = String), (status = 404, description = "HTML page reporting a provider Ferry does not have", content_type = "text/html", body = String)))]
async fn browser_callback(
    state: web::Data<AppState>,
    provider: web::Path<String>,
    query: web::Query<BrowserCallbackQuery>,
) -> HttpResponse {
    // No flow was ever started for a provider Ferry does not have: the page exists only for the ones it has.
    let status = if parse_provider(&provider).is_ok() { StatusCode::OK } else { StatusCode::NOT_FOUND };
    let message = match browser_outcome(&state, &provider, &query).await {
        Ok((connection, _)) => OAuthCompleteMessage::connected(&connection),
        Err(message) => {
            let description = query.error.as_ref().and(query.error_description.as_deref()).map(provider_description);
            OAuthCompleteMessage::failed(message, description)
        }
    };
    let success = message.success;
    let payload = serde_json::to_value(&message).unwrap_or_default();
    popup_page(status, &payload, &state.settings.gateway.popup_origin, success)
}

async fn browser_outcome(
    state: &AppState,
    provider: &str,
    query: &BrowserCallbackQuery,
) -> Result<(Connection, bool), String> {
    let provider = parse_provider(provider).map_err(|err| err.message)?;
    if let Some(error) = query.error.as_deref() {
        // Burn the state so the same redirect cannot be replayed.
        if let Some(oauth_state) = query.state.as_deref() {
            let _ = state.db.consume_oauth_state_from_redirect(oauth_state, provider.as_str()).await;
        }
        return Err(match error {
            "access_denied" => "User denied access".to_owned(),
            _ => format!("Authorization failed ({})", sanitize_code(error)),
        });
    }
    let (Some(code), Some(oauth_state)) = (query.code.as_deref(), query.state.as_deref()) else {
        return Err("The authorization response is missing code or state".to_owned());
    };
    finish_flow(state, None, provider, code, oauth_state).await.map_err(|err| err.message)
}

/// Keeps an OAuth error code to its documented alphabet, so nothing else can ride along.
fn sanitize_code(raw: &str) -> String {
    raw.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect()
}

/// Longest provider error description passed on to the opener.
const MAX_ERROR_DESCRIPTION_CHARS: usize = 2000;

/// The provider's `error_description` without control characters and bounded in length.
fn provider_description(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(MAX_ERROR_DESCRIPTION_CHARS).collect()
}

/// JSON made safe to sit inside a `<script>` element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn popup_page(status: StatusCode, payload: &serde_json::Value, origin: &str, success: bool) -> HttpResponse {
    let nonce = ferry_crypto::random_token(16);
    let heading = if success { "Account connected" } else { "Connection failed" };
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{heading}</title></head>
<body><p>{heading}. You can close this window.</p>
<script nonce="{nonce}">
(function () {{
  var payload = {payload};
  var origin = {origin};
  if (window.opener) {{
    window.opener.postMessage(payload, origin);
    // The console served by this gateway: the browser delivers this only to an opener on this very origin.
    if (window.location.origin !== origin) {{ window.opener.postMessage(payload, window.location.origin); }}
    window.close();
  }}
}})();
</script></body></html>"#,
        payload = script_json(payload),
        origin = script_json(&serde_json::Value::String(origin.to_owned())),
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", format!("default-src 'none'; script-src 'nonce-{nonce}'")))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let value = json!({ "error": "</script><script>alert(1)</script>" });
        let safe = script_json(&value);
        assert!(!safe.contains("</script>"));
        assert!(!safe.contains('<'));
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn provider_descriptions_lose_control_characters_and_stay_short() {
        assert_eq!(provider_description("a\u{0}b\nc <i>d</i>"), "abc <i>d</i>");
        assert_eq!(provider_description(&"x".repeat(5000)).len(), MAX_ERROR_DESCRIPTION_CHARS);
    }

    #[test]
    fn oauth_error_codes_are_reduced_to_their_alphabet() {
        assert_eq!(sanitize_code("server_error\"><img src=x>"), "server_errorimgsrcx");
    }
}
