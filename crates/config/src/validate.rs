//! Semantic checks of [`Settings`]: each problem is one line naming the key and what is wrong.

use std::net::SocketAddr;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::{S3Settings, Secret, Settings, StorageBackend};

pub(crate) fn problems(s: &Settings) -> Vec<String> {
    let mut p = Problems::default();

    // database
    p.url("database.url", &s.database.url, &["postgres", "postgresql"]);
    if s.database.max_connections == 0 {
        p.push("database.max_connections", "must be at least 1");
    }

    // amqp
    p.url("amqp.url", &s.amqp.url, &["amqp", "amqps"]);
    if s.amqp.queue_prefix.is_empty()
        || !s.amqp.queue_prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        p.push(
            "amqp.queue_prefix",
            format!("{:?} must be non-empty and use only letters, digits, '.', '-', '_'", s.amqp.queue_prefix),
        );
    }
    if s.amqp.prefetch == 0 {
        p.push("amqp.prefetch", "must be at least 1");
    }
    if s.amqp.delivery_limit == 0 {
        p.push("amqp.delivery_limit", "must be at least 1");
    }

    // gateway
    p.bind("gateway.bind", &s.gateway.bind);
    p.bind("gateway.ops_bind", &s.gateway.ops_bind);
    if s.gateway.ops_bind == s.gateway.bind && !s.gateway.bind.ends_with(":0") {
        p.push("gateway.ops_bind", "must differ from gateway.bind (metrics stay off the public port)");
    }
    p.url("gateway.public_url", &s.gateway.public_url, HTTP);
    p.origin("gateway.popup_origin", &s.gateway.popup_origin);
    if s.gateway.outbox_poll_interval_secs == 0 {
        p.push("gateway.outbox_poll_interval_secs", "must be at least 1");
    }
    if s.gateway.event_poll_interval_secs == 0 {
        p.push("gateway.event_poll_interval_secs", "must be at least 1");
    }
    if s.gateway.oauth_state_ttl_secs == 0 {
        p.push("gateway.oauth_state_ttl_secs", "must be at least 1");
    }
    if s.gateway.max_upload_bytes == 0 {
        p.push("gateway.max_upload_bytes", "must be at least 1");
    }

    // google
    let g = &s.google;
    p.url("google.auth_url", &g.auth_url, HTTP);
    p.url("google.token_url", &g.token_url, HTTP);
    p.url("google.revoke_url", &g.revoke_url, HTTP);
    p.url("google.userinfo_url", &g.userinfo_url, HTTP);
    p.url("google.drive_root_url", &g.drive_root_url, HTTP);
    if !g.drive_root_url.ends_with('/') {
        p.push("google.drive_root_url", format!("{:?} must end with '/'", g.drive_root_url));
    }
    p.url("google.redirect_uri", &g.redirect_uri, HTTP);
    if g.client_id.trim().is_empty() {
        p.push("google.client_id", "must not be empty");
    }
    if g.client_secret.expose().trim().is_empty() {
        p.push("google.client_secret", "must not be empty");
    }
    if g.scopes.is_empty() {
        p.push("google.scopes", "must list at least one scope");
    }

    // drive (outbound HTTP to Google)
    for (key, secs) in [
        ("drive.connect_timeout_secs", s.drive.connect_timeout_secs),
        ("drive.read_timeout_secs", s.drive.read_timeout_secs),
    ] {
        if !(1..=3600).contains(&secs) {
            p.push(key, format!("{secs} must be between 1 and 3600 seconds"));
        }
    }

    // storage
    match s.storage.backend {
        StorageBackend::Local => {
            if s.storage.root.trim().is_empty() {
                p.push("storage.root", "must not be empty");
            }
        }
        StorageBackend::S3 => check_s3(&mut p, &s.storage.s3),
    }

    // crypto
    let c = &s.crypto;
    if let Err(problem) = check_key_id(&c.token_key_id) {
        p.push("crypto.token_key_id", problem);
    }
    if let Err(problem) = check_key(&c.token_key) {
        p.push("crypto.token_key", problem);
    }
    match parse_previous_keys(c.previous_token_keys.expose()) {
        Ok(keys) => {
            if keys.iter().any(|(id, _)| *id == c.token_key_id) {
                p.push("crypto.previous_token_keys", "must not repeat crypto.token_key_id");
            }
        }
        Err(problem) => p.push("crypto.previous_token_keys", problem),
    }
    if s.environment == "production" && c.uses_dev_only_key() {
        p.push(
            "crypto.token_key",
            "is the public DEV-ONLY key; set FERRY__CRYPTO__TOKEN_KEY to your own base64 32-byte key",
        );
    }

    // workers
    p.bind("importer.ops_bind", &s.importer.ops_bind);
    if !(1..=3600).contains(&s.importer.sync_schedule_every_secs) {
        p.push("importer.sync_schedule_every_secs", "must be 1 to 3600");
    }
    for (section, concurrency, in_flight) in [
        ("importer", s.importer.concurrency, s.importer.items_in_flight),
        ("exporter", s.exporter.concurrency, s.exporter.items_in_flight),
    ] {
        if concurrency == 0 {
            p.push(&format!("{section}.concurrency"), "must be at least 1");
        }
        if !(1..=1000).contains(&in_flight) {
            p.push(&format!("{section}.items_in_flight"), "must be 1 to 1000");
        }
    }
    p.bind("exporter.ops_bind", &s.exporter.ops_bind);

    // reliability
    let r = &s.reliability;
    if r.lease_secs < 3 {
        p.push("reliability.lease_secs", "must be at least 3 (heartbeats renew it every third)");
    }
    if r.reaper_interval_secs == 0 {
        p.push("reliability.reaper_interval_secs", "must be at least 1");
    }
    if r.stale_pending_secs < 5 {
        p.push("reliability.stale_pending_secs", "must be at least 5");
    }
    if r.stall_timeout_secs < 2 {
        p.push("reliability.stall_timeout_secs", "must be at least 2");
    }
    if r.confirm_timeout_secs == 0 {
        p.push("reliability.confirm_timeout_secs", "must be at least 1");
    }
    if r.max_item_attempts == 0 {
        p.push("reliability.max_item_attempts", "must be at least 1");
    }
    if r.drive_requests_per_sec == 0 {
        p.push("reliability.drive_requests_per_sec", "must be at least 1");
    }
    if r.drive_pacer_max_rate == 0 {
        p.push("reliability.drive_pacer_max_rate", "must be at least 1");
    }

    // items
    if !(1..=86_400).contains(&s.items.download_token_ttl_secs) {
        p.push("items.download_token_ttl_secs", "must be 1 to 86400 (a day)");
    }
    if !(1..=64).contains(&s.items.zip_concurrent_reads) {
        p.push("items.zip_concurrent_reads", "must be 1 to 64");
    }

    // telemetry
    if s.telemetry.log_filter.trim().is_empty() {
        p.push("telemetry.log_filter", "must not be empty (e.g. \"info\")");
    }

    p.0
}

