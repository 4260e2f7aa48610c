//! The one error shape of the API: `{"error": {"code", "message", "details"}}` with a stable code.
//! Internal causes are logged here and never put in a response body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// `{"error": {"code", "message", "details"}}`: the one error shape of the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: AUTH_ERROR, VALIDATION_ERROR, NOT_FOUND, METHOD_NOT_ALLOWED, PERMISSION_DENIED, CONFLICT,
    /// PAYLOAD_TOO_LARGE, RANGE_NOT_SATISFIABLE, PICKER_ENDPOINT_NOT_ALLOWED, PICKER_PARAM_NOT_ALLOWED, RATE_LIMITED,
    /// PROVIDER_ERROR, PROVIDER_TIMEOUT, SERVICE_UNAVAILABLE, SERVER_ERROR.
    #[schema(example = "VALIDATION_ERROR")]
    pub code: &'static str,
    pub message: String,
    pub details: ErrorDetails,
}

/// What else is known about an error; only the members that apply are present (`{}` when none do).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ErrorDetails {
    /// The offending request field (`files[3].id`, `params`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The query parameter refused by the picker proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// What would have been accepted (methods for a 405, endpoints or parameters for the picker proxy, export
    /// formats for a Workspace type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// The Google Workspace type an export format was refused for.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(rename = "type")]
    pub kind: Option<String>,
    /// Drive ids sent more than once in one import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_ids: Option<Vec<String>>,
    /// Image ids that name no file of the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_ids: Option<Vec<String>>,
    /// Image ids whose files have no content yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_ready_ids: Option<Vec<String>>,
    /// Unfinished jobs that still use a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_ids: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The status that made the request impossible (a job's or a file's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A size in bytes: the file's for a 416, the value's for a 413.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// What a folder still holds (a folder that is not empty cannot be deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_count: Option<i64>,
    /// A 500's reference for the operators' logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    pub incident_id: Option<String>,
    /// A machine-readable cause (`needs_reauthorization`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ErrorDetails {
    /// Details naming one request field.
    pub fn field(field: &str) -> Self {
        ErrorDetails { field: Some(field.to_owned()), ..ErrorDetails::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    AuthError,
    ValidationError,
    NotFound,
    MethodNotAllowed,
    PermissionDenied,
    Conflict,
    NotConnected,
    ConnectionNeedsReauth,
    PayloadTooLarge,
    RangeNotSatisfiable,
    PickerEndpointNotAllowed,
    PickerParamNotAllowed,
    RateLimited,
    ProviderError,
    ProviderTimeout,
    ServiceUnavailable,
    ServerError,
}

impl ErrorCode {
    /// Every code, for the table in the README (a test keeps the two equal).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::AuthError,
        ErrorCode::ValidationError,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PermissionDenied,
        ErrorCode::Conflict,
        ErrorCode::NotConnected,
        ErrorCode::ConnectionNeedsReauth,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RangeNotSatisfiable,
        ErrorCode::PickerEndpointNotAllowed,
        ErrorCode::PickerParamNotAllowed,
        ErrorCode::RateLimited,
        ErrorCode::ProviderError,
        ErrorCode::ProviderTimeout,
        ErrorCode::ServiceUnavailable,
        ErrorCode::ServerError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthError => "AUTH_ERROR",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::NotConnected => "NOT_CONNECTED",
            ErrorCode::ConnectionNeedsReauth => "CONNECTION_NEEDS_REAUTH",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RangeNotSatisfiable => "RANGE_NOT_SATISFIABLE",
            ErrorCode::PickerEndpointNotAllowed => "PICKER_ENDPOINT_NOT_ALLOWED",
            ErrorCode::PickerParamNotAllowed => "PICKER_PARAM_NOT_ALLOWED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ProviderError => "PROVIDER_ERROR",
            ErrorCode::ProviderTimeout => "PROVIDER_TIMEOUT",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::ServerError => "SERVER_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::AuthError => StatusCode::UNAUTHORIZED,
            ErrorCode::ValidationError => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::Conflict | ErrorCode::NotConnected | ErrorCode::ConnectionNeedsReauth => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::PickerEndpointNotAllowed | ErrorCode::PickerParamNotAllowed => StatusCode::BAD_REQUEST,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ProviderError => StatusCode::BAD_GATEWAY,
            ErrorCode::ProviderTimeout => StatusCode::GATEWAY_TIMEOUT,
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
    /// Boxed: most errors carry none, and the `Err` side of every handler's result stays small.
    pub details: Box<ErrorDetails>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), details: Box::default() }
    }

    pub fn with_details(mut self, details: ErrorDetails) -> Self {
        self.details = Box::new(details);
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    /// A validation error about one request field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(message).with_details(ErrorDetails::field(field))
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
        Self::new(ErrorCode::ServerError, "An internal error occurred")
            .with_details(ErrorDetails { incident_id: Some(incident.to_string()), ..ErrorDetails::default() })
    }

    /// The cloud provider did not answer in time (connect or read timeout): the client may retry.
    pub fn provider_timeout(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%context, error = %cause, "cloud provider timed out");
        Self::new(
            ErrorCode::ProviderTimeout,
            "The cloud provider did not answer in time; retry shortly (nothing was changed on Ferry's side)",
        )
    }

    pub fn unavailable(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%context, error = %cause, "dependency unavailable");
        Self::new(ErrorCode::ServiceUnavailable, "The service is temporarily unavailable; retry shortly")
    }
}

impl ApiError {
    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str(),
                message: self.message.clone(),
                details: (*self.details).clone(),
            },
        }
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
        if self.code == ErrorCode::MethodNotAllowed
            && let Some(methods) = &self.details.allowed
        {
            response.insert_header(("Allow", methods.join(", ")));
        }
        if self.code == ErrorCode::RangeNotSatisfiable
            && let Some(size) = self.details.size_bytes
        {
            response.insert_header(("Content-Range", format!("bytes */{size}")));
        }
        response.json(self.body())
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
            DriveError::Timeout(_) => ApiError::provider_timeout("drive", &err),
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
                    .with_details(ErrorDetails {
                        reason: Some("needs_reauthorization".to_owned()),
                        ..ErrorDetails::default()
                    })
            }
            CredentialError::Refresh(err @ ferry_drive::OAuthError::Timeout(_)) => {
                ApiError::provider_timeout("token refresh", &err)
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
