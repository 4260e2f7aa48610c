//! Consuming a queue with bounded concurrency and explicit outcomes.

use std::{future::Future, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt};
use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
        BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::{Broker, QueueError, broker::close_channel};

/// One message as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub payload: Vec<u8>,
    pub message_id: Option<String>,
    /// The broker's redelivered flag: an earlier delivery of this message may have been
    /// processed (fully or partly).
    pub redelivered: bool,
    /// The quorum queue's `x-delivery-count` header: how many times the message was returned
    /// to the queue before this delivery. 0 on the first delivery (the header is absent).
    pub delivery_count: u32,
    /// How many times this message went through a delayed-retry tier ([`Outcome::Retry`]) before.
    pub retries: u32,
    /// The W3C `traceparent` header set by the publisher (kept across redeliveries and retry tiers).
    pub traceparent: Option<String>,
}

/// What to do with a delivery once its handler is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Done (or already done before): remove the message.
    Ack,
    /// Transient failure: `basic.nack(requeue=true)`. The message is delivered again and the
    /// return counts toward the queue's delivery limit, after which it is dead-lettered.
    Requeue,
    /// Permanent failure: `basic.reject(requeue=false)`, the message goes to the dead-letter queue.
    Reject,
    /// Transient failure that should come back after about this long: a copy goes to the retry queue of the
    /// smallest tier that is at least this long (expiring after exactly this long, so callers add jitter), then
    /// the original is acknowledged. Without retry queues, or if that publish fails, it is a [`Outcome::Requeue`].
    /// Retries through tiers do not count toward the delivery limit (the copy is a new message), so the
    /// handler must bound attempts itself.
    Retry(Duration),
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ack => "ack",
            Outcome::Requeue => "requeue",
            Outcome::Reject => "reject",
            Outcome::Retry(_) => "retry",
        }
    }
}

/// Where and how [`run_consumer`] consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub queue: String,
    /// Unique per channel; shown by `rabbitmqctl list_consumers`.
    pub consumer_tag: String,
    /// `basic.qos` prefetch count, and the number of handlers running at once. At least 1.
    pub prefetch: u16,
    /// Delayed-retry queues with their delays, shortest first ([`crate::Topology::retry_queues`]); empty turns
    /// [`Outcome::Retry`] into [`Outcome::Requeue`].
    pub retry_queues: Vec<(Duration, String)>,
}

/// Consumes `config.queue` until `shutdown` is cancelled.
///
/// Sets `basic.qos(prefetch)` on a channel of its own and runs up to `prefetch` handlers
/// concurrently, each in its own task. When a handler returns, its delivery is settled per
/// [`Outcome`]; a handler that panics counts as [`Outcome::Requeue`].
///
/// On shutdown it cancels the consumer (no new deliveries), waits for the handlers already
/// running and settles their deliveries, then closes the channel and returns `Ok(())`.
/// Deliveries the broker had sent but no handler had started go back to the queue.
///
/// If the connection drops (or the broker cancels the consumer, e.g. because the queue was deleted), it
/// waits for the running handlers and returns `Err`; the caller reconnects with a new [`Broker`]. Handlers
/// running at that moment cannot settle their deliveries any more (the broker redelivers them); waiting for
/// them first means the redelivery finds their items finished instead of racing them. The connection is also
/// checked every [`LIVENESS_CHECK`], so a connection that died without the consumer hearing of it cannot
/// leave the worker idle.
/// How often the consume loop checks that its channel is still open.
pub const LIVENESS_CHECK: Duration = Duration::from_secs(2);

pub async fn run_consumer<H, Fut>(
    broker: &Broker,
    config: ConsumerConfig,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), QueueError>
where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    if config.prefetch == 0 {
        // basic.qos(0) means "unlimited", which would defeat the concurrency bound.
        return Err(QueueError::InvalidConfig(format!("prefetch for queue {:?} must be at least 1", config.queue)));
    }
    let channel = broker.channel("opening a consumer channel").await?;
    let retry = if config.retry_queues.is_empty() {
        None
    } else {
        let retry_channel = broker.channel("opening the retry channel").await?;
        crate::broker::answered("enabling confirms for retries", async {
            retry_channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(|source| QueueError::Channel {
                what: "enabling confirms for retries",
                source: Box::new(source),
            })
        })
        .await?;
        Some(Arc::new(RetrySink { channel: retry_channel, queues: config.retry_queues.clone() }))
    };
    let result = consume(&channel, &config, &shutdown, Arc::new(handler), retry.clone()).await;
    if let Some(retry) = &retry {
        close_channel(&retry.channel).await;
    }
    close_channel(&channel).await;
    match &result {
        Ok(()) => tracing::info!(queue = %config.queue, "consumer stopped"),
        Err(error) => {
            tracing::error!(queue = %config.queue, error = %crate::error_chain(error), "consumer failed")
        }
    }
    result
}

