//! The item reaper each worker runs for its own kind: items whose worker died (lease expired) and pending items
//! whose message was lost (dead-lettered after the delivery limit, purged, dropped in a broker crash) are put
//! back to `pending` and re-enqueued through the outbox in the same transaction, so no item is ever stuck.
//! Several workers reaping at once is safe (`SKIP LOCKED`); duplicates their messages cause are absorbed by the
//! claim.

use std::time::Duration;

use ferry_db::Db;
use ferry_db::leases::{ReapParams, ReapReport, RequeuedItem};
use ferry_messages::Message;
use ferry_queue::CancellationToken;

use crate::worker::WorkerKind;

/// How the reaper runs.
#[derive(Debug, Clone)]
pub struct ReaperConfig {
    pub interval: Duration,
    pub stale_pending: Duration,
    pub max_attempts: u32,
}

/// The command payload for a re-enqueued item (the same message the gateway wrote when the job was created).
pub fn encode_command(kind: WorkerKind, item: &RequeuedItem) -> Vec<u8> {
    let (job_id, item_id, tenant_id) = (item.job_id.to_string(), item.item_id.to_string(), item.tenant_id.to_string());
    match kind {
        WorkerKind::Importer => {
            ferry_messages::ImportItem { job_id, item_id, tenant_id, traceparent: String::new() }.encode_to_vec()
        }
        WorkerKind::Exporter => {
            ferry_messages::ExportItem { job_id, item_id, tenant_id, traceparent: String::new() }.encode_to_vec()
        }
    }
}

/// One pass: re-enqueues what it finds (up to 500 items) and fails items out of attempts.
pub async fn reap_once(db: &Db, kind: WorkerKind, config: &ReaperConfig) -> Result<ReapReport, ferry_db::DbError> {
    let params = ReapParams {
        kind: match kind {
            WorkerKind::Importer => ferry_core::JobKind::Import,
            WorkerKind::Exporter => ferry_core::JobKind::Export,
        },
        command: kind.command().routing_key(),
        stale_pending: config.stale_pending,
        max_attempts: i32::try_from(config.max_attempts).unwrap_or(i32::MAX),
        limit: 500,
    };
    let report = db.reap_items(&params, |item| encode_command(kind, item)).await?;
    if report.total() > 0 {
        tracing::warn!(
            worker = kind.name(),
            expired_leases = report.expired_leases,
            stale_pending = report.stale_pending,
            exhausted = report.exhausted,
            "reaper re-enqueued items"
        );
        metrics::counter!("ferry_reaper_requeued_total", "worker" => kind.name(), "reason" => "expired_lease")
            .increment(report.expired_leases as u64);
        metrics::counter!("ferry_reaper_requeued_total", "worker" => kind.name(), "reason" => "stale_pending")
            .increment(report.stale_pending as u64);
        metrics::counter!("ferry_reaper_failed_total", "worker" => kind.name()).increment(report.exhausted as u64);
    }
    Ok(report)
}

/// Reaps every `config.interval` (with up to 20% jitter so workers spread out) until shutdown.
pub async fn run_reaper(db: Db, kind: WorkerKind, config: ReaperConfig, shutdown: CancellationToken) {
    loop {
        let jitter = config.interval.mul_f64(rand::random_range(0.0..0.2));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(config.interval + jitter) => {}
        }
        if let Err(err) = reap_once(&db, kind, &config).await {
            tracing::warn!(worker = kind.name(), error = %err, "reaper pass failed; trying again next interval");
        }
    }
}
