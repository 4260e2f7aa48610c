//! Shared by the `api_*` contract tests: snapshot-style comparison of response bodies with the parts that
//! change on every run (ids, times, tokens) replaced by stable placeholders.

#![allow(dead_code)]

pub mod contract;

use reqwest::StatusCode;
use serde_json::{Map, Value};

/// Replaces volatile values so a body can be compared with a literal:
/// - `img_…`, `job_…`, `item_…`, `picker_sess_…` ids become `[img]`, `[job]`, `[item]`, `[picker_sess]`;
/// - UUIDs become `[uuid]`, RFC 3339 times `[time]`;
/// - values of the keys in `opaque` (tokens, URLs with random parts) become `[redacted]` when not null.
pub fn redact(value: &Value, opaque: &[&str]) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, inner) in map {
                let redacted = if opaque.contains(&key.as_str()) && !inner.is_null() {
                    Value::String("[redacted]".into())
                } else {
                    redact(inner, opaque)
                };
                out.insert(key.clone(), redacted);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, opaque)).collect()),
        Value::String(text) => Value::String(redact_str(text)),
        other => other.clone(),
    }
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn redact_str(text: &str) -> String {
    for prefix in ["img_", "job_", "item_", "picker_sess_"] {
        if let Some(rest) = text.strip_prefix(prefix)
            && (is_hex(rest, 32)
                || rest.len() >= 16 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return format!("[{}]", prefix.trim_end_matches('_'));
        }
    }
    if uuid::Uuid::parse_str(text).is_ok() && text.len() == 36 {
        return "[uuid]".into();
    }
    if chrono_like(text) {
        return "[time]".into();
    }
    text.to_owned()
}

/// `2025-01-15T10:30:00Z` and friends, without pulling in a date crate.
fn chrono_like(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (text.ends_with('Z') || text.contains('+'))
        && b[..4].iter().all(u8::is_ascii_digit)
}

/// Asserts the status, checks the body against the document's schema for that path and status, and returns it.
pub async fn json_of(response: reqwest::Response, expected: StatusCode) -> Value {
    let status = response.status();
    let path = response.url().path().to_owned();
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body expected, got: {text}"));
    assert_eq!(status, expected, "unexpected status; body: {body}");
    contract::check_response(&path, status.as_u16(), &body);
    body
}

/// Compares a redacted body with the expected snapshot, printing both in full on a mismatch.
#[track_caller]
pub fn assert_snapshot(actual: &Value, opaque: &[&str], expected: Value) {
    let redacted = redact(actual, opaque);
    assert!(
        redacted == expected,
        "snapshot mismatch\n--- expected\n{}\n--- actual (redacted)\n{}",
        serde_json::to_string_pretty(&expected).unwrap_or_default(),
        serde_json::to_string_pretty(&redacted).unwrap_or_default()
    );
}

/// The sorted keys of a JSON object (for "exactly these fields" checks).
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    keys.sort();
    keys
}
