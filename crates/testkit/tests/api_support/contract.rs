//! Live responses checked against the OpenAPI document the gateway serves: the status must be documented for the
//! path, and the body must match that response's schema. A small validator for the JSON Schema the document uses
//! ($ref, type with null, properties, required, additionalProperties, items, oneOf/anyOf/allOf, enum, pattern,
//! lengths, bounds, and the uuid and date-time formats).

use std::sync::OnceLock;

use serde_json::Value;

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| serde_json::from_str(&ferry_gateway::openapi::document_json()).expect("the document is JSON"))
}

/// Panics unless `body` is what the document says `path` (a request path such as `/api/v2/files/img_…`) answers
/// with `status` for at least one of the path's methods.
#[track_caller]
pub fn check_response(path: &str, status: u16, body: &Value) {
    // The document's paths are absolute (its server is the origin).
    let doc = document();
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let paths = doc["paths"].as_object().expect("paths");
    // A literal path (`/item/trash`) also matches a template (`/item/{id}`): any of them may document it.
    let matching: Vec<(&String, &Value)> = paths
        .iter()
        .filter(|(template, _)| {
            let segments: Vec<&str> = template.trim_end_matches('/').split('/').collect();
            segments.len() == parts.len() && segments.iter().zip(&parts).all(|(t, p)| t.starts_with('{') || t == p)
        })
        .collect();
    if matching.is_empty() {
        return; // Not an API path (the console, /docs): nothing to check.
    }
    let template = matching.iter().map(|(template, _)| template.as_str()).collect::<Vec<_>>().join(" or ");
    let mut documented = false;
    let mut failures = Vec::new();
    for (method, operation) in matching.iter().flat_map(|(_, item)| item.as_object().expect("path item")) {
        let Some(response) = operation["responses"].get(status.to_string()) else { continue };
        documented = true;
        let response = resolve(doc, response);
        match response["content"].get("application/json").map(|content| &content["schema"]) {
            None => return,
            Some(schema) => match validate(doc, schema, body, "$") {
                Ok(()) => return,
                Err(problem) => failures.push(format!("{} {template}: {problem}", method.to_uppercase())),
            },
        }
    }
    assert!(documented, "{status} from {path} is not documented for {template}; body: {body}");
    panic!("the {status} body from {path} does not match the document:\n{}\nbody: {body}", failures.join("\n"));
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("dangling {reference}")))
        }
        None => value,
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(types) = schema.get("type") {
        let ok = match types {
            Value::String(name) => type_matches(name, value),
            Value::Array(names) => names.iter().filter_map(Value::as_str).any(|name| type_matches(name, value)),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: {value} is not of type {types}"));
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {choices:?}"));
    }
    for (keyword, all) in [("oneOf", false), ("anyOf", false), ("allOf", true)] {
        if let Some(options) = schema.get(keyword).and_then(Value::as_array) {
            let results: Vec<Result<(), String>> =
                options.iter().map(|option| validate(doc, option, value, at)).collect();
            let passed = results.iter().filter(|r| r.is_ok()).count();
            let ok = match (keyword, all) {
                (_, true) => passed == options.len(),
                ("oneOf", _) => passed == 1,
                _ => passed >= 1,
            };
            if !ok {
                let reasons: Vec<String> = results.into_iter().filter_map(Result::err).collect();
                return Err(format!("{at}: {keyword} not satisfied ({passed} matched): {}", reasons.join("; ")));
            }
        }
    }
    match value {
        Value::Object(map) => {
            for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !map.contains_key(name) {
                    return Err(format!("{at}: required `{name}` is missing"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, inner) in map {
                match properties.and_then(|p| p.get(name)) {
                    Some(property) => validate(doc, property, inner, &format!("{at}.{name}"))?,
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => return Err(format!("{at}: `{name}` is not in the schema")),
                        Some(extra @ Value::Object(_)) => validate(doc, extra, inner, &format!("{at}.{name}"))?,
                        // Closed objects: every property a body has must be documented.
                        _ if properties.is_some() => return Err(format!("{at}: `{name}` is not in the schema")),
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    validate(doc, item_schema, item, &format!("{at}[{index}]"))?;
                }
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                return Err(format!("{at}: fewer than {min} items"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                return Err(format!("{at}: more than {max} items"));
            }
        }
        Value::String(text) => {
            let length = text.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && length < min
            {
                return Err(format!("{at}: shorter than {min}"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && length > max
            {
                return Err(format!("{at}: longer than {max}"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let regex = regex::Regex::new(pattern).unwrap_or_else(|err| panic!("pattern {pattern}: {err}"));
                if !regex.is_match(text) {
                    return Err(format!("{at}: {text:?} does not match {pattern}"));
                }
            }
            match schema.get("format").and_then(Value::as_str) {
                Some("uuid") if uuid::Uuid::parse_str(text).is_err() => {
                    return Err(format!("{at}: {text:?} is not a UUID"));
                }
                Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                    return Err(format!("{at}: {text:?} is not an RFC 3339 date-time"));
                }
                _ => {}
            }
        }
        Value::Number(number) => {
            if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), number.as_f64())
                && n < min
            {
                return Err(format!("{at}: {n} is below {min}"));
            }
            if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), number.as_f64())
                && n > max
            {
                return Err(format!("{at}: {n} is above {max}"));
            }
        }
        _ => {}
    }
    Ok(())
}
