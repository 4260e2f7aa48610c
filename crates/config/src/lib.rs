//! Ferry's settings: one typed [`Settings`] value shared by every service and tool.
//!
//! Layers, later ones win:
//! 1. built-in defaults (in code, chosen so a fresh checkout runs offline against the drive emulator),
//! 2. `config/default.toml` (optional, relative to the working directory),
//! 3. `config/$FERRY_ENV.toml` (optional),
//! 4. environment variables `FERRY__SECTION__KEY` (e.g. `FERRY__DATABASE__URL`).
//!
//! [`Settings::load`] applies all layers and validates; [`Settings::from_sources`] gives tests a
//! hermetic variant (defaults + explicit overrides, no files, no process environment).

mod secret;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use secret::Secret;

/// Environment variable prefix; sections and keys are separated by [`ENV_SEPARATOR`].
pub const ENV_PREFIX: &str = "FERRY";
/// Separator between prefix, section and key in environment variable names.
pub const ENV_SEPARATOR: &str = "__";
/// Environment variable naming the deployment environment (`config/$FERRY_ENV.toml`).
pub const ENV_NAME_VAR: &str = "FERRY_ENV";
/// Environment name used when `FERRY_ENV` is not set.
pub const DEFAULT_ENVIRONMENT: &str = "development";

/// DEV-ONLY token encryption key (base64 of the 32 ASCII bytes `ferry-dev-only-token-key-32bytes`).
///
/// It exists so `make run` works on a fresh checkout. It is public, so anything sealed with it is
/// readable by anyone: [`Settings::validate`] rejects it when `FERRY_ENV=production`.
pub const DEV_ONLY_TOKEN_KEY: &str = "ZmVycnktZGV2LW9ubHktdG9rZW4ta2V5LTMyYnl0ZXM=";

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Errors from loading or validating settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or a value has the wrong type (the message names the key).
    #[error("could not load configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// Values were read but do not make sense together; every problem is listed.
    #[error("invalid configuration:{}", format_problems(.problems))]
    Invalid { problems: Vec<String> },
}

fn format_problems(problems: &[String]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// All of Ferry's settings. Every service reads the sections it needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The deployment environment name (`FERRY_ENV`, default `development`). Not read from files.
    #[serde(skip)]
    pub environment: String,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub gateway: GatewaySettings,
    pub google: GoogleSettings,
    pub drive: DriveSettings,
    pub storage: StorageSettings,
    pub crypto: CryptoSettings,
    pub importer: ImporterSettings,
    pub exporter: ExporterSettings,
    pub telemetry: TelemetrySettings,
    pub reliability: ReliabilitySettings,
    pub maintenance: MaintenanceSettings,
    pub items: ItemsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: DEFAULT_ENVIRONMENT.to_owned(),
            database: DatabaseSettings::default(),
            amqp: AmqpSettings::default(),
            gateway: GatewaySettings::default(),
            google: GoogleSettings::default(),
            drive: DriveSettings::default(),
            storage: StorageSettings::default(),
            crypto: CryptoSettings::default(),
            importer: ImporterSettings::default(),
            exporter: ExporterSettings::default(),
            telemetry: TelemetrySettings::default(),
            reliability: ReliabilitySettings::default(),
            maintenance: MaintenanceSettings::default(),
            items: ItemsSettings::default(),
        }
    }
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Postgres URL including the database name.
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: "postgres://postgres@127.0.0.1:5432/ferry".into(), max_connections: 16 }
    }
}

impl DatabaseSettings {
    /// The URL with any password replaced, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url_password(&self.url)
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    pub url: String,
    /// Prefix of every exchange and queue name (`ferry.import`, `ferry.export`, ...).
    pub queue_prefix: String,
    /// Consumer prefetch (unacked deliveries per channel).
    pub prefetch: u16,
    /// Quorum-queue delivery limit before a message is dead-lettered.
    pub delivery_limit: u32,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            queue_prefix: "ferry".into(),
            prefetch: 8,
            delivery_limit: 5,
        }
    }
}

