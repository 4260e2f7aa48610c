//! Fault injection and request accounting.
//!
//! [`Faults`] is what tests (or `--latency-ms`, `--error-rate`, ... at start) ask the emulator to do to
//! Drive requests: wait, fail with Google-shaped errors at given rates, throttle a user beyond a number of
//! requests per second, cap each user's daily upload and download bytes, and cut downloads short.
//! [`Counters`] say what clients did, per endpoint and per user. Both are behind their own lock, apart
//! from the data, and held only for short synchronous sections.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use chrono::{NaiveDate, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::DriveError;

/// Probabilities (0.0 ..= 1.0, summing to at most 1) that a Drive request fails with each error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorRates {
    /// 429 usageLimits/rateLimitExceeded.
    pub rate_limit_429: f64,
    /// 403 usageLimits/userRateLimitExceeded.
    pub user_rate_limit_403: f64,
    /// 403 usageLimits/rateLimitExceeded.
    pub rate_limit_403: f64,
    /// 500 global/backendError.
    pub backend_error_500: f64,
    /// 503 global/backendError.
    pub backend_error_503: f64,
}

/// The error kinds [`ErrorRates`] can inject, by their JSON / flag names.
pub const ERROR_KINDS: &[&str] =
    &["rate_limit_429", "user_rate_limit_403", "rate_limit_403", "backend_error_500", "backend_error_503"];

impl ErrorRates {
    fn entries(&self) -> [(&'static str, f64); 5] {
        [
            ("rate_limit_429", self.rate_limit_429),
            ("user_rate_limit_403", self.user_rate_limit_403),
            ("rate_limit_403", self.rate_limit_403),
            ("backend_error_500", self.backend_error_500),
            ("backend_error_503", self.backend_error_503),
        ]
    }

    /// Sets one rate by its name (see [`ERROR_KINDS`]).
    pub fn set(&mut self, kind: &str, rate: f64) -> Result<(), FaultsError> {
        let slot = match kind {
            "rate_limit_429" => &mut self.rate_limit_429,
            "user_rate_limit_403" => &mut self.user_rate_limit_403,
            "rate_limit_403" => &mut self.rate_limit_403,
            "backend_error_500" => &mut self.backend_error_500,
            "backend_error_503" => &mut self.backend_error_503,
            other => return Err(FaultsError::UnknownKind(other.to_owned())),
        };
        *slot = rate;
        Ok(())
    }
}

/// What to do to requests. The default does nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every request (OAuth and Drive; not `/__emulator/`), in milliseconds.
    pub latency_ms: u64,
    /// A random extra delay of 0..=jitter_ms on top of `latency_ms`.
    pub jitter_ms: u64,
    /// Drive requests (`/drive/v3/...`, `/upload/...`) fail at these rates.
    pub error_rates: ErrorRates,
    /// Inject at most this many rate-based errors, then stop (counts down): with a rate of 1.0, "fail the
    /// next N requests". `None`: no limit.
    pub error_count: Option<u64>,
    /// Latency and error rates apply only to these endpoints (`files.get.media`, `upload.resumable.chunk`,
    /// ... as in the counters); empty: to every request.
    pub endpoints: Vec<String>,
    /// Drive requests per second per user (per calendar second, refused requests included); beyond it 403
    /// userRateLimitExceeded.
    pub user_requests_per_second: Option<u32>,
    /// `Retry-After` (seconds) on the refusals of `user_requests_per_second`; `None`: no header, as Google
    /// usually answers.
    pub retry_after_secs: Option<u64>,
    /// Bytes each user may upload per UTC day; beyond it 403 uploadLimitExceeded.
    pub daily_upload_bytes: Option<u64>,
    /// Bytes each user may download (media and exports) per UTC day; beyond it 403 downloadQuotaExceeded.
    pub daily_download_bytes: Option<u64>,
    /// Downloads end (the connection is closed) after this many body bytes.
    pub cut_download_after_bytes: Option<u64>,
    /// How many downloads to cut; `None` cuts every one. Counts down as downloads are cut.
    pub cut_download_times: Option<u64>,
    /// Downloads stop sending after this many body bytes (the connection stays open, silent) for
    /// `stall_for_ms`, then carry on.
    pub stall_download_after_bytes: Option<u64>,
    /// Resumable upload chunks stop being read after this many body bytes (the client's send blocks) for
    /// `stall_for_ms`, then carry on.
    pub stall_upload_after_bytes: Option<u64>,
    /// How long a stall lasts; `None`: until the client gives up and closes the connection.
    pub stall_for_ms: Option<u64>,
    /// How many transfers to stall; `None` stalls every one. Counts down as transfers are stalled.
    pub stall_times: Option<u64>,
    /// The next this many downloads (`alt=media`) arrive with their first byte flipped, so they no longer match
    /// the file's size-preserving checksums (a corruption on the way). Counts down.
    pub corrupt_downloads: Option<u64>,
}

