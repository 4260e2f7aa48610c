//! The gateway binary: loads settings, starts the API and the outbox relay, stops cleanly on SIGTERM.

use anyhow::Context;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = ferry_config::Settings::load().context("loading settings")?;
    let _telemetry = ferry_telemetry::init_traced(
        "gateway",
        settings.telemetry.log_format.as_str(),
        &settings.telemetry.log_filter,
        settings.telemetry.otlp_endpoint.as_deref(),
    );
    let bind = settings.gateway.bind.clone();
    let listener = std::net::TcpListener::bind(&bind).with_context(|| format!("binding {bind}"))?;
    let gateway = ferry_gateway::start(settings, listener)?;
    tracing::info!(address = %gateway.local_addr, ops = %gateway.ops.local_addr(), "gateway listening");
    let finished = gateway.finish().await;
    _telemetry.flush_traces();
    finished
}
