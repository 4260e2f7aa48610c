//! The proxy's closed set: the four Drive calls it makes, the query parameters each one takes and their types.
//! The handler parses requests with these tables and the OpenAPI document's request schema is generated from
//! them, so the two cannot disagree.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult, ErrorCode, ErrorDetails};

/// Longest `endpoint` accepted (real ones are a few dozen characters).
pub const MAX_ENDPOINT_LEN: usize = 300;
/// Longest Drive file id accepted.
pub const MAX_ID_LEN: usize = 200;
/// Longest text parameter accepted, in characters (`q` expressions are the longest legitimate ones).
pub const MAX_PARAM_CHARS: usize = 2048;
/// Largest `pageSize` Drive accepts.
pub const MAX_PAGE_SIZE: u64 = 1000;
/// Drive sub-resources under `files/` that are not file ids.
const RESERVED_FILE_IDS: [&str; 4] = ["generateIds", "trash", "export", "watch"];

/// One of the Drive calls the proxy makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyEndpoint {
    ListFiles,
    GetFile(String),
    ExportFile(String),
    About,
}

/// What a query parameter's value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A string of at most [`MAX_PARAM_CHARS`] characters without control characters.
    Text,
    /// `true` or `false`, as a JSON boolean or a string.
    Flag,
    /// 1 to [`MAX_PAGE_SIZE`], as a JSON integer or a string of digits.
    PageSize,
}

/// The shapes of `endpoint`, each with the query parameters it takes (and whether one is required).
struct Shape {
    name: &'static str,
    /// The pattern `endpoint` matches for this shape.
    pattern: &'static str,
    params: &'static [(&'static str, ParamKind)],
    required: &'static [&'static str],
}

const LIST_PARAMS: &[(&str, ParamKind)] = &[
    ("q", ParamKind::Text),
    ("pageSize", ParamKind::PageSize),
    ("pageToken", ParamKind::Text),
    ("orderBy", ParamKind::Text),
    ("fields", ParamKind::Text),
    ("spaces", ParamKind::Text),
    ("corpora", ParamKind::Text),
    ("driveId", ParamKind::Text),
    ("includeItemsFromAllDrives", ParamKind::Flag),
    ("supportsAllDrives", ParamKind::Flag),
];
const GET_PARAMS: &[(&str, ParamKind)] = &[("fields", ParamKind::Text), ("supportsAllDrives", ParamKind::Flag)];
const EXPORT_PARAMS: &[(&str, ParamKind)] = &[("mimeType", ParamKind::Text)];
const ABOUT_PARAMS: &[(&str, ParamKind)] = &[("fields", ParamKind::Text)];

const SHAPES: [Shape; 4] = [
    Shape { name: "files", pattern: "^files$", params: LIST_PARAMS, required: &[] },
    Shape { name: "files/{id}", pattern: "^files/[A-Za-z0-9_-]{1,200}$", params: GET_PARAMS, required: &[] },
    Shape {
        name: "files/{id}/export",
        pattern: "^files/[A-Za-z0-9_-]{1,200}/export$",
        params: EXPORT_PARAMS,
        required: &["mimeType"],
    },
    Shape { name: "about", pattern: "^about$", params: ABOUT_PARAMS, required: &[] },
];

impl ProxyEndpoint {
    fn shape(&self) -> &'static Shape {
        match self {
            ProxyEndpoint::ListFiles => &SHAPES[0],
            ProxyEndpoint::GetFile(_) => &SHAPES[1],
            ProxyEndpoint::ExportFile(_) => &SHAPES[2],
            ProxyEndpoint::About => &SHAPES[3],
        }
    }

    /// Path segments under `drive/v3/`.
    pub fn segments(&self) -> Vec<&str> {
        match self {
            ProxyEndpoint::ListFiles => vec!["files"],
            ProxyEndpoint::GetFile(id) => vec!["files", id],
            ProxyEndpoint::ExportFile(id) => vec!["files", id, "export"],
            ProxyEndpoint::About => vec!["about"],
        }
    }
}

fn endpoint_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::PickerEndpointNotAllowed, message).with_details(ErrorDetails {
        allowed: Some(SHAPES.iter().map(|shape| shape.name.to_owned()).collect()),
        ..ErrorDetails::field("endpoint")
    })
}

/// A Drive file id: ASCII letters, digits, `-` and `_` only, and not one of Drive's own sub-resources.
fn valid_file_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !RESERVED_FILE_IDS.contains(&id)
}

