//! `drive-emulator`: runs the in-memory Google Drive v3 + OAuth server until SIGINT/SIGTERM.

use std::net::TcpListener;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use drive_emulator::EmulatorConfig;

#[derive(Debug, Parser)]
#[command(name = "drive-emulator", version, about = "In-memory Google Drive v3 + Google OAuth server")]
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
    let config = EmulatorConfig {
        client_id: args.client_id,
        client_secret: args.client_secret,
        access_token_ttl: Duration::from_secs(args.token_ttl_secs),
        auto_approve: true,
    };
    let listener = TcpListener::bind(&args.bind).with_context(|| format!("binding {}", args.bind))?;
    let emulator = drive_emulator::spawn(config, listener).await.context("starting the emulator")?;
    if args.seed.as_deref() == Some("demo") {
        drive_emulator::seed::seed_demo(emulator.state());
        tracing::info!("loaded the demo data set");
    }
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
