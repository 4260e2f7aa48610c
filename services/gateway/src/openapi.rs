//! The OpenAPI 3.1 description of `/api/v2`, generated from the handlers' `#[utoipa::path]` annotations and the
//! schemas below (which mirror the JSON the handlers write). Served at `/api/v2/openapi.json`, browsable at
//! `/docs` (Swagger UI with its assets compiled in, so it needs no network), and committed as
//! `docs/openapi.json`, which a test keeps equal to this.

#![allow(dead_code)] // The schema structs exist only to be described.

use std::collections::HashMap;

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(ToSchema)]
pub struct StartAuthRequest {
    #[schema(example = "google_drive")]
    pub provider: Option<String>,
    /// Where the provider sends the browser back (defaults to the configured callback).
    pub redirect_uri: Option<String>,
    /// Pre-selects the Google account.
    pub login_hint: Option<String>,
}

#[derive(ToSchema)]
pub struct StartAuthResponse {
    pub authorization_url: String,
    pub state: String,
    #[schema(example = "google_drive")]
    pub provider: String,
}

#[derive(ToSchema)]
pub struct CompleteAuthRequest {
    pub code: String,
    pub state: String,
    /// Accepted from older clients (seed 001); the redirect URI stored with the state is the one used.
    pub redirect_uri: Option<String>,
}

#[derive(ToSchema)]
pub struct Connection {
    #[schema(example = "550e8400-e29b-41d4-a716-446655440000")]
    pub id: String,
    pub provider: String,
    pub provider_email: Option<String>,
    pub provider_display_name: Option<String>,
    pub is_active: bool,
    pub connected_at: String,
    /// Same as `connected_at`, for older clients.
    pub created_at: String,
    pub last_used_at: Option<String>,
}

#[derive(ToSchema)]
pub struct CompleteAuthResponse {
    pub connection: Connection,
    /// False when the same Drive account was connected before (its connection was updated).
    pub is_new: bool,
}

#[derive(ToSchema)]
pub struct ConnectionList {
    pub items: Vec<Connection>,
    /// The same list, for older clients.
    pub connections: Vec<Connection>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

#[derive(ToSchema)]
pub struct BrowseFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub size_bytes: Option<u64>,
    pub modified_at: Option<String>,
    pub is_folder: bool,
    pub web_view_link: Option<String>,
    pub thumbnail_url: Option<String>,
    /// False for folders and what the importer cannot take; true for binary files and for Docs, Sheets,
    /// Slides and Drawings (exported on import).
    pub is_importable: bool,
}

#[derive(ToSchema)]
pub struct Breadcrumb {
    pub id: String,
    pub name: String,
}

#[derive(ToSchema)]
pub struct BrowseResponse {
    /// On the first page of the root, `shared_with_me` and the user's shared drives come first as folders.
    pub files: Vec<BrowseFile>,
    pub next_page_token: Option<String>,
    pub current_folder_id: Option<String>,
    /// Root → current folder.
    pub breadcrumbs: Vec<Breadcrumb>,
    pub provider: String,
}

#[derive(ToSchema)]
pub struct PickerSession {
    #[schema(example = "picker_sess_abc123")]
    pub session_id: String,
    pub access_token: String,
    pub app_id: String,
    pub developer_key: String,
    pub expires_at: String,
}

#[derive(ToSchema)]
pub struct PickerTokenResponse {
    pub session: PickerSession,
}

#[derive(ToSchema)]
pub struct PickerProxyRequest {
    pub session_id: String,
    /// One of `files`, `files/{id}`, `files/{id}/export`, `about`.
    #[schema(example = "files/abc123")]
    pub endpoint: String,
    /// Query parameters allowed for the endpoint: files: q, pageSize, pageToken, orderBy, fields, spaces,
    /// corpora, driveId, includeItemsFromAllDrives, supportsAllDrives; files/{id}: fields, supportsAllDrives;
    /// files/{id}/export: mimeType (required); about: fields.
    #[schema(value_type = Option<Object>)]
    pub params: Option<Value>,
}

#[derive(ToSchema)]
pub struct PickerProxyResponse {
    /// Drive's JSON answer; for an export `{mime_type, size_bytes, content_base64}`.
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(ToSchema)]
pub struct ImportFile {
    pub id: String,
    pub name: String,
    pub mime_type: Option<String>,
    pub size_bytes: Option<u64>,
    /// For a Google Workspace file: the format to export it to (else `export_formats`, else the default).
    #[schema(example = "application/pdf")]
    pub export_mime_type: Option<String>,
}

