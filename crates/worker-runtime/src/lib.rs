//! The process shell shared by the worker binaries: settings, logs and metrics, the ops endpoints,
//! signal handling and a bounded graceful shutdown around a [`WorkerService`].

use std::time::Duration;

use anyhow::Context;
use ferry_ops_http::Readiness;
use ferry_transfer::{WorkerKind, WorkerService};

/// Runs a worker process until SIGINT or SIGTERM.
pub async fn run(kind: WorkerKind) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = ferry_config::Settings::load().context("loading settings")?;
    let telemetry = ferry_telemetry::init_traced(
        kind.name(),
        settings.telemetry.log_format.as_str(),
        &settings.telemetry.log_filter,
        settings.telemetry.otlp_endpoint.as_deref(),
    );
    let ops_bind = match kind {
        WorkerKind::Importer => settings.importer.ops_bind.clone(),
        WorkerKind::Exporter => settings.exporter.ops_bind.clone(),
    };
    let service = WorkerService::start(&settings, kind)?;
    let (broker_connected, db) = service.readiness_checks();
    let readiness = Readiness::new()
        .with_check("database", move || {
            let db = db.clone();
            async move { db.is_ready().await }
        })
        .with_check("broker", move || {
            let connected = broker_connected.clone();
            async move { connected() }
        });
    let ops = ferry_ops_http::serve(&ops_bind, readiness).await.with_context(|| format!("binding {ops_bind}"))?;
    tracing::info!(worker = kind.name(), ops = %ops.local_addr(), "worker started");

    wait_for_signal().await?;
    tracing::info!(worker = kind.name(), "shutting down");
    // In-flight items get `reliability.shutdown_deadline_secs` to finish; the rest are handed back.
    service.stop(Duration::from_secs(settings.reliability.shutdown_deadline_secs)).await;
    let _ = ops.stop(true).await;
    telemetry.flush_traces();
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT"),
        _ = terminate.recv() => Ok(()),
    }
}
