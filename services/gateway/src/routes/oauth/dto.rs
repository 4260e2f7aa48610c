//! The OAuth endpoints' bodies: what the handlers deserialize and return, and what the OpenAPI document shows.

use chrono::Utc;
use ferry_db::connections::Connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::timestamp;

/// The redirect URIs `start` accepts: the handler checks this expression, and a test keeps the document's
/// `pattern` for `redirect_uri` equal to it.
pub const REDIRECT_URI_PATTERN: &str = r"^https?://((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?([/?#][!-~]*)?$";

/// Longest redirect URI `start` accepts.
pub const MAX_REDIRECT_URI_CHARS: usize = 2048;

/// Starts the OAuth flow. Every field is optional; an empty body or none at all is fine.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StartAuthRequest {
    /// Echo of the path parameter (older clients send it); must agree with it when present.
    #[schema(example = "google_drive", pattern = "^google_drive$")]
    pub provider: Option<String>,
    /// Where the provider sends the browser back: an absolute http(s) URL with a host name or IPv4 address
    /// (what the provider accepts as a registered redirect URI); defaults to the configured callback.
    #[schema(
        pattern = r"^https?://((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?([/?#][!-~]*)?$",
        max_length = 2048,
        example = "http://127.0.0.1:8080/api/v2/cloud-storage/auth/google_drive/callback"
    )]
    pub redirect_uri: Option<String>,
    /// Pre-selects the Google account on the consent screen.
    pub login_hint: Option<String>,
}

/// Where to send the person, and the single-use state that ties the answer to this request.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartAuthResponse {
    pub authorization_url: String,
    pub state: String,
    #[schema(example = "google_drive")]
    pub provider: String,
}

/// Finishes the flow with what the provider sent back to the redirect URI.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompleteAuthRequest {
    #[schema(required = true, value_type = String, min_length = 1)]
    pub code: Option<String>,
    #[schema(required = true, value_type = String, min_length = 1)]
    pub state: Option<String>,
    /// Accepted from older clients (seed 001); the redirect URI stored with the state is the one used.
    #[allow(dead_code)]
    pub redirect_uri: Option<String>,
}

/// A connected cloud account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Connection)]
pub struct ConnectionView {
    #[schema(format = Uuid, example = "550e8400-e29b-41d4-a716-446655440000")]
    pub id: String,
    #[schema(example = "google_drive")]
    pub provider: String,
    pub provider_email: Option<String>,
    pub provider_display_name: Option<String>,
    pub is_active: bool,
    #[schema(format = DateTime)]
    pub connected_at: String,
    /// Same as `connected_at`, for older clients.
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        ConnectionView {
            id: c.id.to_string(),
            provider: c.provider.clone(),
            provider_email: c.provider_email.clone(),
            provider_display_name: c.provider_display_name.clone(),
            is_active: c.is_active,
            connected_at: timestamp(c.connected_at),
            created_at: timestamp(c.created_at),
            last_used_at: c.last_used_at.map(timestamp),
        }
    }
}

/// The connection the flow produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteAuthResponse {
    pub connection: ConnectionView,
    /// False when the same Drive account was connected before (its connection was updated).
    pub is_new: bool,
}

/// What the browser callback page posts to its opener (seed 001's `oauth-complete` message).
#[derive(Debug, Serialize)]
pub struct OAuthCompleteMessage {
    /// Always `oauth-complete`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<PopupConnection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The provider's own words, for the person: plain text the opener must render as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl OAuthCompleteMessage {
    pub fn connected(connection: &Connection) -> Self {
        OAuthCompleteMessage {
            kind: "oauth-complete",
            success: true,
            connection: Some(PopupConnection::from(connection)),
            error: None,
            error_description: None,
        }
    }

    pub fn failed(error: String, error_description: Option<String>) -> Self {
        OAuthCompleteMessage {
            kind: "oauth-complete",
            success: false,
            connection: None,
            error: Some(error),
            error_description,
        }
    }
}

/// The connection as the popup message describes it (seed 001's field names).
#[derive(Debug, Serialize)]
pub struct PopupConnection {
    pub id: String,
    pub provider: String,
    pub provider_email: Option<String>,
    pub provider_user_id: String,
    pub display_name: Option<String>,
    pub is_token_expired: bool,
}

impl From<&Connection> for PopupConnection {
    fn from(connection: &Connection) -> Self {
        PopupConnection {
            id: connection.id.to_string(),
            provider: connection.provider.clone(),
            provider_email: connection.provider_email.clone(),
            provider_user_id: connection.provider_user_id.clone(),
            display_name: connection.provider_display_name.clone(),
            is_token_expired: connection.token_expires_at.is_none_or(|at| at <= Utc::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};

    #[test]
    fn the_documented_redirect_uri_pattern_is_the_one_checked() {
        let RefOr::T(Schema::Object(request)) = StartAuthRequest::schema() else { panic!("an object schema") };
        let Some(RefOr::T(Schema::Object(uri))) = request.properties.get("redirect_uri") else {
            panic!("redirect_uri is documented")
        };
        assert_eq!(uri.pattern.as_deref(), Some(REDIRECT_URI_PATTERN));
        assert_eq!(uri.max_length, Some(MAX_REDIRECT_URI_CHARS));
    }
}
