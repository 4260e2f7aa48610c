//! The OpenAPI 3.1 description of `/api/v2` and of the documents API, generated from the handlers' `#[utoipa::path]` annotations and the
//! request and response types they use (each resource's `dto` module); this module only assembles them. Served
//! at `/api/v2/openapi.json`, browsable at `/docs` (Swagger UI with its assets compiled in, so it needs no
//! network), and committed as `docs/openapi.json`, which a test keeps equal to this.

use utoipa::openapi::content::Content;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{Modify, OpenApi};

use crate::routes::jobs::WORKSPACE_EXPORTS;

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

/// Every path as a client requests it from the origin: the REST API under `/api/v2` (handlers declare their
/// paths relative to it), the documents API (seed 004) at `/internal/services/documents/v1/...` and the libraries
/// API (seed 003) at `/api/libraries`, `/api/integrations` as declared.
struct Mounts;

impl Modify for Mounts {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let paths = std::mem::take(&mut openapi.paths.paths);
        for (path, item) in paths {
            let absolute = path.starts_with("/internal/") || path.starts_with("/api/");
            let mounted = if absolute { path } else { format!("{API_BASE}{path}") };
            openapi.paths.paths.insert(mounted, item);
        }
    }
}

/// Where the REST API is mounted.
pub const API_BASE: &str = "/api/v2";

/// Every documents operation (seed 004) also accepts, instead of the API key, exactly one of a download token, a
/// share link's token (with its password when it has one) or a tab's token; say so on each, with the 403 that a
/// credential not covering the item (or a read-only one asked to write) gets.
struct DocumentsCredentials;

impl Modify for DocumentsCredentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use crate::routes::documents::access::{
            MAX_DOWNLOAD_TOKEN_CHARS, MAX_SHARE_PASSWORD_CHARS, MAX_SHARE_TOKEN_CHARS, MAX_TAB_TOKEN_CHARS,
        };
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        const SIGNED: &str = "^[A-Za-z0-9_-]+[.][A-Za-z0-9_-]+$";
        let credentials = [
            (
                "token",
                "A download token (`GET /item/download/token`), instead of an API key.",
                Some(SIGNED),
                MAX_DOWNLOAD_TOKEN_CHARS,
            ),
            (
                "public_token",
                "A share link's token (`access_info.public.token`), instead of an API key.",
                Some("^[A-Za-z0-9_-]+$"),
                MAX_SHARE_TOKEN_CHARS,
            ),
            ("public_password", "The share link's password, when it has one.", None, MAX_SHARE_PASSWORD_CHARS),
            (
                "twake_tab_token",
                "A tab's token (`POST /tabs/{tab_id}`), instead of an API key.",
                Some(SIGNED),
                MAX_TAB_TOKEN_CHARS,
            ),
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/internal/services/documents/") {
                continue;
            }
            for operation in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                for (name, description, pattern, max_chars) in credentials {
                    let declared = |p: &RefOr<utoipa::openapi::path::Parameter>| matches!(p, RefOr::T(p) if p.name == name && p.parameter_in == ParameterIn::Query);
                    if parameters.iter().any(declared) {
                        continue;
                    }
                    let schema = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(max_chars))
                        .pattern(pattern);
                    parameters.push(RefOr::T(
                        ParameterBuilder::new()
                            .name(name)
                            .parameter_in(ParameterIn::Query)
                            .required(utoipa::openapi::Required::False)
                            .description(Some(description))
                            .schema(Some(schema))
                            .build(),
                    ));
                }
                operation.responses.responses.entry("400".to_owned()).or_insert_with(|| {
                    CommonResponses::error(
                        "Invalid query parameters (a credential given twice, empty, or with another)",
                    )
                });
                operation.responses.responses.entry("403".to_owned()).or_insert_with(|| {
                    CommonResponses::error("The credential does not cover this item, or only reads")
                });
            }
        }
    }
}

