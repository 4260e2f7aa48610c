//! Google OAuth 2.0 web-server flow: authorize (auto-approve or a consent page), token, revoke, userinfo,
//! discovery.

use std::time::{Duration, Instant};

use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::Digest;

use crate::error::{DriveError, OAuthError};
use crate::state::{AuthCode, DEFAULT_USER_EMAIL, DEFAULT_USER_NAME, EmulatorState, PkceMethod};
use crate::util::{self, Params};

const CODE_TTL: Duration = Duration::from_secs(600);

/// The error page Google shows (in the browser) when it cannot redirect back to the client.
fn error_page(error: &str, detail: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html><html><head><title>Error 400: {e}</title></head><body>\
         <h1>Access blocked: authorization error</h1><p>Error 400: {e}</p><p>{d}</p></body></html>",
        e = html_escape::encode_text(error),
        d = html_escape::encode_text(detail),
    );
    HttpResponse::BadRequest().insert_header((CONTENT_TYPE, "text/html; charset=utf-8")).body(body)
}

fn is_loopback(uri: &url::Url) -> bool {
    uri.scheme() == "http"
        && match uri.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

fn redirect_to(mut uri: url::Url, pairs: &[(&str, &str)]) -> HttpResponse {
    {
        let mut q = uri.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    HttpResponse::Found().insert_header((LOCATION, uri.to_string())).finish()
}

/// `GET /o/oauth2/v2/auth` (and the legacy `/o/oauth2/auth`).
pub async fn authorize(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    let p = Params::from_request(&req);
    let config = state.config();
    match p.get("client_id") {
        Some(id) if id == config.client_id => {}
        Some(_) => return error_page("invalid_client", "The OAuth client was not found."),
        None => return error_page("invalid_request", "Missing required parameter: client_id"),
    }
    let Some(redirect_raw) = p.non_empty("redirect_uri") else {
        return error_page("invalid_request", "Missing required parameter: redirect_uri");
    };
    let redirect_uri = match url::Url::parse(redirect_raw) {
        Ok(u) if is_loopback(&u) => u,
        _ => {
            return error_page(
                "redirect_uri_mismatch",
                "The redirect URI in the request does not match the ones authorized for the OAuth client \
                 (the emulator accepts http loopback URIs: 127.0.0.1, localhost, [::1]).",
            );
        }
    };
    let state_param = p.get("state");
    // From here on errors go back to the client, as RFC 6749 4.1.2.1 says.
    let fail = |error: &str| {
        let mut pairs = Vec::new();
        if let Some(s) = state_param {
            pairs.push(("state", s));
        }
        pairs.push(("error", error));
        redirect_to(redirect_uri.clone(), &pairs)
    };
    if p.get("response_type") != Some("code") {
        return fail("unsupported_response_type");
    }
    let Some(scope) = p.non_empty("scope") else {
        return fail("invalid_request");
    };
    let challenge = match (p.non_empty("code_challenge"), p.get("code_challenge_method")) {
        (None, _) => None,
        (Some(c), None | Some("plain")) => Some((PkceMethod::Plain, c.to_owned())),
        (Some(c), Some("S256")) => Some((PkceMethod::S256, c.to_owned())),
        (Some(_), Some(_)) => return fail("invalid_request"),
    };
    let pending = PendingAuth {
        redirect_uri: redirect_uri.clone(),
        redirect_raw: redirect_raw.to_owned(),
        state: state_param.map(str::to_owned),
        scope: scope.split_whitespace().collect::<Vec<_>>().join(" "),
        challenge,
        offline: p.get("access_type") == Some("offline"),
        login_hint: p.non_empty("login_hint").map(str::to_owned),
        expires_at: Instant::now() + CODE_TTL,
    };
    if !state.auto_approve() {
        // Nobody can answer a consent page that must not be shown.
        if p.get("prompt").is_some_and(|pr| pr.split_whitespace().any(|w| w == "none")) {
            return fail("interaction_required");
        }
        let id = util::random_token(32);
        let page = consent_page(&id, &pending, &config.client_id);
        state.data().pending_auth.insert(id, pending);
        return page;
    }
    let email = pending.login_hint.clone().filter(|h| h.contains('@')).unwrap_or_else(|| DEFAULT_USER_EMAIL.to_owned());
    approve(&state, pending, &email)
}

/// An authorization request waiting on the consent page.
#[derive(Debug, Clone)]
pub struct PendingAuth {
    redirect_uri: url::Url,
    redirect_raw: String,
    state: Option<String>,
    scope: String,
    challenge: Option<(PkceMethod, String)>,
    offline: bool,
    login_hint: Option<String>,
    expires_at: Instant,
}

/// Issues a code for `email` and redirects back to the client.
fn approve(state: &EmulatorState, pending: PendingAuth, email: &str) -> HttpResponse {
    let display = (email == DEFAULT_USER_EMAIL).then_some(DEFAULT_USER_NAME);
    let code = format!("4/0A{}", util::random_token(70));
    {
        let mut data = state.data();
        let user_id = data.ensure_user(email, display);
        data.codes.insert(
            code.clone(),
            AuthCode {
                client_id: state.config().client_id.clone(),
                redirect_uri: pending.redirect_raw.clone(),
                challenge: pending.challenge.clone(),
                user_id,
                scope: pending.scope.clone(),
                offline: pending.offline,
                expires_at: Instant::now() + CODE_TTL,
            },
        );
    }
    tracing::debug!(%email, "authorization code issued");
    let mut pairs = Vec::new();
    if let Some(s) = &pending.state {
        pairs.push(("state", s.as_str()));
    }
    pairs.push(("code", code.as_str()));
    pairs.push(("scope", pending.scope.as_str()));
    pairs.push(("authuser", "0"));
    pairs.push(("prompt", "consent"));
    redirect_to(pending.redirect_uri, &pairs)
}

/// The consent page: who signs in (from `login_hint`, editable) and Allow / Deny buttons.
fn consent_page(id: &str, pending: &PendingAuth, client_id: &str) -> HttpResponse {
    let e = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
    let email = pending.login_hint.as_deref().unwrap_or("");
    let scopes: String =
        pending.scope.split(' ').map(|sc| format!("<li>{}</li>", html_escape::encode_text(sc))).collect();
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts (emulator)</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto}}button{{margin-right:1rem;padding:.5rem 1.5rem}}</style></head>
<body><h1>Choose an account</h1><p><strong>{client}</strong> wants to access your Google Account:</p><ul>{scopes}</ul>
<form method="post" action="/o/oauth2/v2/auth/consent"><input type="hidden" name="request" value="{id}">
<label>Email <input type="email" name="email" id="email" value="{email}" required autocomplete="username"></label>
<p><button type="submit" name="decision" value="allow" id="allow">Allow</button><button type="submit" name="decision" value="deny" id="deny" formnovalidate>Deny</button></p>
</form></body></html>"#,
        client = html_escape::encode_text(client_id),
        id = e(id),
        email = e(email),
    );
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        // form-action also governs the redirect that answers the form: the client's redirect URI must be allowed.
        .insert_header((
            "Content-Security-Policy",
            format!(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}",
                pending.redirect_uri.origin().ascii_serialization()
            ),
        ))
        .body(body)
}

