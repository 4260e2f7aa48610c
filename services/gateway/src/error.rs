//! The one error shape of the API: `{"error": {"code", "message", "details"}}` with a stable code.
//! Internal causes are logged here and never put in a response body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    AuthError,
    ValidationError,
    NotFound,
    PermissionDenied,
    Conflict,
    PayloadTooLarge,
    RangeNotSatisfiable,
    PickerEndpointNotAllowed,
    PickerParamNotAllowed,
    RateLimited,
    ProviderError,
    ServiceUnavailable,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthError => "AUTH_ERROR",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RangeNotSatisfiable => "RANGE_NOT_SATISFIABLE",
            ErrorCode::PickerEndpointNotAllowed => "PICKER_ENDPOINT_NOT_ALLOWED",
            ErrorCode::PickerParamNotAllowed => "PICKER_PARAM_NOT_ALLOWED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ProviderError => "PROVIDER_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::ServerError => "SERVER_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::AuthError => StatusCode::UNAUTHORIZED,
            ErrorCode::ValidationError => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::PickerEndpointNotAllowed | ErrorCode::PickerParamNotAllowed => StatusCode::BAD_REQUEST,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ProviderError => StatusCode::BAD_GATEWAY,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), details: json!({}) }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    /// A validation error about one request field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(message).with_details(json!({ "field": field }))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AuthError, message)
    }

    /// An unexpected failure: the cause is logged with an id the client can quote; the body says nothing more.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        let incident = uuid::Uuid::new_v4();
        tracing::error!(%incident, %context, error = %cause, "internal error");
        Self::new(ErrorCode::ServerError, "An internal error occurred").with_details(json!({ "incident_id": incident }))
    }

    pub fn unavailable(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%context, error = %cause, "dependency unavailable");
        Self::new(ErrorCode::ServiceUnavailable, "The service is temporarily unavailable; retry shortly")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.code == ErrorCode::ServiceUnavailable {
            response.insert_header(("Retry-After", "5"));
        }
        if self.code == ErrorCode::RangeNotSatisfiable
            && let Some(size) = self.details.get("size_bytes").and_then(Value::as_u64)
        {
            response.insert_header(("Content-Range", format!("bytes */{size}")));
        }
        response.json(json!({
            "error": { "code": self.code.as_str(), "message": self.message, "details": self.details }
        }))
    }
}

impl From<ferry_db::DbError> for ApiError {
    fn from(err: ferry_db::DbError) -> Self {
        if err.is_unavailable() {
            ApiError::unavailable("database", &err)
        } else {
            ApiError::internal("database", &err)
        }
    }
}

impl From<ferry_drive::DriveError> for ApiError {
    fn from(err: ferry_drive::DriveError) -> Self {
        use ferry_drive::DriveError;
        match &err {
            DriveError::NotFound(_) => {
                ApiError::new(ErrorCode::NotFound, "The requested item was not found in the cloud drive")
            }
            DriveError::RateLimited { .. } | DriveError::DailyLimit { .. } => {
                ApiError::new(ErrorCode::RateLimited, "The cloud provider is rate limiting requests; retry later")
            }
            DriveError::Unauthorized => ApiError::new(
                ErrorCode::ProviderError,
                "The cloud provider rejected the connection's credentials; reconnect the account",
            ),
            DriveError::Forbidden { .. } => {
                ApiError::new(ErrorCode::PermissionDenied, "The cloud provider denied access to this item")
            }
            _ => {
                tracing::warn!(error = %err, "cloud provider call failed");
                ApiError::new(ErrorCode::ProviderError, "The cloud provider returned an error")
            }
        }
    }
}

impl From<ferry_credentials::CredentialError> for ApiError {
    fn from(err: ferry_credentials::CredentialError) -> Self {
        use ferry_credentials::CredentialError;
        match err {
            CredentialError::NotFound | CredentialError::Disconnected => ApiError::not_found("Connection"),
            CredentialError::NeedsReauthorization => {
                ApiError::new(ErrorCode::ProviderError, "The cloud account revoked access; connect it again")
                    .with_details(json!({ "reason": "needs_reauthorization" }))
            }
            CredentialError::Refresh(err) => {
                tracing::warn!(error = %err, "token refresh failed");
                ApiError::new(ErrorCode::ProviderError, "Refreshing the cloud provider token failed; retry later")
            }
            CredentialError::Db(err) => err.into(),
            other => ApiError::internal("credentials", &other),
        }
    }
}

/// Turns actix's own extractor failures (bad JSON, bad query) into the API's error shape.
pub fn json_error_handler(err: actix_web::error::JsonPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, "Request body is too large")
        }
        JsonPayloadError::ContentType => ApiError::validation("Content-Type must be application/json"),
        _ => ApiError::validation(format!("Invalid JSON body: {err}")),
    };
    api.into()
}

pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::validation(format!("Invalid query parameters: {err}")).into()
}

pub fn path_error_handler(err: actix_web::error::PathError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::validation(format!("Invalid path: {err}")).into()
}

pub type ApiResult<T> = Result<T, ApiError>;