/// `not: {required: [a, b]}`: the two may not both be given. With `null_is_absent`, only both as strings count
/// (the handler reads a null as not given); otherwise any two values do (a serde alias refuses the pair).
fn forbid_both(object: &mut utoipa::openapi::schema::Object, a: &str, b: &str, null_is_absent: bool) {
    let mut both_given = serde_json::Map::new();
    both_given.insert("required".to_owned(), serde_json::Value::from(vec![a, b]));
    if null_is_absent {
        let mut properties = serde_json::Map::new();
        for name in [a, b] {
            properties.insert(name.to_owned(), serde_json::Value::from_iter([("type".to_owned(), "string")]));
        }
        both_given.insert("properties".to_owned(), serde_json::Value::Object(properties));
    }
    let both_given = serde_json::Value::Object(both_given);
    object.extensions.get_or_insert_with(Default::default).insert("not".to_owned(), both_given);
}

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
        // The same for an import's files (a repeated Drive id is a 400 too, which no schema keyword can state).
        if let Some(components) = openapi.components.as_mut()
            && let Some(RefOr::T(Schema::Object(import))) = components.schemas.get_mut("ImportRequest")
            && let Some(RefOr::T(Schema::Array(files))) = import.properties.get_mut("files")
        {
            files.unique_items = true;
        }
        // Nor has `not`: an import names its folder as `folder_id` or as the older `collection_id`, never both.
        // An upload's parts are closed: an unknown part is a 400.
        if let Some(components) = openapi.components.as_mut() {
            if let Some(RefOr::T(Schema::Object(import))) = components.schemas.get_mut("ImportRequest") {
                forbid_both(import, "folder_id", "collection_id", true);
            }
            // A file update takes `collection_id` as a serde alias of `folder_id`: the document lists it too.
            if let Some(RefOr::T(Schema::Object(update))) = components.schemas.get_mut("FileUpdateRequest")
                && let Some(RefOr::T(Schema::Object(folder))) = update.properties.get("folder_id").cloned()
            {
                let mut alias = folder;
                alias.description = Some("Older clients' name for `folder_id`; send one of the two, not both.".into());
                alias.deprecated = Some(utoipa::openapi::Deprecated::True);
                update.properties.insert("collection_id".to_owned(), RefOr::T(Schema::Object(alias)));
                forbid_both(update, "folder_id", "collection_id", false);
            }
            for form in ["UploadForm", "ItemUploadForm", "VersionUploadForm"] {
                if let Some(RefOr::T(Schema::Object(upload))) = components.schemas.get_mut(form) {
                    upload.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
        // The Workspace export formats, from the importer's own table: per-file overrides name one of them, and
        // `export_formats` maps each Workspace type (short or full name) to one of its own.
        if let Some(components) = openapi.components.as_mut() {
            if let Some(RefOr::T(Schema::Object(file))) = components.schemas.get_mut("ImportFile")
                && let Some(RefOr::T(Schema::Object(target))) = file.properties.get_mut("export_mime_type")
            {
                let mut formats: Vec<serde_json::Value> = Vec::new();
                for format in WORKSPACE_EXPORTS.iter().flat_map(|(_, allowed)| allowed.iter()) {
                    if !formats.iter().any(|known| known == format) {
                        formats.push((*format).into());
                    }
                }
                formats.push(serde_json::Value::Null);
                target.enum_values = Some(formats);
            }
            if let Some(RefOr::T(Schema::Object(import))) = components.schemas.get_mut("ImportRequest")
                && let Some(RefOr::T(Schema::Object(formats))) = import.properties.get_mut("export_formats")
            {
                for (kind, allowed) in WORKSPACE_EXPORTS {
                    let choices = ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(allowed.iter().copied()))
                        .build();
                    let short = kind.trim_start_matches("application/vnd.google-apps.");
                    for name in [short, kind] {
                        formats.properties.insert(name.to_owned(), RefOr::T(Schema::Object(choices.clone())));
                    }
                }
                formats.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
        // Which `params` a picker call takes depends on its `endpoint`: one branch per endpoint, from the proxy's
        // own tables.
        if let Some(components) = openapi.components.as_mut()
            && let Some(RefOr::T(Schema::Object(picker))) = components.schemas.get_mut("PickerProxyRequest")
        {
            picker
                .extensions
                .get_or_insert_with(Default::default)
                .insert("anyOf".to_owned(), crate::routes::picker::endpoints::request_branches());
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
                    add("403", "The API key's scopes do not include the one this operation needs");
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
    servers((url = "/")),
    modifiers(&ApiKeyAuth, &CommonResponses, &Mounts, &DocumentsCredentials),
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
        crate::routes::documents::handlers::me,
        crate::routes::libraries::handlers::list_integrations,
        crate::routes::libraries::handlers::list,
        crate::routes::libraries::handlers::create,
        crate::routes::libraries::handlers::get,
        crate::routes::libraries::handlers::update,
        crate::routes::libraries::handlers::delete,
        crate::routes::libraries::handlers::get_integration,
        crate::routes::libraries::handlers::set_integration,
        crate::routes::libraries::handlers::get_connection,
        crate::routes::libraries::handlers::link_connection,
        crate::routes::libraries::handlers::unlink_connection,
        crate::routes::libraries::handlers::account,
        crate::routes::libraries::handlers::sync,
        crate::routes::libraries::handlers::progress,
        crate::routes::documents::handlers::get_item,
        crate::routes::documents::handlers::create_item,
        crate::routes::documents::handlers::update_item,
        crate::routes::documents::handlers::add_version,
        crate::routes::documents::handlers::delete_item,
        crate::routes::documents::handlers::empty_trash,
        crate::routes::documents::handlers::restore_item,
        crate::routes::documents::handlers::get_tab,
        crate::routes::documents::handlers::put_tab,
        crate::routes::documents::download::download_token,
        crate::routes::documents::download::download_item,
        crate::routes::documents::download::download_zip,
        crate::routes::documents::download::thumbnail,
    ),
    tags(
        (name = "auth", description = "OAuth 2.0 connection of a cloud account"),
        (name = "connections", description = "Connected accounts and browsing them"),
        (name = "picker", description = "Google Picker session and server-side proxy"),
        (name = "jobs", description = "Import and export jobs"),
        (name = "files", description = "Files in Ferry's store"),
        (name = "folders", description = "Folders of Ferry's store"),
        (name = "documents", description = "The store as one tree of drive items (seed 004), at `/internal/services/documents/v1/companies/{company_id}` (outside `/api/v2`)"),
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

/// `GET /api/v2/openapi.json` (public: it is the API's documentation). Built once.
pub async fn serve() -> actix_web::HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(document_json).clone();
    actix_web::HttpResponse::Ok().content_type("application/json").body(body)
}

/// The methods the API offers on `path` (a request path, as the document's absolute path templates have it);
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
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    table
        .iter()
        .find(|(template, _)| {
            template.len() == parts.len()
                && template.iter().zip(&parts).all(|(t, p)| !p.is_empty() && (t.starts_with('{') || t == p))
        })
        .map(|(_, methods)| methods.clone())
        .unwrap_or_default()
}
