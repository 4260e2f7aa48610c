//! The references: curl, wrk and pgbench run as child processes, each bounded in time and killed when it
//! overruns or when the bench is interrupted (`kill_on_drop`). Also the small helpers they need: an access token
//! from the emulator, generated files, and readings from `/proc`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

/// Runs `command` to completion within `limit`; a non-zero exit is an error carrying the end of its stderr.
pub async fn run_bounded(
    command: &mut tokio::process::Command,
    limit: Duration,
    what: &str,
) -> anyhow::Result<(Duration, std::process::Output)> {
    command.kill_on_drop(true).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    // Dropping the future on timeout drops the child, which kill_on_drop kills.
    let output = tokio::time::timeout(limit, command.output())
        .await
        .map_err(|_| anyhow!("{what} did not finish within {limit:?}"))?
        .with_context(|| format!("running {what}"))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("{what} failed ({}): {tail}", output.status);
    }
    Ok((elapsed, output))
}

/// One transfer of a `curl --parallel` run.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    pub url: String,
    pub headers: Vec<String>,
    /// Where the body goes (`/dev/null` to discard it).
    pub output: PathBuf,
    /// A file to PUT.
    pub upload: Option<PathBuf>,
    /// A body to POST.
    pub data: Option<String>,
    /// Where to write the response headers.
    pub dump_header: Option<PathBuf>,
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Runs `transfers` with one curl process, at most `parallel` at once over reused (keep-alive) connections;
/// returns the wall time of the whole run. Every transfer must answer 2xx.
pub async fn curl_parallel(
    transfers: &[Transfer],
    parallel: usize,
    config: &Path,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let mut text = String::new();
    for (n, transfer) in transfers.iter().enumerate() {
        if n > 0 {
            text.push_str("next\n");
        }
        // `next` resets per-transfer options, so each group repeats them.
        let _ = writeln!(text, "url = {}", quoted(&transfer.url));
        let _ = writeln!(text, "output = {}", quoted(&transfer.output.display().to_string()));
        let _ = writeln!(text, "write-out = \"%{{http_code}}\\n\"");
        for header in &transfer.headers {
            let _ = writeln!(text, "header = {}", quoted(header));
        }
        if let Some(upload) = &transfer.upload {
            let _ = writeln!(text, "upload-file = {}", quoted(&upload.display().to_string()));
            // No `Expect: 100-continue` round trip before the body.
            let _ = writeln!(text, "header = \"Expect:\"");
        }
        if let Some(data) = &transfer.data {
            let _ = writeln!(text, "data-raw = {}", quoted(data));
        }
        if let Some(path) = &transfer.dump_header {
            let _ = writeln!(text, "dump-header = {}", quoted(&path.display().to_string()));
        }
    }
    std::fs::write(config, text).with_context(|| format!("writing {}", config.display()))?;
    let mut command = tokio::process::Command::new("curl");
    command
        .args(["--silent", "--show-error", "--parallel", "--parallel-immediate", "--parallel-max"])
        .arg(parallel.to_string())
        .arg("--config")
        .arg(config);
    let (elapsed, output) = run_bounded(&mut command, limit, "curl --parallel").await?;
    let codes = String::from_utf8_lossy(&output.stdout);
    let ok = codes.lines().filter(|code| code.starts_with('2')).count();
    if ok != transfers.len() {
        let bad: Vec<&str> = codes.lines().filter(|code| !code.starts_with('2')).take(5).collect();
        bail!("curl: {ok} of {} transfers answered 2xx (others: {bad:?})", transfers.len());
    }
    Ok(elapsed)
}

/// An access token for `email` from the emulator's OAuth endpoints (authorization code flow, auto-approved),
/// so the references call Drive exactly as Ferry does. `http` must not follow redirects.
pub async fn emulator_token(http: &reqwest::Client, emulator: &str, email: &str) -> anyhow::Result<String> {
    let redirect = "http://127.0.0.1/bench-callback";
    let mut url = url::Url::parse(&format!("{emulator}/o/oauth2/v2/auth"))?;
    url.query_pairs_mut()
        .append_pair("client_id", "ferry-dev-client")
        .append_pair("redirect_uri", redirect)
        .append_pair("response_type", "code")
        .append_pair("scope", "https://www.googleapis.com/auth/drive")
        .append_pair("login_hint", email)
        .append_pair("state", "bench");
    let response = http.get(url).send().await.context("asking the emulator to authorize")?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow!("the emulator's authorize answered {} without a redirect", response.status()))?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow!("no code in {location}"))?;
    let body: Value = http
        .post(format!("{emulator}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("client_id", "ferry-dev-client"),
            ("client_secret", "ferry-dev-secret"),
        ])
        .send()
        .await
        .context("exchanging the code")?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["access_token"].as_str().ok_or_else(|| anyhow!("no access_token in {body}"))?.to_owned())
}

