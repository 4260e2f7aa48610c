//! The item reaper each worker runs for its own kind: items whose worker died (lease expired) and pending items
//! whose message was lost (dead-lettered after the delivery limit, purged, dropped in a broker crash) are put
//! back to `pending` and re-enqueued through the outbox in the same transaction, so no item is ever stuck.
//! Several workers reaping at once is safe (`SKIP LOCKED`); duplicates their messages cause are absorbed by the
//! claim. A pending item is only taken for lost when the pending items outnumber the messages the broker holds
//! for them (the work queue and its delay tiers) plus the outbox rows still to publish: a long queue is a
//! backlog, not a loss, and re-enqueueing it would only double it.

use std::time::Duration;

use ferry_db::Db;
use ferry_db::leases::{ReapParams, ReapReport, RequeuedItem};
use ferry_messages::Message;
use ferry_queue::{Broker, CancellationToken, Topology};

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

/// Messages of `kind`'s command ready in the broker: its work queue and every delay tier. `None` when the broker
/// cannot be asked (then no message can be proven lost).
pub async fn queued_messages(broker: Option<&Broker>, topology: &Topology, kind: WorkerKind) -> Option<i64> {
    let broker = broker.filter(|broker| broker.is_connected())?;
    let command = kind.command();
    let mut queues = vec![topology.queue(command)];
    queues.extend(topology.retry_queues(command).into_iter().map(|(_, queue)| queue));
    let mut total = 0i64;
    for queue in queues {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ferry_queue::queue_depth(broker, &queue)).await {
            Ok(Ok(depth)) => total += i64::from(depth),
            Ok(Err(err)) => {
                tracing::debug!(%queue, error = %err, "cannot read the queue depth");
                return None;
            }
            Err(_) => return None,
        }
    }
    Some(total)
}

/// One pass: re-enqueues what it finds (up to 500 items, of which at most `lost_messages` stale pending ones) and
/// fails items out of attempts.
pub async fn reap_once(
    db: &Db,
    kind: WorkerKind,
    config: &ReaperConfig,
    lost_messages: i64,
) -> Result<ReapReport, ferry_db::DbError> {
    let params = ReapParams {
        kind: job_kind(kind),
        command: kind.command().routing_key(),
        stale_pending: config.stale_pending,
        lost_messages,
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

/// Reaps every `config.interval` (with up to 20% jitter so workers spread out) until shutdown. Queue depths are
/// read on a connection of the reaper's own, so it can never disturb the consumer's. A message
/// counts as lost only when the deficit is seen on two passes in a row: a message delivered to a consumer but
/// not claimed yet is missing from the queue for a moment, and must not be taken for a loss.
pub async fn run_reaper(
    db: Db,
    kind: WorkerKind,
    config: ReaperConfig,
    topology: Topology,
    amqp_url: String,
    shutdown: CancellationToken,
) {
    let mut broker: Option<Broker> = None;
    let mut previous_deficit = 0i64;
    loop {
        let jitter = config.interval.mul_f64(rand::random_range(0.0..0.2));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(config.interval + jitter) => {}
        }
        if !broker.as_ref().is_some_and(Broker::is_connected) {
            if let Some(old) = broker.take() {
                old.close().await;
            }
            let name = format!("{}-reaper", kind.name());
            broker = match tokio::time::timeout(Duration::from_secs(10), Broker::connect(&amqp_url, &name)).await {
                Ok(Ok(connected)) => Some(connected),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "reaper cannot reach RabbitMQ; no message can be proven lost");
                    None
                }
                Err(_) => None,
            };
        }
        let deficit = match queued_messages(broker.as_ref(), &topology, kind).await {
            Some(queued) => db
                .estimate_lost_messages(job_kind(kind), kind.command().routing_key(), queued)
                .await
                .unwrap_or_default(),
            None => 0,
        };
        let lost = deficit.min(previous_deficit);
        previous_deficit = deficit;
        if let Err(err) = reap_once(&db, kind, &config, lost).await {
            tracing::warn!(worker = kind.name(), error = %err, "reaper pass failed; trying again next interval");
        }
    }
    if let Some(broker) = broker {
        broker.close().await;
    }
}

fn job_kind(kind: WorkerKind) -> ferry_core::JobKind {
    match kind {
        WorkerKind::Importer => ferry_core::JobKind::Import,
        WorkerKind::Exporter => ferry_core::JobKind::Export,
    }
}