/// Parses the client's `endpoint` into the closed set. Everything outside it is refused, including
/// leading or trailing slashes, percent-encoding, dots, query strings and non-ASCII text.
pub fn parse_endpoint(raw: &str) -> ApiResult<ProxyEndpoint> {
    if raw.is_empty() {
        return Err(endpoint_error("endpoint is required"));
    }
    if raw.len() > MAX_ENDPOINT_LEN {
        return Err(endpoint_error(format!("endpoint must be at most {MAX_ENDPOINT_LEN} characters")));
    }
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/') {
        return Err(endpoint_error("endpoint may contain only letters, digits, `-`, `_` and `/`"));
    }
    let parts: Vec<&str> = raw.split('/').collect();
    let endpoint = match parts.as_slice() {
        ["files"] => ProxyEndpoint::ListFiles,
        ["about"] => ProxyEndpoint::About,
        ["files", id] if valid_file_id(id) => ProxyEndpoint::GetFile((*id).to_owned()),
        ["files", id, "export"] if valid_file_id(id) => ProxyEndpoint::ExportFile((*id).to_owned()),
        _ => return Err(endpoint_error(format!("`{raw}` is not an allowed endpoint"))),
    };
    Ok(endpoint)
}

fn param_error(key: &str, expected: &str) -> ApiError {
    ApiError::field("params", format!("`{key}` must be {expected}"))
}

/// One parameter's value as the query string carries it, if it has the parameter's type.
fn param_value(key: &str, kind: ParamKind, value: &Value) -> ApiResult<String> {
    match (kind, value) {
        (ParamKind::Text, Value::String(text)) => {
            if text.chars().count() > MAX_PARAM_CHARS || text.chars().any(char::is_control) {
                return Err(param_error(
                    key,
                    &format!("at most {MAX_PARAM_CHARS} characters without control characters"),
                ));
            }
            Ok(text.clone())
        }
        (ParamKind::Text, _) => Err(param_error(key, "a string")),
        (ParamKind::Flag, Value::Bool(flag)) => Ok(flag.to_string()),
        (ParamKind::Flag, Value::String(text)) if text == "true" || text == "false" => Ok(text.clone()),
        (ParamKind::Flag, _) => Err(param_error(key, "true or false")),
        (ParamKind::PageSize, value) => {
            let size = match value {
                Value::Number(number) => number
                    .as_u64()
                    .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 1.0).map(|f| f as u64)),
                Value::String(text) if !text.starts_with('0') && text.len() <= 4 => text.parse::<u64>().ok(),
                _ => None,
            };
            size.filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                .map(|size| size.to_string())
                .ok_or_else(|| param_error(key, &format!("an integer from 1 to {MAX_PAGE_SIZE}")))
        }
    }
}

/// Checks `params` against the endpoint's allowlist and types, and turns the values into query strings.
pub fn parse_params(endpoint: &ProxyEndpoint, params: Option<&Value>) -> ApiResult<Vec<(String, String)>> {
    let empty = Map::new();
    let map = match params {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::field("params", "params must be an object of query parameters")),
    };
    let shape = endpoint.shape();
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        let Some((_, kind)) = shape.params.iter().find(|(name, _)| name == key) else {
            return Err(ApiError::new(
                ErrorCode::PickerParamNotAllowed,
                format!("The parameter `{key}` is not allowed for this endpoint"),
            )
            .with_details(ErrorDetails {
                param: Some(key.clone()),
                allowed: Some(shape.params.iter().map(|(name, _)| (*name).to_owned()).collect()),
                ..ErrorDetails::field("params")
            }));
        };
        out.push((key.clone(), param_value(key, *kind, value)?));
    }
    if let Some(missing) = shape.required.iter().find(|name| !out.iter().any(|(k, _)| k == *name)) {
        return Err(ApiError::field("params", format!("{} needs params.{missing}", shape.name)));
    }
    // Drive requires a field mask on about.get; give the picker's usual one when the client sent none.
    if *endpoint == ProxyEndpoint::About && !out.iter().any(|(k, _)| k == "fields") {
        out.push(("fields".to_owned(), "user,storageQuota".to_owned()));
    }
    Ok(out)
}

