//! Error replies in the two shapes Google uses: the Drive API envelope and the OAuth `{error, error_description}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// A Drive-API-shaped error: `{"error":{"code","message","errors":[{...}]}}` (boxed: handlers return it a lot).
#[derive(Debug, thiserror::Error)]
#[error("{} {}/{}: {}", .0.status, .0.domain, .0.reason, .0.message)]
pub struct DriveError(Box<DriveErrorDetail>);

/// What a [`DriveError`] says.
#[derive(Debug)]
pub struct DriveErrorDetail {
    pub status: StatusCode,
    pub message: String,
    pub domain: &'static str,
    pub reason: &'static str,
    /// `(location, locationType)`, e.g. `("fileId", "parameter")`.
    pub location: Option<(&'static str, &'static str)>,
    /// Google adds a gRPC-style `status` to some errors (401s carry `UNAUTHENTICATED`).
    pub grpc_status: Option<&'static str>,
    pub headers: Vec<(HeaderName, String)>,
}

impl DriveError {
    pub fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(DriveErrorDetail {
            status,
            message: message.into(),
            domain: "global",
            reason,
            location: None,
            grpc_status: None,
            headers: Vec::new(),
        }))
    }

    pub fn detail(&self) -> &DriveErrorDetail {
        &self.0
    }

    pub fn at(mut self, location: &'static str, location_type: &'static str) -> Self {
        self.0.location = Some((location, location_type));
        self
    }

    /// Errors about quotas live in `usageLimits` rather than `global`.
    pub fn in_domain(mut self, domain: &'static str) -> Self {
        self.0.domain = domain;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: String) -> Self {
        self.0.headers.push((name, value));
        self
    }

    pub fn not_found(file_id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "notFound", format!("File not found: {file_id}.")).at("fileId", "parameter")
    }

    pub fn auth() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )
        .at("Authorization", "header")
        .with_header(
            actix_web::http::header::WWW_AUTHENTICATE,
            r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#.to_owned(),
        );
        e.0.grpc_status = Some("UNAUTHENTICATED");
        e
    }

    /// 400 `invalid` for a bad parameter value (`q`, `pageSize`, `pageToken`, ...).
    pub fn invalid(parameter: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message).at(parameter, "parameter")
    }

    pub fn required(parameter: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "required", message).at(parameter, "parameter")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "badRequest", message)
    }

    pub fn invalid_fields(name: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidParameter", format!("Invalid field selection {name}"))
            .at("fields", "parameter")
    }

    pub fn duplicate_id() -> Self {
        Self::new(StatusCode::CONFLICT, "duplicate", "A file already exists with the provided ID.")
    }

    /// 500 internalError for the emulator's own failures (disk I/O), with the cause in the message.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internalError", format!("Internal Error: {err}"))
    }

    pub fn payload(err: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Failed to read request body: {err}"))
    }

    fn body(&self) -> serde_json::Value {
        let d = &self.0;
        let mut item = json!({
            "message": d.message,
            "domain": d.domain,
            "reason": d.reason,
        });
        if let Some((location, location_type)) = d.location {
            item["location"] = json!(location);
            item["locationType"] = json!(location_type);
        }
        let mut error = json!({
            "code": d.status.as_u16(),
            "message": d.message,
            "errors": [item],
        });
        if let Some(status) = d.grpc_status {
            error["status"] = json!(status);
        }
        json!({ "error": error })
    }
}

impl ResponseError for DriveError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.0.status);
        res.insert_header((CONTENT_TYPE, "application/json; charset=UTF-8"));
        for (name, value) in &self.0.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                res.insert_header((name.clone(), value));
            }
        }
        res.body(self.body().to_string())
    }
}

/// An OAuth token-endpoint error: `{"error": "...", "error_description": "..."}`.
#[derive(Debug, thiserror::Error)]
#[error("{status} {error}: {description}")]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
        Self { status, error, description: description.into() }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header((CONTENT_TYPE, "application/json; charset=utf-8"))
            .insert_header(("Cache-Control", "no-store"))
            .body(json!({"error": self.error, "error_description": self.description}).to_string())
    }
}
