//! What a worker reports beyond counters: how long transfers and jobs take, how big transfers are, and how
//! many messages wait in its queue (`ferry_queue_depth`, what KEDA scales on, visible in Grafana too).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_core::ItemId;
use ferry_db::Db;
use ferry_db::jobs::ItemFinish;
use ferry_queue::{Broker, CancellationToken};

use crate::worker::WorkerKind;

/// How often a worker reads its queue's depth.
const QUEUE_DEPTH_EVERY: Duration = Duration::from_secs(5);

/// One item's attempt, from claim to settlement.
pub(crate) fn transfer_finished(kind: WorkerKind, outcome: &'static str, started: Instant) {
    metrics::histogram!("ferry_transfer_duration_seconds", "worker" => kind.name(), "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

/// The size of one transferred file.
pub(crate) fn transfer_size(kind: WorkerKind, bytes: u64) {
    metrics::histogram!("ferry_transfer_size_bytes", "worker" => kind.name()).record(bytes as f64);
}

/// When `finish` says this item finished its job, records the job's duration (created to completed), once per job.
pub(crate) async fn item_finished(db: &Db, item_id: ItemId, finish: &ItemFinish) {
    if !finish.applied || !finish.job_status.is_some_and(|status| status.is_terminal()) {
        return;
    }
    match db.job_timing_of_item(item_id).await {
        Ok(Some((kind, status, created_at, Some(completed_at)))) => {
            let seconds = (completed_at - created_at).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("ferry_job_duration_seconds", "kind" => kind, "status" => status).record(seconds);
        }
        Ok(_) => {}
        Err(err) => tracing::debug!(%item_id, error = %err, "cannot read the job's timing for metrics"),
    }
}

/// Sets `ferry_queue_depth{queue}` from the worker's current broker connection until `shutdown`.
pub(crate) async fn report_queue_depth(broker: Arc<Mutex<Option<Broker>>>, queue: String, shutdown: CancellationToken) {
    loop {
        let current = broker.lock().map(|slot| slot.clone()).unwrap_or(None);
        if let Some(broker) = current.filter(Broker::is_connected) {
            match tokio::time::timeout(Duration::from_secs(5), ferry_queue::queue_depth(&broker, &queue)).await {
                Ok(Ok(depth)) => metrics::gauge!("ferry_queue_depth", "queue" => queue.clone()).set(f64::from(depth)),
                Ok(Err(err)) => tracing::debug!(queue, error = %err, "cannot read the queue depth"),
                Err(_) => tracing::debug!(queue, "reading the queue depth timed out"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(QUEUE_DEPTH_EVERY) => {}
        }
    }
}