impl AmqpSettings {
    /// The URL with any password replaced, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url_password(&self.url)
    }
}

impl fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSettings")
            .field("url", &self.redacted_url())
            .field("queue_prefix", &self.queue_prefix)
            .field("prefetch", &self.prefetch)
            .field("delivery_limit", &self.delivery_limit)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Listen address of the public API, `host:port`.
    pub bind: String,
    /// Listen address of the ops endpoints (`/livez`, `/readyz`, `/metrics`), kept off the public port.
    pub ops_bind: String,
    /// Externally visible base URL of the gateway (used to build links).
    pub public_url: String,
    /// The origin the OAuth popup page posts its result to (`window.opener.postMessage`).
    pub popup_origin: String,
    pub oauth_state_ttl_secs: u64,
    pub max_upload_bytes: u64,
    /// The outbox relay is woken by LISTEN/NOTIFY; this poll only catches notifications lost while reconnecting.
    pub outbox_poll_interval_secs: u64,
    /// Job event streams are woken by LISTEN/NOTIFY when their job changes; this poll only catches notifications
    /// lost while the listener reconnects.
    pub event_poll_interval_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            ops_bind: "127.0.0.1:9100".into(),
            public_url: "http://127.0.0.1:8080".into(),
            popup_origin: "http://127.0.0.1:8080".into(),
            oauth_state_ttl_secs: 600,
            max_upload_bytes: GIB,
            outbox_poll_interval_secs: 5,
            event_poll_interval_secs: 5,
        }
    }
}

impl GatewaySettings {
    pub fn oauth_state_ttl(&self) -> Duration {
        Duration::from_secs(self.oauth_state_ttl_secs)
    }

    pub fn outbox_poll_interval(&self) -> Duration {
        Duration::from_secs(self.outbox_poll_interval_secs)
    }

    pub fn event_poll_interval(&self) -> Duration {
        Duration::from_secs(self.event_poll_interval_secs)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleSettings {
    /// Authorisation endpoint the user's browser is sent to.
    pub auth_url: String,
    pub token_url: String,
    pub revoke_url: String,
    pub userinfo_url: String,
    /// Base of the Drive API, with a trailing slash (`https://www.googleapis.com/` for real Google).
    pub drive_root_url: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub redirect_uri: String,
    /// Accepts a TOML array, or (from the environment) a comma- or space-separated string.
    #[serde(deserialize_with = "string_list")]
    pub scopes: Vec<String>,
    pub picker_app_id: String,
    pub picker_developer_key: Secret<String>,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        Self {
            auth_url: "http://127.0.0.1:8088/o/oauth2/v2/auth".into(),
            token_url: "http://127.0.0.1:8088/token".into(),
            revoke_url: "http://127.0.0.1:8088/revoke".into(),
            userinfo_url: "http://127.0.0.1:8088/oauth2/v3/userinfo".into(),
            drive_root_url: "http://127.0.0.1:8088/".into(),
            client_id: "ferry-dev-client".into(),
            client_secret: Secret::from("ferry-dev-secret"),
            redirect_uri: "http://127.0.0.1:8080/api/v2/cloud-storage/auth/google_drive/callback".into(),
            scopes: vec![
                "https://www.googleapis.com/auth/drive".into(),
                "openid".into(),
                "email".into(),
                "profile".into(),
            ],
            picker_app_id: String::new(),
            picker_developer_key: Secret::default(),
        }
    }
}

/// Timeouts of every outbound HTTP call to Google (Drive, OAuth token and refresh, userinfo, revoke).
/// There is deliberately no total timeout: a large transfer may take hours, so only silence is bounded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveSettings {
    /// Longest wait for a TCP (and TLS) connection to be established.
    pub connect_timeout_secs: u64,
    /// Longest wait for the next bytes of a response (headers or body); a stalled answer fails after this.
    pub read_timeout_secs: u64,
}

