//! The consumer loop shared by the importer and the exporter: decode, claim, transfer, record, settle.

use std::time::Duration;

use tracing::Instrument;

use ferry_core::{ConnectionId, ItemId};
use ferry_credentials::Credentials;
use ferry_db::jobs::{ClaimOutcome, ClaimedItem};
use ferry_db::{Db, DbError};
use ferry_drive::DriveClient;
use ferry_queue::{Broker, CancellationToken, CommandKind, ConsumerConfig, Delivery, Outcome, Topology};
use ferry_storage::BlobStore;

use crate::outcome::ItemFailure;

/// Which queue a worker consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerKind {
    Importer,
    Exporter,
}

impl WorkerKind {
    pub fn command(self) -> CommandKind {
        match self {
            WorkerKind::Importer => CommandKind::ImportItem,
            WorkerKind::Exporter => CommandKind::ExportItem,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WorkerKind::Importer => "importer",
            WorkerKind::Exporter => "exporter",
        }
    }
}

/// Everything an item attempt needs. Cheap to clone.
#[derive(Clone)]
pub struct TransferContext {
    pub db: Db,
    pub storage: BlobStore,
    pub drive: DriveClient,
    pub credentials: Credentials,
    /// Unique per process, recorded on the items it holds.
    pub worker_id: String,
    /// How long a claim lasts without a heartbeat; heartbeats renew it every third of this.
    pub lease: Duration,
    /// Claims of one item (its `attempts` in Postgres, across messages, retries and reaps) after which a
    /// transient failure fails it instead of retrying.
    pub max_attempts: u32,
    /// Paces Drive calls per Google user, shared with every other process that calls Drive.
    pub pacer: ferry_pacer::DrivePacer,
    /// The broker's delivery limit: a message requeued on its final delivery is dead-lettered.
    pub topology: Topology,
    /// An attempt that moves no bytes for this long is aborted and retried later.
    pub stall_timeout: Duration,
    /// How many large files this process moves at once, shared by its items in flight.
    pub slots: crate::TransferSlots,
    /// Drive ids generated ahead and job folders known to exist (exports).
    pub export_ahead: crate::ExportAhead,
    /// The current attempt's progress clock: each attempt gets a fresh one (see [`crate::attempt::guarded`]).
    pub progress: crate::attempt::Progress,
}

