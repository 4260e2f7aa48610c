//! The transactional outbox relay: rows written with the business data are published to
//! RabbitMQ and marked published only once the broker confirmed them.

use std::{sync::Arc, time::Duration};

use futures::{FutureExt, future::BoxFuture};
use tokio_util::sync::CancellationToken;

use crate::{CommandKind, Outgoing, Publisher, QueueError};

/// Boxed error of an [`OutboxStore`], so this crate does not know the database's error types.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`OutboxStore::relay_batch`] calls with the claimed rows: publishes them all and resolves to one result
/// per message, in order (`Ok` once the broker confirmed it), within the publisher's confirm deadline.
pub type PublishFn<'f> =
    dyn for<'a> Fn(&'a [OutboxMessage]) -> BoxFuture<'a, Vec<Result<(), QueueError>>> + Send + Sync + 'f;

/// What one relay batch did with its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Confirmed by the broker and marked published.
    pub published: usize,
    /// Set aside with their reason: they can never be published as they are (unknown command, no queue bound).
    pub parked: usize,
    /// Not confirmed (nacked, timed out, connection trouble): left for a later batch.
    pub failed: usize,
}

/// One unpublished outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// The row id; published as the AMQP `message_id` (in decimal) so consumers can dedupe.
    pub id: i64,
    pub command: CommandKind,
    pub payload: Vec<u8>,
    /// W3C `traceparent` sent as the message's header (the relay's publish span); `None` starts a new trace.
    pub traceparent: Option<String>,
}

/// Storage side of the relay, implemented by the database crate.
///
/// `relay_batch` hands the claimed rows to a callback instead of returning them so the rows
/// stay locked, in one transaction, until the broker has confirmed them.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// In one transaction: claim up to `limit` unpublished, unparked rows, oldest first
    /// (`SELECT ... FOR UPDATE SKIP LOCKED`, so several relays can run), call `publish` with the
    /// ones that name a known command, mark the confirmed ones published, park the ones that can never
    /// be published (unknown command, [`QueueError::is_permanent_publish_failure`]) with their reason,
    /// leave the rest unpublished for a later batch, and commit. With no rows, return the zero counts
    /// without calling `publish`. `Err` only when the store itself failed.
    async fn relay_batch(&self, limit: usize, publish: &PublishFn<'_>) -> Result<RelayCounts, BoxError>;

    /// Resolves when new rows may exist (Postgres `LISTEN`/`NOTIFY`), or after `timeout` at
    /// the latest. A notification that arrives while the relay is busy in `relay_batch` must
    /// not be lost: keep it until the next call (e.g. a `tokio::sync::Notify` permit).
    /// Spurious wake-ups are fine.
    async fn wait_for_rows(&self, timeout: Duration);

    /// Unpublished rows and the age of the oldest in seconds, for the backlog gauges; `None` when unknown.
    async fn backlog(&self) -> Option<(i64, f64)> {
        None
    }
}

/// How often the relay refreshes `ferry_outbox_backlog` and `ferry_outbox_oldest_age_seconds`.
const BACKLOG_REPORT_EVERY: Duration = Duration::from_secs(5);

/// First pause after a failed batch; it doubles up to `fallback_poll`.
const RETRY_MIN: Duration = Duration::from_millis(200);

/// Publishes outbox rows until `shutdown` is cancelled.
///
/// Relays batches of up to `batch_size` rows back to back while full batches come out, then
/// sleeps in [`OutboxStore::wait_for_rows`] for at most `fallback_poll` (a missed
/// notification therefore delays a row by at most that). After a failure it backs off from
/// 200 ms up to `fallback_poll`. A batch in progress is finished before shutdown, so a
/// transaction is never abandoned halfway.
pub async fn run_outbox_relay(
    store: Arc<dyn OutboxStore>,
    publisher: Publisher,
    batch_size: usize,
    fallback_poll: Duration,
    shutdown: CancellationToken,
) {
    let batch_size = batch_size.max(1);
    let blocked = publisher.clone();
    let publish = publish_fn(move |messages| {
        let publisher = publisher.clone();
        async move {
            let ids: Vec<String> = messages.iter().map(|message| message.id.to_string()).collect();
            let batch: Vec<Outgoing<'_>> = messages
                .iter()
                .zip(&ids)
                .map(|(message, id)| Outgoing {
                    command: message.command,
                    message_id: id.as_str(),
                    payload: message.payload.as_slice(),
                    traceparent: message.traceparent.as_deref(),
                })
                .collect();
            publisher.publish_each(batch).await
        }
        .boxed()
    });
    let max_backoff = fallback_poll.max(RETRY_MIN);
    let mut backoff = RETRY_MIN;
    let mut reported: Option<tokio::time::Instant> = None;
    tracing::info!(batch_size, ?fallback_poll, "outbox relay started");
    while !shutdown.is_cancelled() {
        if reported.is_none_or(|at| at.elapsed() >= BACKLOG_REPORT_EVERY) {
            reported = Some(tokio::time::Instant::now());
            if let Some((rows, oldest)) = store.backlog().await {
                metrics::gauge!("ferry_outbox_backlog").set(rows as f64);
                metrics::gauge!("ferry_outbox_oldest_age_seconds").set(oldest);
            }
        }
        if blocked.is_blocked() {
            // A resource alarm: whatever is sent now waits unconfirmed in the connection's buffer and would be
            // sent again by the next batch. The rows wait in the outbox until the broker lifts the block.
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => continue,
            }
        }
        let outcome = match store.relay_batch(batch_size, &publish).await {
            Ok(counts) if counts.failed == 0 => Ok(counts),
            Ok(counts) => Err(format!("{} of the batch's rows were not confirmed", counts.failed)),
            Err(error) => Err(crate::error_chain(error.as_ref())),
        };
        match outcome {
            Ok(counts) => {
                backoff = RETRY_MIN;
                metrics::counter!("ferry_outbox_relayed_total").increment(counts.published as u64);
                if counts.parked > 0 {
                    metrics::counter!("ferry_outbox_parked_total").increment(counts.parked as u64);
                }
                if counts.published > 0 {
                    tracing::debug!(published = counts.published, "relayed outbox rows");
                }
                if counts.published + counts.parked >= batch_size {
                    // Probably more waiting: no need to sleep.
                    continue;
                }
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = store.wait_for_rows(fallback_poll) => {}
                }
            }
            Err(error) => {
                metrics::counter!("ferry_outbox_relay_failures_total").increment(1);
                tracing::warn!(%error, retry_in = ?backoff, "outbox relay batch failed");
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
    tracing::info!("outbox relay stopped");
}

/// Pins the closure's signature to the higher-ranked one [`PublishFn`] needs.
fn publish_fn<F>(f: F) -> F
where
    F: for<'a> Fn(&'a [OutboxMessage]) -> BoxFuture<'a, Vec<Result<(), QueueError>>> + Send + Sync,
{
    f
}
