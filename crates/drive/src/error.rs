//! Typed errors for the OAuth and Drive clients, and their classification from Google's
//! JSON error bodies.

use std::error::Error as _;

use reqwest::StatusCode;
use serde::Deserialize;

/// Failure of an OAuth call (authorization-code exchange, refresh, revoke, userinfo).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The grant is revoked, expired or already used: the connection needs re-authorisation.
    #[error("oauth grant rejected (invalid_grant): {0}")]
    InvalidGrant(String),
    /// The client id/secret pair was rejected: a configuration problem on our side.
    #[error("oauth client rejected: {0}")]
    InvalidClient(String),
    /// Any other error the provider reported.
    #[error("oauth provider error (HTTP {status}): {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Provider { status: u16, error: String, description: Option<String> },
    /// The access token was not accepted (userinfo).
    #[error("access token rejected by the provider")]
    Unauthorized,
    /// The request did not complete (connect, TLS, reset).
    #[error("oauth transport error: {0}")]
    Transport(String),
    /// No connection within the connect timeout, or the provider went silent past the read timeout.
    #[error("oauth provider timed out: {0}")]
    Timeout(String),
    /// The provider answered with something we could not understand.
    #[error("oauth response could not be decoded: {0}")]
    Decode(String),
    /// Our own configuration is unusable (bad endpoint URL, bad redirect URI).
    #[error("oauth configuration error: {0}")]
    Config(String),
}

