use std::net::TcpListener;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use drive_emulator::{EmulatorConfig, RunningEmulator};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Digest;

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";
pub const SCOPE: &str = "https://www.googleapis.com/auth/drive openid email";

pub struct TestEmulator {
    pub emu: RunningEmulator,
    pub http: reqwest::Client,
}

pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
}

pub async fn start() -> TestEmulator {
    start_with(EmulatorConfig::default()).await
}

pub async fn start_with(config: EmulatorConfig) -> TestEmulator {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let emu = drive_emulator::spawn(config, listener).await.expect("spawn");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    TestEmulator { emu, http }
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Query parameters of a redirect's Location header.
pub fn location_params(res: &reqwest::Response) -> Vec<(String, String)> {
    let location = res.headers().get("location").expect("location header").to_str().expect("ascii location");
    let url = url::Url::parse(location).expect("absolute location");
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl TestEmulator {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url())
    }

    /// Runs the authorize step and returns the code.
    pub async fn code(&self, email: &str, verifier: &str, offline: bool) -> String {
        let mut query = vec![
            ("client_id", "ferry-dev-client".to_owned()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("response_type", "code".to_owned()),
            ("scope", SCOPE.to_owned()),
            ("state", "st-1".to_owned()),
            ("login_hint", email.to_owned()),
            ("code_challenge", s256(verifier)),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if offline {
            query.push(("access_type", "offline".to_owned()));
        }
        let res = self.http.get(self.url("/o/oauth2/v2/auth")).query(&query).send().await.expect("authorize");
        assert_eq!(res.status(), StatusCode::FOUND);
        let params = location_params(&res);
        assert_eq!(param(&params, "state"), Some("st-1"));
        param(&params, "code").expect("code").to_owned()
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .basic_auth("ferry-dev-client", Some("ferry-dev-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("token request")
    }

    /// A full offline authorization for `email`.
    pub async fn login(&self, email: &str) -> Tokens {
        let verifier = "v".repeat(43) + email.split('@').next().unwrap_or("x");
        let code = self.code(email, &verifier, true).await;
        let res = self.exchange(&code, &verifier).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.expect("token json");
        Tokens {
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().map(str::to_owned),
        }
    }

    pub async fn get_json(&self, token: &str, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let res = self.http.get(self.url(path)).bearer_auth(token).query(query).send().await.expect("get");
        let status = res.status();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }
}

/// Asserts a Google-shaped error with this status and reason.
pub fn assert_google_error(status: StatusCode, body: &Value, want_status: u16, reason: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_status, "{body}");
    assert_eq!(body["error"]["errors"][0]["reason"], reason, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}
