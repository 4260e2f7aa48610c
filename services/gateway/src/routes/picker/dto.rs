//! The picker endpoints' bodies: what the handlers deserialize and return, and what the OpenAPI document shows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A picker session: what the Google Picker needs in the browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickerSession {
    #[schema(example = "picker_sess_abc123", pattern = "^picker_sess_")]
    pub session_id: String,
    pub access_token: String,
    pub app_id: String,
    pub developer_key: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PickerTokenResponse {
    pub session: PickerSession,
}

/// One Drive call through the proxy.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PickerProxyRequest {
    /// A session from `picker-token`.
    #[schema(required = true, value_type = String, pattern = "^picker_sess_", max_length = 199)]
    pub session_id: Option<String>,
    /// One of `files`, `files/{id}`, `files/{id}/export`, `about`.
    #[schema(
        required = true,
        value_type = String,
        example = "files/abc123",
        pattern = "^(files|about|files/[A-Za-z0-9_-]{1,200}(/export)?)$"
    )]
    pub endpoint: Option<String>,
    /// Query parameters allowed for the endpoint: files: q, pageSize, pageToken, orderBy, fields, spaces,
    /// corpora, driveId, includeItemsFromAllDrives, supportsAllDrives; files/{id}: fields, supportsAllDrives;
    /// files/{id}/export: mimeType (required); about: fields. Text values are strings (at most 2048 characters,
    /// no control characters), flags `true`/`false`, `pageSize` 1 to 1000. The request schema's `anyOf` states
    /// each endpoint's set.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
}

/// Drive's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickerProxyResponse {
    pub data: PickerProxyData,
}

/// Drive's JSON object as it answered, or for an export the exported bytes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PickerProxyData {
    Exported(ExportedContent),
    /// Drive's JSON answer (an answer that is not an object is wrapped as `{"value": ...}`).
    Drive(Map<String, Value>),
}

/// An exported Google Workspace file.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportedContent {
    pub mime_type: String,
    pub size_bytes: usize,
    #[schema(content_encoding = "base64")]
    pub content_base64: String,
}