impl Default for DriveSettings {
    fn default() -> Self {
        Self { connect_timeout_secs: 10, read_timeout_secs: 60 }
    }
}

impl DriveSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs)
    }
}

/// Where blobs live: the local filesystem (default, one machine or a shared volume) or an
/// S3-compatible object store (production).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    #[default]
    Local,
    S3,
}

impl StorageBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageBackend::Local => "local",
            StorageBackend::S3 => "s3",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    /// Root directory for the `local` backend (created if missing).
    pub root: String,
    /// The `s3` backend (read only when `backend = "s3"`).
    pub s3: S3Settings,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self { backend: StorageBackend::Local, root: "./data/blobs".into(), s3: S3Settings::default() }
    }
}

/// An S3 bucket, on AWS or any S3-compatible server (MinIO, Ceph, moto, ...).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    /// Base URL of an S3-compatible server (path-style requests); empty means AWS for `region`.
    pub endpoint: String,
    pub region: String,
    /// Static credentials; leave both empty to use the platform's (instance profile, pod identity).
    pub access_key_id: String,
    pub secret_access_key: Secret<String>,
    /// Allow a plain `http://` endpoint (development servers only).
    pub allow_http: bool,
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: Secret::default(),
            allow_http: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoSettings {
    /// Id stored beside every sealed token; must not contain `.`.
    pub token_key_id: String,
    /// Base64 of 32 bytes (AES-256-GCM key).
    pub token_key: Secret<String>,
    /// Older keys still accepted for opening during rotation: `id:base64,id:base64` (may be empty).
    pub previous_token_keys: Secret<String>,
}

impl Default for CryptoSettings {
    fn default() -> Self {
        Self {
            token_key_id: "dev-1".into(),
            token_key: Secret::from(DEV_ONLY_TOKEN_KEY),
            previous_token_keys: Secret::default(),
        }
    }
}

impl CryptoSettings {
    /// True while the public development key is configured.
    pub fn uses_dev_only_key(&self) -> bool {
        self.token_key.expose() == DEV_ONLY_TOKEN_KEY
    }

    /// Parses `previous_token_keys` into `(key_id, key_base64)` pairs.
    pub fn previous_keys(&self) -> Result<Vec<(String, Secret<String>)>, ConfigError> {
        validate::parse_previous_keys(self.previous_token_keys.expose())
            .map_err(|problem| ConfigError::Invalid { problems: vec![problem] })
    }
}

/// Files up to this size move without a worker's transfer slot: their bytes fit in one buffer, so memory stays
/// bounded by `items_in_flight` of them, and they do not queue behind large transfers.
pub const SMALL_FILE_BYTES: u64 = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImporterSettings {
    /// Listen address of the /livez, /readyz, /metrics endpoints.
    pub ops_bind: String,
    /// Files larger than [`SMALL_FILE_BYTES`] moved at the same time by one worker process (what bounds its
    /// memory).
    pub concurrency: usize,
    /// Items handled at the same time by one worker process (the queue prefetch). Small files need no transfer
    /// slot, so many of them move while `concurrency` large ones run.
    pub items_in_flight: usize,
    /// How often the sync scheduler looks for libraries whose `syncIntervalSecs` has passed (one importer
    /// replica at a time starts their runs).
    pub sync_schedule_every_secs: u64,
}