const HTTP: &[&str] = &["http", "https"];

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, key: &str, problem: impl AsRef<str>) {
        self.0.push(format!("{key}: {}", problem.as_ref()));
    }

    fn url(&mut self, key: &str, value: &str, schemes: &[&str]) {
        match url::Url::parse(value) {
            Ok(parsed) if schemes.contains(&parsed.scheme()) => {}
            Ok(parsed) => self.push(key, format!("scheme {:?} is not one of {}", parsed.scheme(), schemes.join(", "))),
            // The value may carry credentials, so it is not echoed.
            Err(e) => self.push(key, format!("is not a valid URL ({e})")),
        }
    }

    fn origin(&mut self, key: &str, value: &str) {
        match url::Url::parse(value) {
            Ok(parsed)
                if HTTP.contains(&parsed.scheme())
                    && parsed.path() == "/"
                    && parsed.query().is_none()
                    && !value.ends_with('/') => {}
            _ => self.push(
                key,
                format!("{value:?} must be an origin like \"https://app.example.com\" (scheme, host, optional port; no path)"),
            ),
        }
    }

    fn bind(&mut self, key: &str, value: &str) {
        if value.parse::<SocketAddr>().is_ok() {
            return;
        }
        let ok = value.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            self.push(key, format!("{value:?} must be host:port, e.g. \"0.0.0.0:8080\""));
        }
    }
}

fn check_s3(p: &mut Problems, s3: &S3Settings) {
    let bucket = &s3.bucket;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !bucket_ok {
        p.push(
            "storage.s3.bucket",
            format!("{bucket:?} must be an S3 bucket name: 3-63 lowercase letters, digits, '.', '-' (required when storage.backend = \"s3\")"),
        );
    }
    if s3.region.trim().is_empty() {
        p.push("storage.s3.region", "must not be empty (e.g. \"us-east-1\")");
    }
    if !s3.endpoint.is_empty() {
        match url::Url::parse(&s3.endpoint) {
            Ok(url) if url.scheme() == "https" => {}
            Ok(url) if url.scheme() == "http" => {
                if !s3.allow_http {
                    p.push(
                        "storage.s3.endpoint",
                        "is plain http: set storage.s3.allow_http = true to allow it (development servers only)",
                    );
                }
            }
            Ok(url) => p.push("storage.s3.endpoint", format!("scheme {:?} is not one of http, https", url.scheme())),
            Err(e) => p.push("storage.s3.endpoint", format!("is not a valid URL ({e})")),
        }
    }
    if s3.access_key_id.is_empty() != s3.secret_access_key.is_empty() {
        p.push(
            "storage.s3.access_key_id",
            "and storage.s3.secret_access_key must be set together (or both left empty to use the platform's credentials)",
        );
    }
}

fn check_key_id(id: &str) -> Result<(), String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
        return Err(format!(
            "{id:?} must be non-empty and use only letters, digits, '-', '_' (it is embedded in sealed tokens)"
        ));
    }
    Ok(())
}

fn check_key(key: &Secret<String>) -> Result<(), String> {
    match decode_key(key.expose()) {
        Some(bytes) if bytes.len() == 32 => Ok(()),
        Some(bytes) => Err(format!(
            "must be base64 of exactly 32 bytes, got {} bytes (generate one with `openssl rand -base64 32`)",
            bytes.len()
        )),
        None => Err("is not valid base64 (generate one with `openssl rand -base64 32`)".to_owned()),
    }
}

fn decode_key(raw: &str) -> Option<Vec<u8>> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    let raw = raw.trim();
    standard.decode(raw).or_else(|_| url_safe.decode(raw)).ok()
}

/// Parses `id:base64,id:base64` (empty means none).
pub(crate) fn parse_previous_keys(raw: &str) -> Result<Vec<(String, Secret<String>)>, String> {
    let mut keys = Vec::new();
    for (index, entry) in raw.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        let Some((id, key)) = entry.split_once(':') else {
            return Err(format!("entry {} must look like key_id:base64_key", index + 1));
        };
        check_key_id(id).map_err(|e| format!("entry {}: key id {e}", index + 1))?;
        let key = Secret::from(key.trim());
        check_key(&key).map_err(|e| format!("entry {} (key id {id:?}): key {e}", index + 1))?;
        keys.push((id.to_owned(), key));
    }
    Ok(keys)
}