async fn consume<H, Fut>(
    channel: &Channel,
    config: &ConsumerConfig,
    shutdown: &CancellationToken,
    handler: Arc<H>,
    retry: Option<Arc<RetrySink>>,
) -> Result<(), QueueError>
where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let consume_error = |source| QueueError::Consume { queue: config.queue.clone(), source: Box::new(source) };
    crate::broker::answered("setting the prefetch count", async {
        channel
            .basic_qos(config.prefetch, BasicQosOptions::default())
            .await
            .map_err(|source| QueueError::Channel { what: "setting the prefetch count", source: Box::new(source) })
    })
    .await?;
    let mut consumer = crate::broker::answered("starting to consume", async {
        channel
            .basic_consume(
                config.queue.as_str().into(),
                config.consumer_tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(consume_error)
    })
    .await?;
    tracing::info!(queue = %config.queue, prefetch = config.prefetch, "consuming");

    // qos already bounds unacknowledged deliveries; the semaphore also bounds handlers that
    // outlived a connection recovery (their deliveries no longer count for the broker).
    let permits = Arc::new(Semaphore::new(usize::from(config.prefetch)));
    let queue: Arc<str> = config.queue.as_str().into();
    let mut in_flight = JoinSet::new();
    let result = loop {
        while let Some(joined) = in_flight.try_join_next() {
            log_join_error(joined);
        }
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break Ok(()),
            },
        };
        let next = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Next::Shutdown,
                next = consumer.next() => break match next {
                    Some(Ok(delivery)) => Next::Delivery(Box::new(delivery)),
                    Some(Err(error)) => Next::Lost(error.to_string()),
                    None => Next::Cancelled,
                },
                () = tokio::time::sleep(LIVENESS_CHECK) => {
                    if !channel.status().connected() {
                        break Next::Lost("the channel is no longer open".to_owned());
                    }
                }
            }
        };
        match next {
            Next::Shutdown => break Ok(()),
            Next::Delivery(delivery) => {
                in_flight.spawn(settle(*delivery, handler.clone(), queue.clone(), retry.clone(), permit));
            }
            Next::Lost(error) => {
                tracing::warn!(queue = %config.queue, %error, "consumer connection lost; reconnecting");
                break Err(QueueError::ConnectionLost { queue: config.queue.clone() });
            }
            Next::Cancelled => {
                break Err(QueueError::ConsumerCancelled { queue: config.queue.clone() });
            }
        }
    };

    if channel.status().connected()
        && let Err(error) =
            channel.basic_cancel(config.consumer_tag.as_str().into(), BasicCancelOptions::default()).await
    {
        tracing::warn!(queue = %config.queue, %error, "cancelling the consumer");
    }
    if !in_flight.is_empty() {
        tracing::info!(queue = %config.queue, handlers = in_flight.len(), "waiting for running handlers");
    }
    while let Some(joined) = in_flight.join_next().await {
        log_join_error(joined);
    }
    result
}

/// What the consume loop got next.
enum Next {
    Shutdown,
    Delivery(Box<lapin::message::Delivery>),
    /// The channel or connection died.
    Lost(String),
    /// The broker cancelled the consumer.
    Cancelled,
}

/// Runs the handler for one delivery and settles it with the broker.
async fn settle<H, Fut>(
    delivery: lapin::message::Delivery,
    handler: Arc<H>,
    queue: Arc<str>,
    retry: Option<Arc<RetrySink>>,
    _permit: OwnedSemaphorePermit,
) where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let lapin::message::Delivery { data, properties, redelivered, acker, routing_key, .. } = delivery;
    let ours = Delivery {
        payload: data.clone(),
        message_id: properties.message_id().as_ref().map(ToString::to_string),
        redelivered,
        delivery_count: delivery_count(properties.headers().as_ref()),
        retries: retry_count(properties.headers().as_ref()),
        traceparent: properties.headers().as_ref().and_then(|headers| match headers.inner().get("traceparent") {
            Some(AMQPValue::LongString(value)) => Some(value.to_string()),
            Some(AMQPValue::ShortString(value)) => Some(value.to_string()),
            _ => None,
        }),
    };
    let message_id = ours.message_id.clone();
    // The call is inside the async block so that a panic while building the future is caught too.
    let outcome = match AssertUnwindSafe(async move { handler(ours).await }).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!(%queue, ?message_id, "handler panicked; requeueing the message");
            Outcome::Requeue
        }
    };
    let outcome = match (outcome, &retry) {
        (Outcome::Retry(delay), Some(sink)) => match sink.send(delay, &data, &properties, &routing_key).await {
            Ok(queue) => {
                tracing::debug!(%queue, ?message_id, ?delay, "message sent to a retry tier");
                outcome
            }
            Err(error) => {
                tracing::warn!(%queue, ?message_id, error = %crate::error_chain(&error), "retry publish failed; requeueing");
                Outcome::Requeue
            }
        },
        (Outcome::Retry(_), None) => Outcome::Requeue,
        (other, _) => other,
    };
    let settled = match outcome {
        Outcome::Ack | Outcome::Retry(_) => acker.ack(BasicAckOptions::default()).await,
        Outcome::Requeue => acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await,
        Outcome::Reject => acker.reject(BasicRejectOptions { requeue: false }).await,
    };
    metrics::counter!(
        "ferry_queue_consumer_outcomes_total",
        "queue" => queue.to_string(),
        "outcome" => outcome.as_str()
    )
    .increment(1);
    match settled {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            %queue, ?message_id, outcome = outcome.as_str(),
            "channel closed before the delivery was settled; the broker will redeliver it"
        ),
        Err(error) => tracing::warn!(
            %queue, ?message_id, outcome = outcome.as_str(), %error,
            "settling the delivery failed; the broker will redeliver it"
        ),
    }
}