impl OAuthError {
    /// True when the same call may succeed later without any change (transport failures,
    /// provider 5xx and 429).
    pub fn is_retryable(&self) -> bool {
        match self {
            OAuthError::Transport(_) | OAuthError::Timeout(_) => true,
            OAuthError::Provider { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Failure of a Drive v3 call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriveError {
    /// The file does not exist or the user has no access to it (Drive does not distinguish).
    #[error("drive file not found: {0}")]
    NotFound(String),
    /// The access token is missing, invalid or expired: refresh it and retry once.
    #[error("drive rejected the access token")]
    Unauthorized,
    /// 429, or 403 with `userRateLimitExceeded` / `rateLimitExceeded`: back off and retry, not before
    /// `retry_after` when the answer had a `Retry-After` header (in seconds).
    #[error("drive rate limit ({reason})")]
    RateLimited { reason: String, retry_after: Option<std::time::Duration> },
    /// A daily cap (for example the 750 GB/day upload limit): defer, do not retry in a loop.
    #[error("drive daily limit reached ({reason})")]
    DailyLimit { reason: String },
    /// The user's Drive is full.
    #[error("drive storage quota exceeded")]
    StorageQuota,
    /// 5xx (or 408) from Drive: retry with backoff.
    #[error("drive backend error (HTTP {status})")]
    Backend { status: u16 },
    /// A file with the requested (pre-generated) id already exists.
    #[error("drive file already exists")]
    AlreadyExists,
    /// Any other 403 (for example `fileNotDownloadable`, `insufficientFilePermissions`).
    #[error("drive forbidden ({reason}): {message}")]
    Forbidden { reason: String, message: String },
    /// Any other 4xx (for example `invalid`, `requestedRangeNotSatisfiable`).
    #[error("drive rejected the request ({reason}): {message}")]
    BadRequest { reason: String, message: String },
    /// The resumable upload session is gone (404/410): start a new session.
    #[error("drive upload session expired")]
    SessionExpired,
    /// The request did not complete (connect, TLS, reset, body cut short).
    #[error("drive transport error: {0}")]
    Transport(String),
    /// No connection within the connect timeout, or Drive went silent past the read timeout.
    #[error("drive timed out: {0}")]
    Timeout(String),
    /// Drive answered with something we could not understand.
    #[error("drive response could not be decoded: {0}")]
    Decode(String),
}

impl DriveError {
    /// True for failures Google documents as retryable with backoff: 429, the two 403
    /// rate-limit reasons, 5xx, and transport failures.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DriveError::RateLimited { .. }
                | DriveError::Backend { .. }
                | DriveError::Transport(_)
                | DriveError::Timeout(_)
        )
    }

    /// Google's error reason (`errors[0].reason`, such as `userRateLimitExceeded`) where the answer carried one,
    /// else the documented reason for the status (`notFound`, `authError`, `backendError`, ...). A metrics label:
    /// a small fixed vocabulary, never free text.
    pub fn reason(&self) -> &str {
        match self {
            DriveError::NotFound(_) => "notFound",
            DriveError::Unauthorized => "authError",
            DriveError::RateLimited { reason, .. }
            | DriveError::DailyLimit { reason }
            | DriveError::Forbidden { reason, .. }
            | DriveError::BadRequest { reason, .. } => reason_label(reason),
            DriveError::StorageQuota => "storageQuotaExceeded",
            DriveError::Backend { .. } => "backendError",
            DriveError::AlreadyExists => "alreadyExists",
            DriveError::SessionExpired => "sessionExpired",
            DriveError::Transport(_) => "transport",
            DriveError::Timeout(_) => "timeout",
            DriveError::Decode(_) => "decode",
        }
    }

    /// Stable snake_case code for item errors shown to users and stored in the database.
    pub fn code(&self) -> &'static str {
        match self {
            DriveError::NotFound(_) => "drive_not_found",
            DriveError::Unauthorized => "drive_unauthorized",
            DriveError::RateLimited { .. } => "drive_rate_limited",
            DriveError::DailyLimit { .. } => "drive_daily_limit",
            DriveError::StorageQuota => "drive_storage_quota",
            DriveError::Backend { .. } => "drive_backend_error",
            DriveError::AlreadyExists => "drive_already_exists",
            DriveError::Forbidden { .. } => "drive_forbidden",
            DriveError::BadRequest { .. } => "drive_bad_request",
            DriveError::SessionExpired => "drive_session_expired",
            DriveError::Transport(_) => "drive_transport",
            DriveError::Timeout(_) => "drive_timeout",
            DriveError::Decode(_) => "drive_decode",
        }
    }
}

/// `{"error": {"code", "message", "errors": [{"reason", "message", ...}]}}`
#[derive(Debug, Default, Deserialize)]
struct GoogleErrorBody {
    #[serde(default)]
    error: GoogleError,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleError {
    message: String,
    errors: Vec<GoogleErrorItem>,
    status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GoogleErrorItem {
    reason: String,
    message: String,
}

/// Longest message kept from an error body: enough to diagnose, bounded for logs and DB rows.
const MAX_MESSAGE_LEN: usize = 300;

/// Turns a non-success Drive response into a typed error. `body` is the (bounded) error body.
///
/// `retry_after` is the answer's `Retry-After`, kept on rate-limit refusals.
pub(crate) fn classify_drive_error(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<std::time::Duration>,
) -> DriveError {
    // A non-JSON body (proxy error page) still classifies by status.
    let parsed: GoogleErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let first = parsed.error.errors.first();
    let reason = first
        .map(|e| e.reason.clone())
        .filter(|r| !r.is_empty())
        .or_else(|| parsed.error.status.clone())
        .unwrap_or_default();
    let message = first.map(|e| e.message.as_str()).filter(|m| !m.is_empty()).unwrap_or(parsed.error.message.as_str());
    let message = truncate(message);
    let reason_or = |fallback: &str| {
        if reason.is_empty() { fallback.to_owned() } else { reason.clone() }
    };

    match status.as_u16() {
        401 => DriveError::Unauthorized,
        404 => DriveError::NotFound(if message.is_empty() { "not found".to_owned() } else { message }),
        409 => DriveError::AlreadyExists,
        429 => DriveError::RateLimited { reason: reason_or("rateLimitExceeded"), retry_after },
        403 => match reason.as_str() {
            "userRateLimitExceeded" | "rateLimitExceeded" => DriveError::RateLimited { reason, retry_after },
            "dailyLimitExceeded" | "uploadLimitExceeded" | "dailyLimitExceededUnreg" | "quotaExceeded" => {
                DriveError::DailyLimit { reason }
            }
            "storageQuotaExceeded" => DriveError::StorageQuota,
            _ => DriveError::Forbidden { reason: reason_or("forbidden"), message },
        },
        408 | 500..=599 => DriveError::Backend { status: status.as_u16() },
        code => DriveError::BadRequest { reason: reason_or(&format!("http_{code}")), message },
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE_LEN {
        return s.to_owned();
    }
    let mut end = MAX_MESSAGE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Describes a reqwest failure without its URL (a session URI is a credential) and with its
/// causes, which carry the useful part ("connection refused", "operation timed out").
/// A failed request as a [`DriveError`]: `Timeout` when a connect or read timeout fired, else `Transport`.
pub(crate) fn drive_transport(err: reqwest::Error) -> DriveError {
    if err.is_timeout() {
        DriveError::Timeout(describe_reqwest(err))
    } else {
        DriveError::Transport(describe_reqwest(err))
    }
}

/// A failed request as an [`OAuthError`]: `Timeout` when a connect or read timeout fired, else `Transport`.
pub(crate) fn oauth_transport(err: reqwest::Error) -> OAuthError {
    if err.is_timeout() {
        OAuthError::Timeout(describe_reqwest(err))
    } else {
        OAuthError::Transport(describe_reqwest(err))
    }
}

pub(crate) fn describe_reqwest(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Keeps label values bounded: Google's reasons are short camelCase words; anything else is `other`.
fn reason_label(reason: &str) -> &str {
    if !reason.is_empty() && reason.len() <= 48 && reason.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        reason
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u16, reason: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}]}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn classifies_google_error_table() {
        let c = |code: u16, reason: &str| {
            classify_drive_error(StatusCode::from_u16(code).expect("status"), &body(code, reason, "msg"), None)
        };
        assert_eq!(c(404, "notFound"), DriveError::NotFound("msg".into()));
        assert_eq!(c(401, "authError"), DriveError::Unauthorized);
        assert_eq!(
            c(403, "userRateLimitExceeded"),
            DriveError::RateLimited { reason: "userRateLimitExceeded".into(), retry_after: None }
        );
        assert!(c(403, "rateLimitExceeded").is_retryable());
        assert!(c(429, "rateLimitExceeded").is_retryable());
        assert_eq!(c(403, "uploadLimitExceeded"), DriveError::DailyLimit { reason: "uploadLimitExceeded".into() });
        assert!(!c(403, "uploadLimitExceeded").is_retryable());
        assert_eq!(c(403, "storageQuotaExceeded"), DriveError::StorageQuota);
        assert_eq!(
            c(403, "fileNotDownloadable"),
            DriveError::Forbidden { reason: "fileNotDownloadable".into(), message: "msg".into() }
        );
        assert_eq!(c(400, "invalid"), DriveError::BadRequest { reason: "invalid".into(), message: "msg".into() });
        assert_eq!(c(503, "backendError"), DriveError::Backend { status: 503 });
        assert!(c(500, "backendError").is_retryable());
        assert_eq!(c(409, "duplicate"), DriveError::AlreadyExists);
    }

    #[test]
    fn non_json_bodies_classify_by_status() {
        assert_eq!(
            classify_drive_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None),
            DriveError::Backend { status: 502 }
        );
        assert_eq!(
            classify_drive_error(StatusCode::FORBIDDEN, b"", None),
            DriveError::Forbidden { reason: "forbidden".into(), message: String::new() }
        );
    }

    #[test]
    fn long_messages_are_truncated_on_char_boundaries() {
        let long = "é".repeat(400);
        let t = truncate(&long);
        assert!(t.len() <= MAX_MESSAGE_LEN + '…'.len_utf8());
    }
}
