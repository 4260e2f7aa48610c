use drive_emulator::EmulatorConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{REDIRECT_URI, SCOPE, assert_google_error, location_params, param, start, start_with};

#[tokio::test]
async fn code_flow_with_pkce_s256() {
    let t = start().await;
    let verifier = "a-very-long-verifier-0123456789-0123456789-abc";

    // A wrong verifier is invalid_grant and uses the code up.
    let code = t.code("alice@ferry.test", verifier, true).await;
    let res = t.exchange(&code, "not-the-verifier-0123456789-0123456789-xyz").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers()["content-type"].to_str().expect("ct").starts_with("application/json"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].is_string());
    let res = t.exchange(&code, verifier).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The right verifier gets tokens (client auth by HTTP Basic).
    let code = t.code("alice@ferry.test", verifier, true).await;
    let res = t.exchange(&code, verifier).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().expect("ct").starts_with("application/json"));
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["scope"], SCOPE);
    assert!(body["refresh_token"].as_str().is_some_and(|r| !r.is_empty()));
    let access = body["access_token"].as_str().expect("access").to_owned();

    // Codes are single use.
    let res = t.exchange(&code, verifier).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");

    // The token identifies the user who logged in.
    let (status, info) = t.get_json(&access, "/oauth2/v3/userinfo", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["email"], "alice@ferry.test");
    assert_eq!(info["email_verified"], true);
    let sub = t.emu.state().ensure_user("alice@ferry.test", "ignored");
    assert_eq!(info["sub"], sub.as_str());
    let (status, info) = t.get_json(&access, "/v1/userinfo", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], sub.as_str());
    t.emu.stop().await;
}

#[tokio::test]
async fn refresh_gives_no_new_refresh_token_and_revoke_kills_the_grant() {
    let t = start().await;
    let tokens = t.login("bob@ferry.test").await;
    let refresh = tokens.refresh.expect("offline access gives a refresh token");

    // Refresh with form-body client credentials.
    let res = t
        .http
        .post(t.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", "ferry-dev-client"),
            ("client_secret", "ferry-dev-secret"),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let fresh = body["access_token"].as_str().expect("access").to_owned();
    assert_ne!(fresh, tokens.access);
    let (status, about) = t.get_json(&fresh, "/drive/v3/about", &[("fields", "user")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(about["user"]["emailAddress"], "bob@ferry.test");

    // Revoking the refresh token (token in the form) kills every token of the grant.
    let res = t.http.post(t.url("/revoke")).form(&[("token", refresh.as_str())]).send().await.expect("revoke");
    assert_eq!(res.status(), StatusCode::OK);
    for access in [&tokens.access, &fresh] {
        let (status, body) = t.get_json(access, "/drive/v3/files", &[]).await;
        assert_google_error(status, &body, 401, "authError");
    }
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");

    // Revoking again (token in the query) is invalid_token.
    let res = t.http.post(t.url("/revoke")).query(&[("token", refresh.as_str())]).send().await.expect("revoke");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");

    // Revoking by access token works too.
    let other = t.login("bob@ferry.test").await;
    let res = t.http.post(t.url("/revoke")).query(&[("token", other.access.as_str())]).send().await.expect("revoke");
    assert_eq!(res.status(), StatusCode::OK);
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", other.refresh.as_deref().expect("refresh"))])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    t.emu.stop().await;
}

#[tokio::test]
async fn expired_tokens_get_google_shaped_401s() {
    let t = start().await;
    let tokens = t.login("carol@ferry.test").await;
    let (status, _) = t.get_json(&tokens.access, "/drive/v3/files", &[]).await;
    assert_eq!(status, StatusCode::OK);

    t.emu.state().expire_access_tokens();
    let res = t.http.get(t.url("/drive/v3/files")).bearer_auth(&tokens.access).send().await.expect("list");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().contains_key("www-authenticate"));
    let body: Value = res.json().await.expect("json");
    assert_google_error(StatusCode::UNAUTHORIZED, &body, 401, "authError");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["errors"][0]["location"], "Authorization");
    assert_eq!(body["error"]["errors"][0]["domain"], "global");

    // No token at all, and a made-up one.
    let (status, body) = t.get_json("", "/drive/v3/files", &[]).await;
    assert_google_error(status, &body, 401, "authError");
    let (status, body) = t.get_json("ya29.nonsense", "/oauth2/v3/userinfo", &[]).await;
    assert_google_error(status, &body, 401, "authError");

    // A refreshed token works; the admin route expires it again.
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens.refresh.as_deref().expect("refresh"))])
        .send()
        .await
        .expect("refresh");
    let body: Value = res.json().await.expect("json");
    let fresh = body["access_token"].as_str().expect("access").to_owned();
    let (status, _) = t.get_json(&fresh, "/drive/v3/files", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let res = t.http.post(t.url("/__emulator/tokens/expire")).send().await.expect("expire");
    assert_eq!(res.status(), StatusCode::OK);
    let (status, body) = t.get_json(&fresh, "/drive/v3/files", &[]).await;
    assert_google_error(status, &body, 401, "authError");

    // Request counts per path.
    assert!(t.emu.state().request_count("/drive/v3/files") >= 4);
    let counts: Value =
        t.http.get(t.url("/__emulator/requests")).send().await.expect("counts").json().await.expect("json");
    assert_eq!(counts["/token"], 2);
    t.emu.stop().await;
}