/// Which way a stalled transfer was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StallKind {
    Download,
    Upload,
}

/// A transfer that goes silent after `after_bytes` body bytes, for `duration` (`None`: until the client gives up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub after_bytes: u64,
    pub duration: Option<Duration>,
}

impl Stall {
    /// Waits out the stall: the given duration, or (practically) forever when none was given, in which case
    /// the request ends when the client closes the connection.
    pub async fn wait(&self) {
        match self.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending::<()>().await,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultsError {
    #[error("unknown error kind {0:?}; expected one of {ERROR_KINDS:?}")]
    UnknownKind(String),
    #[error("error rate {kind} = {rate} is not within 0..=1")]
    RateOutOfRange { kind: &'static str, rate: f64 },
    #[error("error rates add up to {0}, more than 1")]
    RatesOverOne(f64),
    #[error("user_requests_per_second must be at least 1")]
    ZeroRps,
    #[error("expected KIND=RATE (e.g. rate_limit_429=0.1), got {0:?}")]
    BadSpec(String),
}

impl Faults {
    pub fn validate(&self) -> Result<(), FaultsError> {
        let mut sum = 0.0;
        for (kind, rate) in self.error_rates.entries() {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultsError::RateOutOfRange { kind, rate });
            }
            sum += rate;
        }
        if sum > 1.0 + 1e-9 {
            return Err(FaultsError::RatesOverOne(sum));
        }
        if self.user_requests_per_second == Some(0) {
            return Err(FaultsError::ZeroRps);
        }
        Ok(())
    }

    /// Parses `KIND=RATE` (the `--error-rate` flag) into this configuration.
    pub fn set_error_rate_spec(&mut self, spec: &str) -> Result<(), FaultsError> {
        let (kind, rate) = spec.split_once('=').ok_or_else(|| FaultsError::BadSpec(spec.to_owned()))?;
        let rate: f64 = rate.trim().parse().map_err(|_| FaultsError::BadSpec(spec.to_owned()))?;
        self.error_rates.set(kind.trim(), rate)
    }
}

/// The Google-shaped error for an injected fault kind.
pub fn injected_error(kind: &str) -> DriveError {
    match kind {
        "rate_limit_429" => DriveError::new(StatusCode::TOO_MANY_REQUESTS, "rateLimitExceeded", "Rate Limit Exceeded")
            .in_domain("usageLimits"),
        "user_rate_limit_403" => user_rate_limited(),
        "rate_limit_403" => {
            DriveError::new(StatusCode::FORBIDDEN, "rateLimitExceeded", "Rate Limit Exceeded").in_domain("usageLimits")
        }
        "backend_error_503" => DriveError::new(StatusCode::SERVICE_UNAVAILABLE, "backendError", "Backend Error"),
        _ => DriveError::new(StatusCode::INTERNAL_SERVER_ERROR, "backendError", "Backend Error"),
    }
}

pub fn user_rate_limited() -> DriveError {
    DriveError::new(StatusCode::FORBIDDEN, "userRateLimitExceeded", "User Rate Limit Exceeded").in_domain("usageLimits")
}

pub fn upload_limit_exceeded() -> DriveError {
    DriveError::new(StatusCode::FORBIDDEN, "uploadLimitExceeded", "The user has exceeded their daily upload limit.")
        .in_domain("usageLimits")
}

pub fn download_quota_exceeded() -> DriveError {
    DriveError::new(
        StatusCode::FORBIDDEN,
        "downloadQuotaExceeded",
        "The download quota for this file has been exceeded.",
    )
    .in_domain("usageLimits")
}

/// What one user did since the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserCounters {
    pub requests: u64,
    pub endpoints: BTreeMap<String, u64>,
    pub uploaded_bytes: u64,
    pub downloaded_bytes: u64,
    /// Requests answered with an injected error (error rates and the per-second quota).
    pub injected_errors: u64,
}