impl Default for ImporterSettings {
    fn default() -> Self {
        Self { ops_bind: "127.0.0.1:9101".into(), concurrency: 4, items_in_flight: 4, sync_schedule_every_secs: 15 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExporterSettings {
    /// Listen address of the /livez, /readyz, /metrics endpoints.
    pub ops_bind: String,
    /// Files larger than [`SMALL_FILE_BYTES`] moved at the same time by one worker process. Each is one
    /// streaming upload, so memory does not grow with file size.
    pub concurrency: usize,
    /// Items handled at the same time by one worker process (the queue prefetch); small files need no slot.
    pub items_in_flight: usize,
}

impl Default for ExporterSettings {
    fn default() -> Self {
        Self { ops_bind: "127.0.0.1:9102".into(), concurrency: 4, items_in_flight: 4 }
    }
}

/// Leases, the reaper, retries and shutdown of the workers (see ARCHITECTURE.md, failure model).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReliabilitySettings {
    /// How long a worker's claim on an item lasts without a heartbeat (heartbeats renew it every third).
    pub lease_secs: u64,
    /// How often each worker's reaper looks for items whose lease expired or whose message was lost.
    pub reaper_interval_secs: u64,
    /// A `pending` item untouched for this long may have lost its message (dead-lettered, purged). The reaper
    /// re-enqueues such items only as far as the pending items outnumber the messages the broker holds for
    /// them (work queue and delay tiers) and the outbox rows still to publish, so a long queue is never
    /// mistaken for lost messages.
    pub stale_pending_secs: u64,
    /// Claims of one item (across messages, retries and reaps) before a transient failure fails it for good.
    pub max_item_attempts: u32,
    /// Drive requests per second per Google user, per process, used only while Postgres does not answer the
    /// shared pacer (which otherwise paces every process together; see `drive_pacer_max_rate`).
    pub drive_requests_per_sec: u32,
    /// Where the shared adaptive pacer starts each Google user, and the most it ever grants one, in requests
    /// per second across every process (Google documents 12 000 queries per minute per user). Refusals for rate
    /// cut it; it recovers while requests flow.
    pub drive_pacer_max_rate: u32,
    /// Time in-flight items get after SIGTERM before the worker gives them back and exits.
    pub shutdown_deadline_secs: u64,
    /// A transfer attempt that moves no bytes (and finishes no Drive call) for this long is aborted; the item is
    /// released and retried through the delay tiers.
    pub stall_timeout_secs: u64,
    /// How long the outbox relay waits for the broker to confirm a batch before it gives up on it (the rows
    /// stay unpublished and are tried again).
    pub confirm_timeout_secs: u64,
}

impl Default for ReliabilitySettings {
    fn default() -> Self {
        Self {
            lease_secs: 120,
            reaper_interval_secs: 15,
            stale_pending_secs: 900,
            max_item_attempts: 12,
            drive_requests_per_sec: 20,
            drive_pacer_max_rate: 200,
            shutdown_deadline_secs: 25,
            stall_timeout_secs: 60,
            confirm_timeout_secs: 15,
        }
    }
}

/// Housekeeping by `ferryctl prune`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceSettings {
    /// Published outbox rows, expired OAuth states and expired picker sessions are kept this long (for
    /// investigations), then pruned.
    pub retention_hours: u64,
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        Self { retention_hours: 168 }
    }
}

impl MaintenanceSettings {
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours.saturating_mul(3600))
    }
}

/// The documents API's drive items.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemsSettings {
    /// How long a download token (`GET /item/download/token`) stays valid.
    pub download_token_ttl_secs: u64,
    /// Files read at once while a zip download streams (each holds one read buffer).
    pub zip_concurrent_reads: usize,
}