fn value_schema(kind: ParamKind) -> Value {
    match kind {
        ParamKind::Text => json!({
            "type": "string",
            "maxLength": MAX_PARAM_CHARS,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        }),
        ParamKind::Flag => json!({ "anyOf": [{ "type": "boolean" }, { "type": "string", "enum": ["true", "false"] }] }),
        ParamKind::PageSize => json!({ "anyOf": [
            { "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE },
            { "type": "string", "pattern": "^(1000|[1-9][0-9]{0,2})$" },
        ] }),
    }
}

/// The document's rule tying `params` to `endpoint`: one branch per shape, each with its closed set of typed
/// parameters (`anyOf` on the request schema).
pub fn request_branches() -> Value {
    let branches: Vec<Value> = SHAPES
        .iter()
        .map(|shape| {
            let properties: Map<String, Value> =
                shape.params.iter().map(|(name, kind)| ((*name).to_owned(), value_schema(*kind))).collect();
            let params = json!({
                "type": "object",
                "properties": properties,
                "required": shape.required,
                "additionalProperties": false,
            });
            // Without a required parameter, params may also be left out or null.
            let params =
                if shape.required.is_empty() { json!({ "anyOf": [{ "type": "null" }, params] }) } else { params };
            let mut endpoint = json!({ "type": "string", "pattern": shape.pattern });
            if shape.name.contains("{id}") {
                let reserved: Vec<String> = RESERVED_FILE_IDS.iter().map(|id| shape.name.replace("{id}", id)).collect();
                endpoint["not"] = json!({ "enum": reserved });
            }
            let required: &[&str] = if shape.required.is_empty() { &["endpoint"] } else { &["endpoint", "params"] };
            json!({ "properties": { "endpoint": endpoint, "params": params }, "required": required })
        })
        .collect();
    Value::Array(branches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_set_parses_and_nothing_else_does() {
        assert_eq!(parse_endpoint("files").ok(), Some(ProxyEndpoint::ListFiles));
        assert_eq!(parse_endpoint("about").ok(), Some(ProxyEndpoint::About));
        assert_eq!(parse_endpoint("files/a-B_9").ok(), Some(ProxyEndpoint::GetFile("a-B_9".into())));
        assert_eq!(parse_endpoint("files/x/export").ok(), Some(ProxyEndpoint::ExportFile("x".into())));
        for bad in ["", "files/", "files/generateIds", "files/../about", "files%2Fx", "files/x?alt=media", "drives"] {
            let err = parse_endpoint(bad).expect_err(bad);
            assert_eq!(err.code, ErrorCode::PickerEndpointNotAllowed, "{bad}");
        }
    }

    #[test]
    fn params_follow_each_endpoint_allowlist_and_types() {
        let list = ProxyEndpoint::ListFiles;
        let ok = parse_params(&list, Some(&json!({ "pageSize": 10, "q": "name contains 'a'" }))).expect("allowed");
        assert_eq!(
            ok,
            vec![("pageSize".to_owned(), "10".to_owned()), ("q".to_owned(), "name contains 'a'".to_owned())]
        );
        let flags = parse_params(&list, Some(&json!({ "supportsAllDrives": true, "pageSize": "25" }))).expect("ok");
        assert_eq!(flags.len(), 2);
        let err = parse_params(&list, Some(&json!({ "alt": "media" }))).expect_err("alt");
        assert_eq!(err.code, ErrorCode::PickerParamNotAllowed);
        for bad in
            [json!({ "pageSize": 0 }), json!({ "pageSize": 1001 }), json!({ "q": 5 }), json!({ "spaces": "a\u{7}" })]
        {
            let err = parse_params(&list, Some(&bad)).expect_err("wrong type");
            assert_eq!(err.code, ErrorCode::ValidationError, "{bad}");
        }
        let about = parse_params(&ProxyEndpoint::About, None).expect("about");
        assert_eq!(about, vec![("fields".to_owned(), "user,storageQuota".to_owned())]);
        assert!(parse_params(&ProxyEndpoint::ExportFile("x".into()), None).is_err(), "mimeType is required");
    }

    #[test]
    fn every_shape_has_a_branch_in_the_document() {
        let branches = request_branches();
        let patterns: Vec<&str> = branches
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["properties"]["endpoint"]["pattern"].as_str())
            .collect();
        assert_eq!(patterns.len(), SHAPES.len());
        for (raw, shape) in [("files", 0), ("files/abc", 1), ("files/abc/export", 2), ("about", 3)] {
            assert_eq!(parse_endpoint(raw).expect(raw).shape().pattern, patterns[shape]);
        }
    }
}