/// What clients did since the last reset: per endpoint (`files.list`, `upload.resumable.chunk`, ...) and per
/// user (by email; Drive requests without a known user are counted under endpoints only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub total: u64,
    pub endpoints: BTreeMap<String, u64>,
    pub users: BTreeMap<String, UserCounters>,
    /// Injected errors by kind (`rate_limit_429`, ..., `user_requests_per_second`, `daily_upload_bytes`,
    /// `daily_download_bytes`, `cut_download`, `corrupt_download`).
    pub injected: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Daily {
    day: Option<NaiveDate>,
    uploaded: u64,
    downloaded: u64,
}

#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub faults: Faults,
    pub counters: Counters,
    /// Per user: (unix second, requests in it).
    window: HashMap<String, (i64, u32)>,
    daily: HashMap<String, Daily>,
}

/// The decision for one request, made when it arrives.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub delay: Duration,
    pub error: Option<DriveError>,
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        Self { faults, ..Self::default() }
    }

    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
        self.window.clear();
        self.daily.clear();
    }

    /// Counts a request and decides its fate. `drive` = a Drive API request (faults apply);
    /// `user` = the caller's email when known.
    pub fn plan(&mut self, endpoint: &str, user: Option<&str>, drive: bool) -> Plan {
        self.counters.total += 1;
        *self.counters.endpoints.entry(endpoint.to_owned()).or_default() += 1;
        if let Some(email) = user {
            let u = self.counters.users.entry(email.to_owned()).or_default();
            u.requests += 1;
            *u.endpoints.entry(endpoint.to_owned()).or_default() += 1;
        }
        let mut rng = rand::rng();
        let targeted = self.faults.endpoints.is_empty() || self.faults.endpoints.iter().any(|e| e == endpoint);
        let jitter = if self.faults.jitter_ms > 0 { rng.random_range(0..=self.faults.jitter_ms) } else { 0 };
        let delay = if targeted { Duration::from_millis(self.faults.latency_ms + jitter) } else { Duration::ZERO };
        let mut plan = Plan { delay, error: None };
        if !drive {
            return plan;
        }
        if let (Some(limit), Some(email)) = (self.faults.user_requests_per_second, user) {
            let now = Utc::now().timestamp();
            let slot = self.window.entry(email.to_owned()).or_insert((now, 0));
            if slot.0 != now {
                *slot = (now, 0);
            }
            slot.1 += 1;
            if slot.1 > limit {
                self.injected("user_requests_per_second", user);
                let mut refusal = user_rate_limited();
                if let Some(secs) = self.faults.retry_after_secs {
                    refusal = refusal.with_header(actix_web::http::header::RETRY_AFTER, secs.to_string());
                }
                plan.error = Some(refusal);
                return plan;
            }
        }
        if !targeted || self.faults.error_count == Some(0) {
            return plan;
        }
        let roll: f64 = rng.random();
        let mut acc = 0.0;
        for (kind, rate) in self.faults.error_rates.entries() {
            acc += rate;
            if rate > 0.0 && roll < acc {
                if let Some(n) = &mut self.faults.error_count {
                    *n -= 1;
                }
                self.injected(kind, user);
                plan.error = Some(injected_error(kind));
                break;
            }
        }
        plan
    }

    fn injected(&mut self, kind: &str, user: Option<&str>) {
        *self.counters.injected.entry(kind.to_owned()).or_default() += 1;
        if let Some(email) = user {
            self.counters.users.entry(email.to_owned()).or_default().injected_errors += 1;
        }
    }

    fn daily(&mut self, email: &str) -> &mut Daily {
        let today = Utc::now().date_naive();
        let d = self.daily.entry(email.to_owned()).or_default();
        if d.day != Some(today) {
            *d = Daily { day: Some(today), uploaded: 0, downloaded: 0 };
        }
        d
    }

    /// Accounts `bytes` uploaded by `email`; refuses them (counting nothing) past the daily cap.
    pub fn charge_upload(&mut self, email: &str, bytes: u64) -> Result<(), DriveError> {
        let cap = self.faults.daily_upload_bytes;
        let d = self.daily(email);
        if cap.is_some_and(|cap| d.uploaded + bytes > cap) {
            self.injected("daily_upload_bytes", Some(email));
            return Err(upload_limit_exceeded());
        }
        d.uploaded += bytes;
        self.counters.users.entry(email.to_owned()).or_default().uploaded_bytes += bytes;
        Ok(())
    }

    /// Accounts a download of `bytes` by `email`; refuses it past the daily cap.
    pub fn charge_download(&mut self, email: &str, bytes: u64) -> Result<(), DriveError> {
        let cap = self.faults.daily_download_bytes;
        let d = self.daily(email);
        if cap.is_some_and(|cap| d.downloaded + bytes > cap) {
            self.injected("daily_download_bytes", Some(email));
            return Err(download_quota_exceeded());
        }
        d.downloaded += bytes;
        self.counters.users.entry(email.to_owned()).or_default().downloaded_bytes += bytes;
        Ok(())
    }

    /// Whether (and where) to stall the next transfer of this kind (consumes one of `stall_times`).
    pub fn take_stall(&mut self, kind: StallKind, email: Option<&str>) -> Option<Stall> {
        let after_bytes = match kind {
            StallKind::Download => self.faults.stall_download_after_bytes?,
            StallKind::Upload => self.faults.stall_upload_after_bytes?,
        };
        match &mut self.faults.stall_times {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        self.injected(
            match kind {
                StallKind::Download => "stall_download",
                StallKind::Upload => "stall_upload",
            },
            email,
        );
        Some(Stall { after_bytes, duration: self.faults.stall_for_ms.map(Duration::from_millis) })
    }

    /// Whether to corrupt the next download (consumes one of `corrupt_downloads`).
    pub fn take_corruption(&mut self, email: Option<&str>) -> bool {
        match &mut self.faults.corrupt_downloads {
            Some(n) if *n > 0 => *n -= 1,
            _ => return false,
        }
        self.injected("corrupt_download", email);
        true
    }

    /// Where to cut the next download, if anywhere (consumes one of `cut_download_times`).
    pub fn take_cut(&mut self, email: Option<&str>) -> Option<u64> {
        let after = self.faults.cut_download_after_bytes?;
        match &mut self.faults.cut_download_times {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None => {}
        }
        self.injected("cut_download", email);
        Some(after)
    }
}