#[tokio::test]
async fn authorize_and_token_errors() {
    let t = start().await;
    let auth = |redirect: &str, client: &str| {
        t.http.get(t.url("/o/oauth2/auth")).query(&[
            ("client_id", client),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", "s"),
        ])
    };
    // Non-loopback redirect URIs and unknown clients get an error page, not a redirect.
    for (redirect, client) in [
        ("https://evil.example/cb", "ferry-dev-client"),
        ("http://10.1.2.3/cb", "ferry-dev-client"),
        (REDIRECT_URI, "someone-else"),
    ] {
        let res = auth(redirect, client).send().await.expect("authorize");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().get("location").is_none());
        assert!(res.text().await.expect("text").contains("Error 400"));
    }
    // localhost and [::1] are fine; without access_type=offline there is no refresh token.
    for redirect in ["http://localhost:8080/cb", "http://[::1]:8080/cb?keep=1"] {
        let res = auth(redirect, "ferry-dev-client").send().await.expect("authorize");
        assert_eq!(res.status(), StatusCode::FOUND);
        let params = location_params(&res);
        assert_eq!(param(&params, "scope"), Some(SCOPE));
        let code = param(&params, "code").expect("code").to_owned();
        if redirect.ends_with("keep=1") {
            assert_eq!(param(&params, "keep"), Some("1"));
        }
        // The redirect URI must match the authorize request.
        let res = t
            .http
            .post(t.url("/token"))
            .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://localhost:1/other"),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"], "redirect_uri_mismatch");
    }
    let res = auth(REDIRECT_URI, "ferry-dev-client").send().await.expect("authorize");
    let code = param(&location_params(&res), "code").expect("code").to_owned();
    let res = t
        .http
        .post(t.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", "ferry-dev-client"),
            ("client_secret", "ferry-dev-secret"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    // The default user when there is no login_hint.
    let access = body["access_token"].as_str().expect("access");
    let (_, info) = t.get_json(access, "/v1/userinfo", &[]).await;
    assert_eq!(info["email"], "demo@ferry.test");
    assert_eq!(info["name"], "Demo User");
    assert_eq!(info["given_name"], "Demo");
    assert_eq!(info["family_name"], "User");

    // Wrong secret, unknown grant type, garbage code.
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("nope"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("token");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", "garbage"), ("redirect_uri", REDIRECT_URI)])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
    let res = t
        .http
        .post(t.url("/token"))
        .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .expect("token");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");

    // Discovery points at this origin.
    let (status, doc) = t.get_json("", "/.well-known/openid-configuration", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["token_endpoint"], t.url("/token"));
    assert_eq!(doc["authorization_endpoint"], t.url("/o/oauth2/v2/auth"));
    assert_eq!(doc["revocation_endpoint"], t.url("/revoke"));
    assert_eq!(doc["userinfo_endpoint"], t.url("/v1/userinfo"));
    t.emu.stop().await;
}

async fn consent_page(t: &crate::helpers::TestEmulator, state: &str, login_hint: Option<&str>) -> String {
    let mut query = vec![
        ("client_id", "ferry-dev-client"),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", SCOPE),
        ("state", state),
        ("access_type", "offline"),
    ];
    if let Some(h) = login_hint {
        query.push(("login_hint", h));
    }
    let res = t.http.get(t.url("/o/oauth2/v2/auth")).query(&query).send().await.expect("authorize");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    res.text().await.expect("page")
}

/// The hidden `request` field of the consent form.
fn request_id(page: &str) -> String {
    let start = page.find(r#"name="request" value=""#).expect("request field") + r#"name="request" value=""#.len();
    page[start..].split('"').next().expect("value").to_owned()
}

async fn answer(t: &crate::helpers::TestEmulator, form: &[(&str, &str)]) -> reqwest::Response {
    t.http.post(t.url("/o/oauth2/v2/auth/consent")).form(form).send().await.expect("consent")
}

#[tokio::test]
async fn consent_page_deny_redirects_with_access_denied() {
    let t = start_with(EmulatorConfig { auto_approve: false, ..EmulatorConfig::default() }).await;
    let page = consent_page(&t, "s-9", Some("den<i>ed@ferry.test")).await;
    assert!(page.contains(r#"id="allow""#) && page.contains(r#"id="deny""#), "{page}");
    // The hint is shown escaped, never as markup.
    assert!(page.contains("den&lt;i&gt;ed@ferry.test") && !page.contains("den<i>"), "{page}");
    let id = request_id(&page);
    let res = answer(&t, &[("request", &id), ("decision", "deny"), ("email", "")]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let params = location_params(&res);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("s-9"));
    assert_eq!(param(&params, "code"), None);
    // Answered once only.
    let res = answer(&t, &[("request", &id), ("decision", "allow"), ("email", "x@ferry.test")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // prompt=none cannot show the page.
    let res = t
        .http
        .get(t.url("/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "ferry-dev-client"),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", "s-10"),
            ("prompt", "none"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(param(&location_params(&res), "error"), Some("interaction_required"));
    t.emu.stop().await;
}

#[tokio::test]
async fn consent_page_allow_signs_in_the_typed_or_hinted_user() {
    let t = start_with(EmulatorConfig { auto_approve: false, ..EmulatorConfig::default() }).await;
    // Typed: no hint, the user enters an email.
    let page = consent_page(&t, "s-1", None).await;
    let res =
        answer(&t, &[("request", &request_id(&page)), ("decision", "allow"), ("email", "typed@ferry.test")]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let params = location_params(&res);
    assert_eq!(param(&params, "state"), Some("s-1"));
    let code = param(&params, "code").expect("code").to_owned();
    let res = t
        .http
        .post(t.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", "ferry-dev-client"),
            ("client_secret", "ferry-dev-secret"),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.expect("json");
    assert!(tokens["refresh_token"].is_string());
    let (s, me) = t.get_json(tokens["access_token"].as_str().expect("access"), "/oauth2/v3/userinfo", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "typed@ferry.test");

    // Hinted: the field is pre-filled; an Allow without an email shows the page again.
    let page = consent_page(&t, "s-2", Some("hinted@ferry.test")).await;
    assert!(page.contains(r#"value="hinted@ferry.test""#), "{page}");
    let res = answer(&t, &[("request", &request_id(&page)), ("decision", "allow"), ("email", " ")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again = res.text().await.expect("page");
    let res =
        answer(&t, &[("request", &request_id(&again)), ("decision", "allow"), ("email", "hinted@ferry.test")]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    assert!(param(&location_params(&res), "code").is_some());

    // Switched at run time through the admin API.
    let res = t.http.patch(t.url("/__emulator/oauth")).json(&serde_json::json!({"auto_approve": true})).send().await;
    assert_eq!(res.expect("admin").status(), StatusCode::OK);
    assert!(t.emu.state().auto_approve());
    let code = t.code("auto@ferry.test", &"v".repeat(50), false).await;
    assert!(!code.is_empty());
    t.emu.stop().await;
}