/// Handles one delivery end to end and says how to settle it.
pub async fn handle_delivery(ctx: &TransferContext, kind: WorkerKind, delivery: Delivery) -> Outcome {
    let decoded = match kind {
        WorkerKind::Importer => ferry_messages::decode_import(&delivery.payload).map(|m| (m.item_id, m.job_id)),
        WorkerKind::Exporter => ferry_messages::decode_export(&delivery.payload).map(|m| (m.item_id, m.job_id)),
    };
    let (item_id, job_id) = match decoded {
        Ok(ids) => ids,
        Err(err) => {
            tracing::error!(error = %err, message_id = ?delivery.message_id, "dead-lettering an undecodable message");
            return Outcome::Reject;
        }
    };
    let Ok(item_id) = ItemId::parse(&item_id) else {
        tracing::error!(%item_id, "dead-lettering a message with an invalid item id");
        return Outcome::Reject;
    };
    let span = tracing::info_span!(
        "item",
        otel.name = %format!("{} item", kind.name()),
        worker = kind.name(),
        %item_id,
        %job_id,
        delivery = delivery.delivery_count + 1,
        retries = delivery.retries,
        traceparent = delivery.traceparent.as_deref().unwrap_or("-"),
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    // The message's traceparent is the relay's publish span: this item continues the request's trace.
    if let Some(parent) = delivery.traceparent.as_deref() {
        ferry_telemetry::set_parent_from_traceparent(&span, parent);
    }
    if let Some((trace_id, span_id)) = ferry_telemetry::trace_ids(&span) {
        span.record("trace_id", trace_id);
        span.record("span_id", span_id);
    }
    let final_delivery = ctx.topology.is_final_delivery(&delivery);
    let outcome = process(ctx, kind, item_id, final_delivery, delivery.retries).instrument(span.clone()).await;
    span.record("outcome", outcome_name(outcome));
    outcome
}

async fn process(
    ctx: &TransferContext,
    kind: WorkerKind,
    item_id: ItemId,
    final_delivery: bool,
    retries: u32,
) -> Outcome {
    let claimed = match ctx.db.claim_item(item_id, &ctx.worker_id, ctx.lease).await {
        Ok(ClaimOutcome::Claimed(claimed)) => claimed,
        Ok(ClaimOutcome::AlreadyFinished) => {
            tracing::info!("duplicate delivery of a finished item; acknowledging");
            return Outcome::Ack;
        }
        Ok(ClaimOutcome::LeasedElsewhere) => {
            // Another worker holds a live lease and will finish it; if it dies, the lease expires and the
            // reaper hands the item out again.
            tracing::info!("item is leased by another worker; acknowledging");
            return Outcome::Ack;
        }
        Ok(ClaimOutcome::Failed { code }) => {
            tracing::warn!(code, "the item cannot be worked on; failed it");
            metrics::counter!("ferry_items_total", "worker" => kind.name(), "outcome" => "failed_at_claim")
                .increment(1);
            return Outcome::Ack;
        }
        Ok(ClaimOutcome::NotFound) => {
            // Requeued rather than rejected: the queue's delivery limit decides when it is poison (it is
            // dead-lettered after exactly that many deliveries), which also covers a row not visible yet.
            tracing::error!(final_delivery, "message for an unknown item; requeueing until the delivery limit");
            return Outcome::Requeue;
        }
        Err(err) if err.is_transient() => {
            // Postgres is unreachable: come back after a delay through a retry tier instead of spinning through
            // the delivery limit. If the tier cannot be published either, the consumer requeues; should the
            // message be dead-lettered, the item is still pending and the reaper re-enqueues it.
            let delay = crate::limits::item_retry_delay(retries + 1);
            tracing::warn!(error = %err, ?delay, "cannot claim the item; retrying later");
            return Outcome::Retry(delay);
        }
        Err(err) => return fail_unreadable(ctx, item_id, &err).await,
    };

    // Each attempt gets its own progress clock for the watchdog.
    let attempt_ctx = TransferContext { progress: crate::attempt::Progress::new(), ..ctx.clone() };
    let started = std::time::Instant::now();
    let transfer = async {
        match kind {
            WorkerKind::Importer => crate::import::import_item(&attempt_ctx, &claimed).await,
            WorkerKind::Exporter => crate::export::export_item(&attempt_ctx, &claimed).await,
        }
    };
    let result = crate::attempt::guarded(&attempt_ctx, &claimed.claim, transfer).await;
    let outcome = settle(ctx, &claimed, result).await;
    metrics::counter!("ferry_items_total", "worker" => kind.name(), "outcome" => outcome_name(outcome)).increment(1);
    crate::observe::transfer_finished(kind, outcome_name(outcome), started);
    outcome
}

/// The item's rows cannot be read (a corrupt or half-deleted row): trying again would fail the same way, so the
/// item is failed with `item_corrupt` if that can be written, and the message is dead-lettered otherwise.
async fn fail_unreadable(ctx: &TransferContext, item_id: ItemId, err: &ferry_db::DbError) -> Outcome {
    tracing::error!(error = %err, "the item's rows cannot be read; failing it");
    let message = "the item's stored data cannot be read; it was not transferred";
    match ctx.db.fail_item_unclaimed(item_id, None, "item_corrupt", message).await {
        Ok(_) => Outcome::Ack,
        Err(fail_err) => {
            tracing::error!(error = %fail_err, "cannot fail the unreadable item either; dead-lettering its message");
            Outcome::Reject
        }
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ack => "ack",
        Outcome::Requeue => "requeue",
        Outcome::Reject => "reject",
        Outcome::Retry(_) => "retry",
    }
}

/// Records the attempt's result in Postgres (every write fenced by the claim), then tells the consumer how to
/// settle the message. The message is acknowledged only after the database says the item is finished, or
/// after the database refused the write because another worker holds the item now (its result is dropped).
async fn settle(ctx: &TransferContext, claimed: &ClaimedItem, result: Result<(), ItemFailure>) -> Outcome {
    let claim = &claimed.claim;
    let item_id = claim.item_id;
    let attempt = u32::try_from(claim.attempt).unwrap_or(u32::MAX);
    let recorded = match result {
        Ok(()) => return Outcome::Ack,
        Err(ItemFailure::LeaseLost) => Err(DbError::LeaseLost { item_id: item_id.0 }),
        Err(ItemFailure::Transient { code, message }) if attempt < ctx.max_attempts => {
            let delay = crate::limits::item_retry_delay(attempt);
            tracing::warn!(%item_id, code, %message, attempt, ?delay, "transient failure; the item will be retried");
            match ctx.db.release_item(claim, code, &message).await {
                Ok(()) => return Outcome::Retry(delay),
                Err(err) => Err(err),
            }
        }
        Err(ItemFailure::Transient { code, message }) => {
            tracing::error!(%item_id, code, %message, attempt, "giving up after the last attempt");
            let message = format!("gave up after {attempt} attempts: {message}");
            let failed = ctx.db.fail_claimed_item(claim, code, &message).await;
            if let Ok(finish) = &failed {
                crate::observe::item_finished(&ctx.db, item_id, finish).await;
            }
            failed.map(|_| ())
        }
        Err(ItemFailure::Permanent { code, message }) => {
            tracing::warn!(%item_id, code, %message, "item failed");
            let failed = ctx.db.fail_claimed_item(claim, code, &message).await;
            if let Ok(finish) = &failed {
                crate::observe::item_finished(&ctx.db, item_id, finish).await;
            }
            failed.map(|_| ())
        }
        Err(ItemFailure::NeedsReauthorization) => {
            let connection_id = ConnectionId(claimed.job.connection_id);
            tracing::warn!(%item_id, %connection_id, "connection needs re-authorisation; failing its open items");
            ctx.db
                .fail_open_items_of_connection(
                    connection_id,
                    "connection_needs_reauthorization",
                    "the cloud account revoked access; connect it again and retry",
                )
                .await
                .map(|_| ())
        }
    };
    match recorded {
        Ok(()) => Outcome::Ack,
        Err(DbError::LeaseLost { .. }) => {
            // Another worker took the item over (this one stalled past its lease): it owns the outcome now.
            tracing::warn!(%item_id, attempt, "lease lost to another worker; dropping this attempt's result");
            metrics::counter!("ferry_items_lease_lost_total").increment(1);
            Outcome::Ack
        }
        Err(err) => {
            // The item keeps its lease; when it expires the item is handed out again.
            tracing::error!(%item_id, error = %err, "cannot record the item's outcome; requeueing");
            Outcome::Requeue
        }
    }
}

/// Consumes `command`'s queue (the worker's own, or the store tasks the importer also handles) until `shutdown`,
/// reconnecting to RabbitMQ whenever the connection is lost for good. `on_broker` is told about each new
/// connection (for readiness).
#[allow(clippy::too_many_arguments)]
pub async fn run_worker(
    ctx: TransferContext,
    kind: WorkerKind,
    command: CommandKind,
    amqp_url: String,
    topology: Topology,
    concurrency: u16,
    shutdown: CancellationToken,
    on_broker: impl Fn(Option<Broker>) + Send + Sync + 'static,
) {
    let mut backoff = Duration::from_millis(500);
    let mut attempt: u32 = 0;
    while !shutdown.is_cancelled() {
        attempt += 1;
        tracing::info!(%command, attempt, "connecting to RabbitMQ");
        // Each broker step below has its own deadline (ferry_queue), so a broker that stops answering mid-way
        // sends this loop round again instead of parking the worker.
        let broker = match Broker::connect(&amqp_url, &format!("{}-{}-{command}", kind.name(), ctx.worker_id)).await {
            Ok(broker) => broker,
            Err(err) => {
                tracing::warn!(%command, attempt, error = %ferry_queue::error_chain(&err), "cannot connect to RabbitMQ; retrying");
                on_broker(None);
                wait_or_shutdown(&shutdown, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if let Err(err) = topology.declare(&broker).await {
            tracing::warn!(%command, attempt, error = %ferry_queue::error_chain(&err), "cannot declare the topology; retrying");
            broker.close().await;
            wait_or_shutdown(&shutdown, backoff).await;
            continue;
        }
        backoff = Duration::from_millis(500);
        attempt = 0;
        on_broker(Some(broker.clone()));
        let config = ConsumerConfig {
            queue: topology.queue(command),
            consumer_tag: format!("{}-{}-{command}", kind.name(), ctx.worker_id),
            prefetch: concurrency.max(1),
            retry_queues: topology.retry_queues(command),
        };
        let handler_ctx = ctx.clone();
        let result = ferry_queue::run_consumer(&broker, config, shutdown.clone(), move |delivery| {
            let ctx = handler_ctx.clone();
            async move {
                if command == CommandKind::StoreTask {
                    crate::store_tasks::handle_store_task(&ctx, delivery).await
                } else if command == CommandKind::SyncRun {
                    crate::sync::handle_sync_run(&ctx, delivery).await
                } else {
                    handle_delivery(&ctx, kind, delivery).await
                }
            }
        })
        .await;
        on_broker(None);
        broker.close().await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "consumer stopped; reconnecting");
            wait_or_shutdown(&shutdown, backoff).await;
        }
    }
}

async fn wait_or_shutdown(shutdown: &CancellationToken, delay: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}