/// A stable name for the API method a request calls, for the per-endpoint counters.
pub fn endpoint_name(method: &Method, path: &str, query: &str) -> String {
    let has =
        |key: &str| url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    let files_id = path.strip_prefix("/drive/v3/files/");
    let name = match (method.as_str(), path) {
        (_, "/o/oauth2/v2/auth" | "/o/oauth2/auth") => "oauth.authorize",
        (_, "/token") => "oauth.token",
        (_, "/revoke" | "/o/oauth2/revoke") => "oauth.revoke",
        (_, "/oauth2/v3/userinfo" | "/v1/userinfo" | "/oauth2/v2/userinfo") => "oauth.userinfo",
        (_, "/.well-known/openid-configuration") => "oauth.discovery",
        ("GET", "/drive/v3/files") => "files.list",
        ("POST", "/drive/v3/files") => "files.create",
        ("GET", "/drive/v3/files/generateIds") => "files.generateIds",
        ("GET", "/drive/v3/about") => "about.get",
        ("GET", "/drive/v3/changes") => "changes.list",
        ("GET", "/drive/v3/changes/startPageToken") => "changes.getStartPageToken",
        ("GET", "/drive/v3/drives") => "drives.list",
        ("POST", "/drive/v3/drives") => "drives.create",
        ("GET", p) if p.starts_with("/drive/v3/drives/") => "drives.get",
        (m, p) if p.starts_with("/upload/drive/v3/files") || p.starts_with("/resumable/upload/drive/v3/files") => {
            if has("upload_id").is_some() {
                return match m {
                    "DELETE" => "upload.resumable.cancel".to_owned(),
                    _ => "upload.resumable.chunk".to_owned(),
                };
            }
            let verb = if p.ends_with("/files") { "create" } else { "update" };
            let kind = has("uploadType").unwrap_or_else(|| "unknown".to_owned());
            return format!("upload.{kind}.{verb}");
        }
        (m, _) if files_id.is_some_and(|rest| rest.ends_with("/export")) && m == "GET" => "files.export",
        ("GET", _) if files_id.is_some() => {
            if has("alt").as_deref() == Some("media") {
                "files.get.media"
            } else {
                "files.get"
            }
        }
        ("PATCH", _) if files_id.is_some() => "files.update",
        ("DELETE", _) if files_id.is_some() => "files.delete",
        (_, p) if p.starts_with("/discovery/") => "discovery",
        _ => "other",
    };
    name.to_owned()
}

