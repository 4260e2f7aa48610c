//! Small helpers shared by the handlers: query parameters, random ids, timestamps, body reading.

use actix_web::HttpRequest;
use actix_web::web;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::Rng;

use crate::error::DriveError;

/// Form-encoded parameters (`+` is a space), first value wins.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(input: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(input).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    pub fn from_request(req: &HttpRequest) -> Self {
        Self::parse(req.query_string().as_bytes())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Like `get`, but an empty value counts as absent.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.trim().is_empty())
    }

    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            _ => default,
        }
    }
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn random_token(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char).collect()
}

pub fn random_digits(len: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(len);
    s.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 1..len {
        s.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    s
}

/// A Drive-looking file id: 33 characters of `[A-Za-z0-9_-]`, starting with `1` like Drive's.
pub fn drive_id() -> String {
    format!("1{}", random_token(32))
}

/// Ids a client may choose (pre-generated ones): url-safe characters, sensible length.
pub fn is_usable_id(id: &str) -> bool {
    (10..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `scheme://host[:port]` as the client addressed us (absolute URLs in replies use it).
pub fn origin(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// Reads a whole body piece by piece (no Content-Length needed), refusing more than `limit` bytes.
pub async fn read_body(payload: &mut web::Payload, limit: usize) -> Result<BytesMut, DriveError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(DriveError::payload)?;
        if buf.len() + chunk.len() > limit {
            return Err(DriveError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "uploadTooLarge",
                "The request body is too large.",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The value of a header as a string, if present and visible ASCII.
pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_ids_look_like_drive_ids() {
        let id = drive_id();
        assert_eq!(id.len(), 33);
        assert!(is_usable_id(&id));
        assert!(!is_usable_id("short"));
        assert!(!is_usable_id("has space in the id"));
    }

    #[test]
    fn params_decode_plus_as_space() {
        let p = Params::parse(b"q=name+%3D+%27a+b%27&x=");
        assert_eq!(p.get("q"), Some("name = 'a b'"));
        assert_eq!(p.non_empty("x"), None);
    }
}