/// Writes `size` deterministic pseudo-random bytes to `path` in 4 MiB pieces (never the whole file in memory).
pub fn generate_file(path: &Path, size: u64, seed: u64) -> anyhow::Result<()> {
    use std::io::Write;
    const PIECE: u64 = 4 * 1024 * 1024;
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(PIECE as usize, file);
    let mut written = 0;
    let mut piece = 0u64;
    while written < size {
        let len = PIECE.min(size - written);
        let bytes = ferry_chaos::test_bytes(len as usize, seed.wrapping_mul(1_000_003).wrapping_add(piece));
        out.write_all(&bytes).with_context(|| format!("writing {}", path.display()))?;
        written += len;
        piece += 1;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A process's peak resident set (VmHWM) in bytes.
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or_else(|| anyhow!("no VmHWM for {pid}"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("unreadable VmHWM line {line:?}"))?;
    Ok(kib * 1024)
}

/// wrk's figures: requests per second and how many answers were not 2xx/3xx.
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub non_2xx: u64,
    pub socket_errors: Option<String>,
    pub latency_p50: String,
    pub latency_p99: String,
}

pub async fn wrk(url: &str, bearer: &str, connections: u32, secs: u64) -> anyhow::Result<WrkResult> {
    let mut command = tokio::process::Command::new("wrk");
    command
        .args(["-t2", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{secs}s"))
        .args(["-H", &format!("Authorization: Bearer {bearer}")])
        .arg(url);
    let (_, output) = run_bounded(&mut command, Duration::from_secs(secs + 30), "wrk").await?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let value_after =
        |label: &str| text.lines().find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()));
    let requests_per_sec = value_after("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no Requests/sec in wrk's output: {text}"))?;
    let non_2xx = value_after("Non-2xx or 3xx responses:").and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(WrkResult {
        requests_per_sec,
        non_2xx,
        socket_errors: value_after("Socket errors:"),
        latency_p50: value_after("50%").unwrap_or_default(),
        latency_p99: value_after("99%").unwrap_or_default(),
    })
}

/// The pgbench binary: on PATH, else the newest under /usr/lib/postgresql/*/bin.
pub fn pgbench_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("FERRY_PGBENCH") {
        return Ok(PathBuf::from(path));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.path().join("bin/pgbench")).filter(|p| p.exists()).collect())
        .unwrap_or_default();
    found.sort();
    if let Some(path) = found.pop() {
        return Ok(path);
    }
    which("pgbench").ok_or_else(|| anyhow!("pgbench not found (apt-get install postgresql-contrib or postgresql)"))
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(tool)).find(|p| p.is_file())
}

/// pgbench's select-only transactions per second (without initial connection time) against `db_url`.
pub async fn pgbench_select_only(db_url: &str, scale: u32, clients: u32, secs: u64) -> anyhow::Result<f64> {
    let binary = pgbench_binary()?;
    let mut init = tokio::process::Command::new(&binary);
    init.args(["-i", "-q", "-s"]).arg(scale.to_string()).arg(db_url);
    run_bounded(&mut init, Duration::from_secs(180), "pgbench -i").await?;
    let mut run = tokio::process::Command::new(&binary);
    run.args(["-S", "-n", "-c"]).arg(clients.to_string()).args(["-j", "2", "-T"]).arg(secs.to_string()).arg(db_url);
    let (_, output) = run_bounded(&mut run, Duration::from_secs(secs + 60), "pgbench -S").await?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .filter(|l| l.starts_with("tps = "))
        .find(|l| !l.contains("including"))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next().and_then(|v| v.parse().ok()))
        .ok_or_else(|| anyhow!("no tps in pgbench's output: {text}"))
}

/// The median and the given percentile (nearest rank) of `values`, which must not be empty.
pub fn percentile(values: &[f64], pct: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
    }

    #[test]
    fn curl_config_values_are_escaped() {
        assert_eq!(quoted(r#"{"name":"a\b"}"#), r#""{\"name\":\"a\\b\"}""#);
    }
}