/// Drive API requests (faults apply to them), as opposed to OAuth, health and admin paths.
pub fn is_drive_path(path: &str) -> bool {
    path.starts_with("/drive/v3/") || path.starts_with("/upload/") || path.starts_with("/resumable/upload/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_validated() {
        let mut f = Faults::default();
        assert_eq!(f.validate(), Ok(()));
        f.set_error_rate_spec("rate_limit_429=0.7").expect("spec");
        f.set_error_rate_spec("backend_error_503 = 0.3").expect("spec");
        assert_eq!(f.validate(), Ok(()));
        f.set_error_rate_spec("backend_error_500=0.2").expect("spec");
        assert!(matches!(f.validate(), Err(FaultsError::RatesOverOne(_))));
        assert!(matches!(f.set_error_rate_spec("nope=0.1"), Err(FaultsError::UnknownKind(_))));
        assert!(matches!(f.set_error_rate_spec("rate_limit_429"), Err(FaultsError::BadSpec(_))));
        let mut g = Faults::default();
        g.error_rates.rate_limit_403 = 1.5;
        assert!(matches!(g.validate(), Err(FaultsError::RateOutOfRange { .. })));
    }

    #[test]
    fn endpoints_have_method_names() {
        let n = |m: Method, p: &str, q: &str| endpoint_name(&m, p, q);
        assert_eq!(n(Method::GET, "/drive/v3/files", ""), "files.list");
        assert_eq!(n(Method::GET, "/drive/v3/files/abc", "alt=media"), "files.get.media");
        assert_eq!(n(Method::GET, "/drive/v3/files/abc", ""), "files.get");
        assert_eq!(n(Method::GET, "/drive/v3/files/abc/export", "mimeType=text/plain"), "files.export");
        assert_eq!(n(Method::POST, "/upload/drive/v3/files", "uploadType=multipart"), "upload.multipart.create");
        assert_eq!(
            n(Method::PUT, "/upload/drive/v3/files", "uploadType=resumable&upload_id=x"),
            "upload.resumable.chunk"
        );
        assert_eq!(n(Method::PATCH, "/upload/drive/v3/files/abc", "uploadType=media"), "upload.media.update");
        assert_eq!(n(Method::POST, "/token", ""), "oauth.token");
    }

    #[test]
    fn cut_times_count_down() {
        let mut s = FaultState::new(Faults {
            cut_download_after_bytes: Some(10),
            cut_download_times: Some(1),
            ..Faults::default()
        });
        assert_eq!(s.take_cut(None), Some(10));
        assert_eq!(s.take_cut(None), None);
    }

    #[test]
    fn corruptions_count_down() {
        let mut s = FaultState::new(Faults { corrupt_downloads: Some(2), ..Faults::default() });
        assert!(s.take_corruption(None));
        assert!(s.take_corruption(None));
        assert!(!s.take_corruption(None));
        assert!(!FaultState::new(Faults::default()).take_corruption(None));
    }
}