/// `POST /o/oauth2/v2/auth/consent`: the consent page's answer (`decision` allow or deny, `email`).
pub async fn consent(mut payload: web::Payload, state: web::Data<EmulatorState>) -> HttpResponse {
    let body = match util::read_body(&mut payload, 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return error_page("invalid_request", &e.detail().message),
    };
    let form = Params::parse(&body);
    let Some(id) = form.non_empty("request") else {
        return error_page("invalid_request", "Missing the authorization request.");
    };
    let Some(pending) = state.data().pending_auth.remove(id) else {
        return error_page("invalid_request", "The authorization request is unknown or was already answered.");
    };
    if Instant::now() >= pending.expires_at {
        return error_page("invalid_request", "The authorization request expired; start again.");
    }
    match form.get("decision") {
        Some("allow") => match form.non_empty("email").map(str::trim).filter(|e| e.contains('@')) {
            Some(email) => {
                let email = email.to_owned();
                approve(&state, pending, &email)
            }
            None => {
                // Ask again rather than lose the request.
                let id = util::random_token(32);
                let page = consent_page(&id, &pending, &state.config().client_id);
                state.data().pending_auth.insert(id, pending);
                page
            }
        },
        _ => {
            let mut pairs = Vec::new();
            if let Some(s) = &pending.state {
                pairs.push(("state", s.as_str()));
            }
            pairs.push(("error", "access_denied"));
            redirect_to(pending.redirect_uri, &pairs)
        }
    }
}

