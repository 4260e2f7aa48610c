//! The OpenAPI 3.1 description of `/api/v2`, generated from the handlers' `#[utoipa::path]` annotations and the
//! request and response types they use (each resource's `dto` module); this module only assembles them. Served
//! at `/api/v2/openapi.json`, browsable at `/docs` (Swagger UI with its assets compiled in, so it needs no
//! network), and committed as `docs/openapi.json`, which a test keeps equal to this.

use utoipa::openapi::content::Content;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi};

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

/// The answers every API operation can give whatever it does, added where its own annotation does not list them:
/// 500 (an internal error, with an incident id) and 503 (the database is unreachable; `Retry-After`), 401 where an
/// API key is required, 400 and 413 where a JSON body is read (malformed JSON, or over the size limit), and 404
/// where the path names an object (a malformed id names nothing either).
struct CommonResponses;

impl CommonResponses {
    fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
                .build(),
        )
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // `uniqueItems` has no field attribute: an export's image ids must be distinct (a repeat is a 400).
        if let Some(components) = openapi.components.as_mut()
            && let Some(RefOr::T(Schema::Object(export))) = components.schemas.get_mut("ExportRequest")
            && let Some(RefOr::T(Schema::Array(ids))) = export.properties.get_mut("image_ids")
        {
            ids.unique_items = true;
        }
        let global_security = openapi.security.as_ref().is_some_and(|security| !security.is_empty());
        for (path, item) in openapi.paths.paths.iter_mut() {
            // `{provider}` is checked like a body field (400 for an unknown one); the other path ids name objects.
            let names_an_object = path.contains('{') && !path.contains("{provider}");
            for operation in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                // The browser callback always answers with its page (which reports failures to the opener).
                if operation.operation_id.as_deref() == Some("auth_browser_callback") {
                    continue;
                }
                // `security(())` on an operation (the browser callback) opts out of the API key.
                let secured = match &operation.security {
                    Some(requirements) => requirements.iter().any(|r| r != &Default::default()),
                    None => global_security,
                };
                let json_body = operation.request_body.as_ref().is_some_and(|body| match body {
                    RefOr::T(body) => body.content.contains_key("application/json"),
                    RefOr::Ref(_) => true,
                });
                let mut add = |status: &str, description: &str| {
                    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| Self::error(description));
                };
                if json_body {
                    add("400", "Invalid request (malformed JSON, a wrong type, a missing field)");
                    add("413", "The body is over the size limit");
                }
                if secured {
                    add("401", "Missing or invalid API key");
                }
                if names_an_object {
                    add("404", "Not found (also a malformed id, and another tenant's object)");
                }
                add("500", "Internal error: the body carries an `incident_id` for the operators' logs");
                add("503", "The database is unreachable; retry after the `Retry-After` seconds");
            }
        }
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
    modifiers(&ApiKeyAuth, &CommonResponses),
    security(("api_key" = [])),
    paths(
        crate::routes::oauth::handlers::start,
        crate::routes::oauth::handlers::complete,
        crate::routes::oauth::handlers::browser_callback,
        crate::routes::connections::handlers::list,
        crate::routes::connections::handlers::disconnect,
        crate::routes::connections::handlers::browse,
        crate::routes::picker::handlers::picker_token,
        crate::routes::picker::handlers::proxy,
        crate::routes::jobs::import,
        crate::routes::jobs::export,
        crate::routes::jobs::get_job,
        crate::routes::job_control::list,
        crate::routes::job_control::items,
        crate::routes::job_control::cancel,
        crate::routes::job_control::events,
        crate::routes::files::handlers::list,
        crate::routes::files::handlers::upload,
        crate::routes::files::handlers::get,
        crate::routes::files::handlers::update,
        crate::routes::files::handlers::delete,
        crate::routes::files::handlers::content,
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