#[derive(ToSchema)]
pub struct ImportRequest {
    pub connection_id: String,
    /// 1 to 1000 files; each Drive id at most once (a repeated id is a 400 listing `duplicate_ids`).
    pub files: Vec<ImportFile>,
    /// Deprecated; accepted for compatibility.
    pub auto_describe: Option<bool>,
    pub tags: Option<Vec<String>>,
    /// An existing Ferry folder of the caller (404 otherwise).
    pub folder_id: Option<String>,
    /// Older clients' name for `folder_id`.
    pub collection_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub provider_metadata: Option<Value>,
    /// Workspace type (`document`, `spreadsheet`, `presentation`, `drawing`) → export MIME type. Defaults:
    /// docx, xlsx, pptx, png.
    pub export_formats: Option<HashMap<String, String>>,
}

#[derive(ToSchema)]
pub struct ExportRequest {
    pub connection_id: String,
    pub image_ids: Vec<String>,
    /// An existing Drive folder (400 if it does not exist).
    pub folder_id: Option<String>,
    /// A new folder created once for the job (inside `folder_id` when both are given).
    pub folder_name: Option<String>,
}

#[derive(ToSchema)]
pub struct StoredFile {
    #[schema(example = "img_0190f0d2c1e07a3b8c9d0e1f2a3b4c5d")]
    pub id: String,
    pub name: String,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    /// pending | ready | failed
    pub status: String,
    pub tags: Vec<String>,
    pub folder_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub source: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub provider_metadata: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(ToSchema)]
pub struct FileList {
    pub items: Vec<StoredFile>,
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
    pub has_more: bool,
}

#[derive(ToSchema)]
pub struct FileUpdateRequest {
    pub name: Option<String>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// Moves the file; `null` takes it out of any folder. Alias: `collection_id`.
    pub folder_id: Option<String>,
}

/// `multipart/form-data` upload.
#[derive(ToSchema)]
pub struct UploadForm {
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    pub name: Option<String>,
    /// Comma-separated.
    pub tags: Option<String>,
    /// An existing folder to put the file in (alias `collection_id`).
    pub folder_id: Option<String>,
}

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fry_…")
                    .description(Some("An API key: `Authorization: Bearer fry_...`"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferry Cloud Storage API",
        description = "Connect Google Drive, browse it, import files into Ferry's store and export them back as \
            background jobs, and manage the stored files. Errors always look like \
            `{\"error\": {\"code\", \"message\", \"details\"}}`.",
        version = "2.0.0"
    ),
    servers((url = "/api/v2")),
    modifiers(&ApiKeyAuth),
    security(("api_key" = [])),
    paths(
        crate::routes::oauth::start,
        crate::routes::oauth::complete,
        crate::routes::oauth::browser_callback,
        crate::routes::connections::list,
        crate::routes::connections::disconnect,
        crate::routes::connections::browse,
        crate::routes::picker::picker_token,
        crate::routes::picker::proxy,
        crate::routes::jobs::import,
        crate::routes::jobs::export,
        crate::routes::jobs::get_job,
        crate::routes::job_control::list,
        crate::routes::job_control::items,
        crate::routes::job_control::cancel,
        crate::routes::job_control::events,
        crate::routes::files::list,
        crate::routes::files::upload,
        crate::routes::files::get,
        crate::routes::files::update,
        crate::routes::files::delete,
        crate::routes::files::content,
        crate::routes::folders::handlers::list,
        crate::routes::folders::handlers::create,
        crate::routes::folders::handlers::get,
        crate::routes::folders::handlers::rename,
        crate::routes::folders::handlers::delete,
    ),
    tags(
        (name = "auth", description = "OAuth 2.0 connection of a cloud account"),
        (name = "connections", description = "Connected accounts and browsing them"),
        (name = "picker", description = "Google Picker session and server-side proxy"),
        (name = "jobs", description = "Import and export jobs"),
        (name = "files", description = "Files in Ferry's store"),
        (name = "folders", description = "Folders of Ferry's store"),
    )
)]
pub struct ApiDoc;

/// The document as served and committed (pretty JSON with a trailing newline).
pub fn document_json() -> String {
    let doc = ApiDoc::openapi();
    let mut text = doc.to_pretty_json().unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"));
    text.push('\n');
    text
}

/// The methods the API offers on `path` (a request path under `/api/v2`), from the document's path templates;
/// empty when no template matches. Used to answer 405 with `Allow` for a method a path lacks.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    static TABLE: std::sync::OnceLock<Vec<(Vec<String>, Vec<&'static str>)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        ApiDoc::openapi()
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template.trim_matches('/').split('/').map(str::to_owned).collect();
                let mut methods = Vec::new();
                for (method, present) in [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ] {
                    if present {
                        methods.push(method);
                    }
                }
                (segments, methods)
            })
            .collect()
    });
    let Some(rest) = path.strip_prefix("/api/v2/") else { return Vec::new() };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    table
        .iter()
        .find(|(template, _)| {
            template.len() == parts.len()
                && template.iter().zip(&parts).all(|(t, p)| !p.is_empty() && (t.starts_with('{') || t == p))
        })
        .map(|(_, methods)| methods.clone())
        .unwrap_or_default()
}
