//! `drive-emulator`: runs the Google Drive v3 + OAuth emulator until SIGINT/SIGTERM.

use std::net::TcpListener;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use drive_emulator::{EmulatorConfig, Faults};

#[derive(Debug, Parser)]
#[command(name = "drive-emulator", version, about = "Google Drive v3 + Google OAuth emulator with fault injection")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "EMULATOR_BIND", default_value = "127.0.0.1:8088")]
    bind: String,
    /// The OAuth client id the emulator accepts.
    #[arg(long, env = "EMULATOR_CLIENT_ID", default_value = "ferry-dev-client")]
    client_id: String,
    /// The OAuth client secret the emulator accepts.
    #[arg(long, env = "EMULATOR_CLIENT_SECRET", default_value = "ferry-dev-secret", hide_env_values = true)]
    client_secret: String,
    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "EMULATOR_TOKEN_TTL_SECS", default_value_t = 3599)]
    token_ttl_secs: u64,
    /// Load a built-in data set at start: `demo` (folders and files for demo@ferry.test).
    #[arg(long, env = "EMULATOR_SEED", value_parser = ["demo"])]
    seed: Option<String>,
    /// Fault injection: fixed delay added to every request, in milliseconds.
    #[arg(long, env = "EMULATOR_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Fault injection: random extra delay of up to this many milliseconds.
    #[arg(long, env = "EMULATOR_JITTER_MS", default_value_t = 0)]
    jitter_ms: u64,
    /// Fault injection: KIND=RATE, repeatable. Kinds: rate_limit_429, user_rate_limit_403, rate_limit_403,
    /// backend_error_500, backend_error_503.
    #[arg(long = "error-rate", value_name = "KIND=RATE")]
    error_rates: Vec<String>,
    /// Fault injection: stop injecting rate-based errors after this many (default: no limit).
    #[arg(long)]
    error_count: Option<u64>,
    /// Fault injection: apply latency and error rates only to this endpoint (repeatable), e.g.
    /// files.get.media, upload.resumable.chunk, files.list.
    #[arg(long = "fault-endpoint", value_name = "ENDPOINT")]
    fault_endpoints: Vec<String>,
    /// Fault injection: Drive requests per second per user (beyond: 403 userRateLimitExceeded).
    #[arg(long, env = "EMULATOR_USER_RPS")]
    user_rps: Option<u32>,
    /// Fault injection: a `Retry-After` (seconds) on the refusals of --user-rps.
    #[arg(long, env = "EMULATOR_RETRY_AFTER_SECS")]
    retry_after_secs: Option<u64>,
    /// Fault injection: bytes each user may upload per day (beyond: 403 uploadLimitExceeded).
    #[arg(long, env = "EMULATOR_DAILY_UPLOAD_BYTES")]
    daily_upload_bytes: Option<u64>,
    /// Fault injection: bytes each user may download per day (beyond: 403 downloadQuotaExceeded).
    #[arg(long, env = "EMULATOR_DAILY_DOWNLOAD_BYTES")]
    daily_download_bytes: Option<u64>,
    /// Fault injection: close downloads after this many body bytes.
    #[arg(long, env = "EMULATOR_CUT_DOWNLOAD_AFTER")]
    cut_download_after: Option<u64>,
    /// Fault injection: only cut this many downloads (default: all).
    #[arg(long, requires = "cut_download_after")]
    cut_download_times: Option<u64>,
    /// Fault injection: downloads go silent after this many body bytes (see --stall-for-ms).
    #[arg(long, env = "EMULATOR_STALL_DOWNLOAD_AFTER")]
    stall_download_after: Option<u64>,
    /// Fault injection: resumable upload chunks stop being read after this many body bytes.
    #[arg(long, env = "EMULATOR_STALL_UPLOAD_AFTER")]
    stall_upload_after: Option<u64>,
    /// Fault injection: how long a stall lasts (default: until the client gives up).
    #[arg(long, env = "EMULATOR_STALL_FOR_MS")]
    stall_for_ms: Option<u64>,
    /// Fault injection: only stall this many transfers (default: all).
    #[arg(long, env = "EMULATOR_STALL_TIMES")]
    stall_times: Option<u64>,
    /// Fault injection: flip the first byte of this many downloads (they no longer match their checksums).
    #[arg(long, env = "EMULATOR_CORRUPT_DOWNLOADS")]
    corrupt_downloads: Option<u64>,
    /// Keep file contents and state in this directory, so they survive a restart (default: a temporary directory).
    #[arg(long, env = "EMULATOR_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Load a directory tree at start: top-level directories named like an email address are users (their
    /// contents that user's My Drive); everything else goes to demo@ferry.test's My Drive.
    #[arg(long, env = "EMULATOR_SEED_DIR")]
    seed_dir: Option<std::path::PathBuf>,
    /// Show a consent page (Allow / Deny, account picked by login_hint or typed) instead of approving at once.
    #[arg(long, env = "EMULATOR_CONSENT")]
    consent: bool,
    /// Log format: `json` or `pretty`.
    #[arg(long, env = "EMULATOR_LOG_FORMAT", default_value = "json")]
    log_format: String,
    /// Log filter directives (`RUST_LOG` wins when set).
    #[arg(long, env = "EMULATOR_LOG_FILTER", default_value = "info")]
    log_filter: String,
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = ferry_telemetry::init("drive-emulator", &args.log_format, &args.log_filter);
    let mut faults = Faults {
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        user_requests_per_second: args.user_rps,
        retry_after_secs: args.retry_after_secs,
        daily_upload_bytes: args.daily_upload_bytes,
        daily_download_bytes: args.daily_download_bytes,
        cut_download_after_bytes: args.cut_download_after,
        cut_download_times: args.cut_download_times,
        stall_download_after_bytes: args.stall_download_after,
        stall_upload_after_bytes: args.stall_upload_after,
        stall_for_ms: args.stall_for_ms,
        stall_times: args.stall_times,
        corrupt_downloads: args.corrupt_downloads,
        error_count: args.error_count,
        endpoints: args.fault_endpoints.clone(),
        ..Faults::default()
    };
    for spec in &args.error_rates {
        faults.set_error_rate_spec(spec).with_context(|| format!("--error-rate {spec}"))?;
    }
    faults.validate().context("fault injection flags")?;
    let config = EmulatorConfig {
        client_id: args.client_id,
        client_secret: args.client_secret,
        access_token_ttl: Duration::from_secs(args.token_ttl_secs),
        auto_approve: !args.consent,
        faults,
        data_dir: args.data_dir.clone(),
        ..EmulatorConfig::default()
    };
    let listener = TcpListener::bind(&args.bind).with_context(|| format!("binding {}", args.bind))?;
    let seed = args.seed.clone();
    let seed_dir = args.seed_dir.clone();
    let emulator = drive_emulator::spawn_prepared(config, listener, move |state| {
        let restored = !state.is_empty();
        if restored && (seed.is_some() || seed_dir.is_some()) {
            tracing::info!("state restored from --data-dir: seeds are not loaded again");
            return Ok(());
        }
        if seed.as_deref() == Some("demo") {
            drive_emulator::seed::seed_demo(state);
            tracing::info!("loaded the demo data set");
        }
        if let Some(dir) = &seed_dir {
            let count = drive_emulator::seed::seed_dir(state, dir).map_err(std::io::Error::other)?;
            tracing::info!(count, dir = %dir.display(), "loaded the seed directory");
        }
        Ok(())
    })
    .await
    .context("starting the emulator")?;
    tracing::info!(
        base_url = emulator.base_url(),
        default_user = drive_emulator::DEFAULT_USER_EMAIL,
        "drive emulator ready"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    emulator.stop().await;
    Ok(())
}