/// Client credentials from HTTP Basic (URL-encoded id and secret, as oauth2 sends) or the form.
fn client_credentials(req: &HttpRequest, form: &Params) -> Option<(String, String)> {
    if let Some(basic) = util::header(req, AUTHORIZATION.as_str())
        .and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")))
    {
        let decoded = STANDARD.decode(basic.trim()).ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let id = urlencoding::decode(id).ok()?.into_owned();
        let secret = urlencoding::decode(secret).ok()?.into_owned();
        return Some((id, secret));
    }
    let id = form.get("client_id")?;
    Some((id.to_owned(), form.get("client_secret").unwrap_or("").to_owned()))
}

fn token_reply(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-cache, no-store, max-age=0, must-revalidate"))
        .body(body.to_string())
}

fn pkce_ok(method: PkceMethod, challenge: &str, verifier: &str) -> bool {
    match method {
        PkceMethod::Plain => challenge == verifier,
        PkceMethod::S256 => URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes())) == challenge,
    }
}

/// `POST /token`: authorization_code and refresh_token grants.
pub async fn token(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, OAuthError> {
    let body = util::read_body(&mut payload, 64 * 1024)
        .await
        .map_err(|e| OAuthError::new("invalid_request", e.detail().message.clone()))?;
    let form = Params::parse(&body);
    let config = state.config();
    let Some((client_id, client_secret)) = client_credentials(&req, &form) else {
        return Err(OAuthError::new("invalid_request", "Could not determine client ID from request."));
    };
    if client_id != config.client_id {
        return Err(OAuthError::new("invalid_client", "The OAuth client was not found."));
    }
    if client_secret != config.client_secret {
        return Err(OAuthError::new("invalid_client", "Unauthorized"));
    }
    let ttl = config.access_token_ttl;
    match form.non_empty("grant_type") {
        Some("authorization_code") => {
            let code = form
                .non_empty("code")
                .ok_or_else(|| OAuthError::new("invalid_request", "Missing required parameter: code"))?;
            let redirect_uri = form.non_empty("redirect_uri");
            let verifier = form.non_empty("code_verifier");
            let mut data = state.data();
            // Codes are single use: any exchange attempt consumes it.
            let Some(grant) = data.codes.remove(code) else {
                let msg = if code.starts_with("4/") { "Bad Request" } else { "Malformed auth code." };
                return Err(OAuthError::new("invalid_grant", msg));
            };
            if Instant::now() >= grant.expires_at || grant.client_id != client_id {
                return Err(OAuthError::new("invalid_grant", "Bad Request"));
            }
            match redirect_uri {
                None => {
                    return Err(OAuthError::new("invalid_request", "Missing required parameter: redirect_uri"));
                }
                Some(r) if r != grant.redirect_uri => {
                    return Err(OAuthError::new("redirect_uri_mismatch", "Bad Request"));
                }
                Some(_) => {}
            }
            if let Some((method, challenge)) = &grant.challenge {
                match verifier {
                    None => return Err(OAuthError::new("invalid_grant", "Missing code verifier.")),
                    Some(v) if !pkce_ok(*method, challenge, v) => {
                        return Err(OAuthError::new("invalid_grant", "Invalid code verifier."));
                    }
                    Some(_) => {}
                }
            }
            let (access, refresh) = data.issue_grant(&grant.user_id, &client_id, &grant.scope, grant.offline, ttl);
            drop(data);
            let mut body = json!({
                "access_token": access,
                "expires_in": ttl.as_secs(),
                "token_type": "Bearer",
                "scope": grant.scope,
            });
            if let Some(r) = refresh {
                body["refresh_token"] = json!(r);
            }
            Ok(token_reply(body))
        }
        Some("refresh_token") => {
            let refresh = form
                .non_empty("refresh_token")
                .ok_or_else(|| OAuthError::new("invalid_request", "Missing required parameter: refresh_token"))?;
            let mut data = state.data();
            let grant_id = data
                .refresh_tokens
                .get(refresh)
                .copied()
                .ok_or_else(|| OAuthError::new("invalid_grant", "Token has been expired or revoked."))?;
            let scope = match data.grants.get(&grant_id) {
                Some(g) if g.client_id == client_id => g.scope.clone(),
                Some(_) => return Err(OAuthError::new("invalid_grant", "Unauthorized")),
                None => {
                    return Err(OAuthError::new("invalid_grant", "Token has been expired or revoked."));
                }
            };
            let access = data.issue_access_token(grant_id, ttl);
            drop(data);
            Ok(token_reply(json!({
                "access_token": access,
                "expires_in": ttl.as_secs(),
                "token_type": "Bearer",
                "scope": scope,
            })))
        }
        Some(other) => Err(OAuthError::new("unsupported_grant_type", format!("Invalid grant_type: {other}"))),
        None => Err(OAuthError::new("invalid_request", "Missing required parameter: grant_type")),
    }
}

/// `POST /revoke`: the token may come in the query or the form body; either token kills the grant.
pub async fn revoke(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<EmulatorState>,
) -> Result<HttpResponse, OAuthError> {
    let body = util::read_body(&mut payload, 64 * 1024)
        .await
        .map_err(|e| OAuthError::new("invalid_request", e.detail().message.clone()))?;
    let form = Params::parse(&body);
    let query = Params::from_request(&req);
    let token = query.non_empty("token").or_else(|| form.non_empty("token")).map(str::to_owned);
    let revoked = token.is_some_and(|t| state.data().revoke(&t));
    if revoked {
        Ok(HttpResponse::Ok().insert_header((CONTENT_TYPE, "application/json; charset=utf-8")).body("{}"))
    } else {
        Err(OAuthError::new("invalid_token", "Token expired or revoked"))
    }
}

/// The bearer token of a request (`Authorization: Bearer` or the `access_token` parameter).
pub fn bearer(req: &HttpRequest) -> Option<String> {
    if let Some(h) = util::header(req, AUTHORIZATION.as_str()) {
        let (scheme, token) = h.split_once(' ')?;
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(token.trim().to_owned());
        }
        return None;
    }
    Params::from_request(req).non_empty("access_token").map(str::to_owned)
}