impl Default for ItemsSettings {
    fn default() -> Self {
        Self { download_token_ttl_secs: 600, zip_concurrent_reads: 4 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Pretty,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// `tracing` env-filter directives; `RUST_LOG` overrides them.
    pub log_filter: String,
    /// Base URL of an OTLP/HTTP collector (`http://collector:4318`; traces go to `/v1/traces`). Unset:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` if set, else traces are off.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self { log_format: LogFormat::Json, log_filter: "info".into(), otlp_endpoint: None }
    }
}

impl Settings {
    /// Loads every layer (defaults, `config/default.toml`, `config/$FERRY_ENV.toml`, `FERRY__*`
    /// environment variables) relative to the working directory, then validates.
    pub fn load() -> Result<Settings, ConfigError> {
        let settings = Self::loader().config_dir("config").environment_from_process().process_env().load()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Built-in defaults plus `overrides` (key paths such as `"database.url"`), nothing else: no
    /// files, no process environment. Does not validate (tests call [`Settings::validate`]).
    pub fn from_sources(overrides: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Self::loader().overrides(overrides).load()
    }

    /// A loader to pick layers explicitly.
    pub fn loader() -> SettingsLoader {
        SettingsLoader::default()
    }

    /// Checks values that deserialize fine but cannot work; lists every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = validate::problems(self);
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { problems }) }
    }
}

#[derive(Debug, Clone, Default)]
enum EnvSource {
    #[default]
    None,
    Process,
    Map(HashMap<String, String>),
}

/// Chooses which layers [`SettingsLoader::load`] reads. Nothing is read unless asked for.
#[derive(Debug, Clone, Default)]
pub struct SettingsLoader {
    config_dir: Option<PathBuf>,
    environment: Option<String>,
    env: EnvSource,
    overrides: Vec<(String, String)>,
}

impl SettingsLoader {
    /// Read `default.toml` and `<environment>.toml` from this directory (both optional).
    pub fn config_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.config_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The environment name (selects `<name>.toml`).
    pub fn environment(mut self, name: impl Into<String>) -> Self {
        self.environment = Some(name.into());
        self
    }

    /// Take the environment name from `FERRY_ENV` if it is set and not empty.
    pub fn environment_from_process(mut self) -> Self {
        if let Ok(name) = std::env::var(ENV_NAME_VAR)
            && !name.trim().is_empty()
        {
            self.environment = Some(name.trim().to_owned());
        }
        self
    }

    /// Apply `FERRY__*` variables from the process environment.
    pub fn process_env(mut self) -> Self {
        self.env = EnvSource::Process;
        self
    }

    /// Apply `FERRY__*` variables from this map instead of the process environment (for tests).
    pub fn env_vars<K: Into<String>, V: Into<String>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env = EnvSource::Map(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// Final overrides by key path (`"section.key"`), applied after every other layer.
    pub fn overrides(mut self, overrides: &[(&str, &str)]) -> Self {
        self.overrides.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// Reads the chosen layers and deserializes them. Does not validate.
    pub fn load(self) -> Result<Settings, ConfigError> {
        use config::{Config, Environment, File, FileFormat};

        let mut builder = Config::builder();
        if let Some(dir) = &self.config_dir {
            builder = builder.add_source(File::from(dir.join("default.toml")).format(FileFormat::Toml).required(false));
            if let Some(env) = &self.environment {
                builder = builder
                    .add_source(File::from(dir.join(format!("{env}.toml"))).format(FileFormat::Toml).required(false));
            }
        }
        let env_layer = Environment::with_prefix(ENV_PREFIX).separator(ENV_SEPARATOR);
        match self.env {
            EnvSource::None => {}
            EnvSource::Process => builder = builder.add_source(env_layer),
            EnvSource::Map(map) => builder = builder.add_source(env_layer.source(Some(map.into_iter().collect()))),
        }
        for (key, value) in self.overrides {
            builder = builder.set_override(key, value)?;
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.environment = self.environment.unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
        Ok(settings)
    }
}

/// Replaces the password of a URL (if any) with `[redacted]`; unparsable input is fully redacted.
pub fn redact_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("[redacted]")).is_err() {
                return "[redacted]".into();
            }
            parsed.to_string()
        }
        Err(_) => "[redacted]".into(),
    }
}

/// Accepts a list, or a string split on commas and whitespace (environment variables are strings).
fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    Ok(match ListOrString::deserialize(deserializer)? {
        ListOrString::List(items) => items,
        ListOrString::String(s) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}