/// Where [`Outcome::Retry`] copies go: a confirm-mode channel of the consumer's connection and the tiers.
struct RetrySink {
    channel: Channel,
    queues: Vec<(Duration, String)>,
}

impl RetrySink {
    /// Publishes a copy of the delivery to the tier for `delay` (via the default exchange, mandatory, persistent)
    /// and waits for the broker's confirm. Returns the queue used.
    async fn send(
        &self,
        delay: Duration,
        payload: &[u8],
        properties: &BasicProperties,
        routing_key: &ShortString,
    ) -> Result<String, QueueError> {
        let queue = pick_tier(&self.queues, delay);
        let tier_delay = self.queues.iter().find(|(_, name)| *name == queue).map(|(tier, _)| *tier).unwrap_or(delay);
        let expiration = delay.min(tier_delay).as_millis().max(1).to_string();
        let previous = properties.headers().clone().unwrap_or_default();
        let retries = retry_count(Some(&previous)) + 1;
        // The copy is a new message: the old delivery count must not follow it back into the work queue (the
        // quorum queue only sets the header on redeliveries), or its first delivery would look like its last.
        let mut headers: FieldTable = previous
            .inner()
            .iter()
            .filter(|(name, _)| {
                !matches!(
                    name.as_str(),
                    "x-delivery-count"
                        | "x-death"
                        | "x-first-death-exchange"
                        | "x-first-death-queue"
                        | "x-first-death-reason"
                )
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        headers.insert("x-ferry-retries".into(), AMQPValue::LongLongInt(i64::from(retries)));
        let copy = properties.clone().with_headers(headers).with_expiration(expiration.into()).with_delivery_mode(2);
        let command =
            crate::CommandKind::from_routing_key(routing_key.as_str()).unwrap_or(crate::CommandKind::ImportItem);
        let message_id = properties.message_id().as_ref().map(ToString::to_string).unwrap_or_default();
        let publish_error = |source: lapin::Error| QueueError::Publish {
            command,
            message_id: message_id.clone(),
            source: Box::new(source),
        };
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                payload,
                copy,
            )
            .await
            .map_err(publish_error)?
            .await
            .map_err(publish_error)?;
        match confirm {
            Confirmation::Ack(None) => Ok(queue),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => Err(QueueError::Unroutable {
                command,
                message_id,
                reply_code: returned.reply_code,
                reply_text: returned.reply_text.to_string(),
            }),
            Confirmation::Nack(None) | Confirmation::NotRequested => Err(QueueError::Nacked { command, message_id }),
        }
    }
}

/// The smallest tier at least `delay` long, or the longest tier (backoff is truncated there).
fn pick_tier(queues: &[(Duration, String)], delay: Duration) -> String {
    queues
        .iter()
        .find(|(tier, _)| *tier >= delay)
        .or_else(|| queues.last())
        .map(|(_, queue)| queue.clone())
        .unwrap_or_default()
}

/// How many times this message already went through a retry tier (`x-ferry-retries`, set by [`RetrySink`]).
fn retry_count(headers: Option<&FieldTable>) -> u32 {
    header_u32(headers, "x-ferry-retries")
}

fn log_join_error(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        // Handler panics are caught in `settle`; this is a panic in settling itself.
        tracing::error!(%error, "consumer task failed");
    }
}

fn delivery_count(headers: Option<&FieldTable>) -> u32 {
    header_u32(headers, "x-delivery-count")
}

fn header_u32(headers: Option<&FieldTable>, name: &str) -> u32 {
    let Some(value) = headers.and_then(|headers| headers.inner().get(name)) else {
        return 0;
    };
    let count = match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        _ => 0,
    };
    u32::try_from(count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_count_reads_any_integer_header() {
        assert_eq!(delivery_count(None), 0);
        let mut headers = FieldTable::default();
        assert_eq!(delivery_count(Some(&headers)), 0);
        headers.insert("x-delivery-count".into(), AMQPValue::LongLongInt(3));
        assert_eq!(delivery_count(Some(&headers)), 3);
        headers.insert("x-delivery-count".into(), AMQPValue::ShortShortUInt(2));
        assert_eq!(delivery_count(Some(&headers)), 2);
        headers.insert("x-delivery-count".into(), AMQPValue::LongInt(-1));
        assert_eq!(delivery_count(Some(&headers)), 0);
    }
}