/// The user id behind the request's access token, or Drive's 401.
pub fn authenticate(req: &HttpRequest, state: &EmulatorState) -> Result<String, DriveError> {
    let token = bearer(req).ok_or_else(DriveError::auth)?;
    state.data().user_for_token(&token).ok_or_else(DriveError::auth)
}

/// `GET /oauth2/v3/userinfo` and `/v1/userinfo`.
pub async fn userinfo(req: HttpRequest, state: web::Data<EmulatorState>) -> Result<HttpResponse, DriveError> {
    let user_id = authenticate(&req, &state)?;
    let data = state.data();
    let user = data.user(&user_id)?;
    let (given, family) = match user.display_name.split_once(' ') {
        Some((g, f)) => (g.to_owned(), f.to_owned()),
        None => (user.display_name.clone(), String::new()),
    };
    let body = json!({
        "sub": user.id,
        "name": user.display_name,
        "given_name": given,
        "family_name": family,
        "picture": "https://lh3.googleusercontent.com/a/default-user=s96-c",
        "email": user.email,
        "email_verified": true,
    });
    Ok(HttpResponse::Ok().insert_header((CONTENT_TYPE, "application/json; charset=UTF-8")).body(body.to_string()))
}

/// `GET /.well-known/openid-configuration`, with URLs on the origin the client used.
pub async fn discovery(req: HttpRequest) -> HttpResponse {
    let origin = util::origin(&req);
    let body = json!({
        "issuer": origin,
        "authorization_endpoint": format!("{origin}/o/oauth2/v2/auth"),
        "token_endpoint": format!("{origin}/token"),
        "userinfo_endpoint": format!("{origin}/v1/userinfo"),
        "revocation_endpoint": format!("{origin}/revoke"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"],
    });
    HttpResponse::Ok().insert_header((CONTENT_TYPE, "application/json; charset=utf-8")).body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_uris_only() {
        for ok in ["http://127.0.0.1:8080/cb", "http://localhost/cb", "http://[::1]:9/x"] {
            assert!(is_loopback(&url::Url::parse(ok).expect("url")), "{ok}");
        }
        for bad in ["https://127.0.0.1/cb", "http://example.com/cb", "http://10.0.0.1/"] {
            assert!(!is_loopback(&url::Url::parse(bad).expect("url")), "{bad}");
        }
    }

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        assert!(pkce_ok(
            PkceMethod::S256,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
    }
}
