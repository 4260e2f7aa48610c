//! Consuming a queue with bounded concurrency and explicit outcomes.

use std::{future::Future, panic::AssertUnwindSafe, sync::Arc};

use futures::{FutureExt, StreamExt};
use lapin::{
    Channel,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    },
    types::{AMQPValue, FieldTable},
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
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ack => "ack",
            Outcome::Requeue => "requeue",
            Outcome::Reject => "reject",
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
/// If the connection drops, lapin's auto-recovery reconnects and re-registers the consumer;
/// this function waits for that and carries on. Handlers that were running meanwhile cannot
/// settle their deliveries any more (the broker redelivers them). If recovery is impossible
/// or fails, or the broker cancels the consumer (e.g. the queue was deleted), it waits for the
/// running handlers and returns `Err`; the caller's supervisor decides whether to reconnect.
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
    let result = consume(&channel, &config, &shutdown, Arc::new(handler)).await;
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
) -> Result<(), QueueError>
where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let consume_error = |source| QueueError::Consume { queue: config.queue.clone(), source: Box::new(source) };
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await
        .map_err(|source| QueueError::Channel { what: "setting the prefetch count", source: Box::new(source) })?;
    let mut consumer = channel
        .basic_consume(
            config.queue.as_str().into(),
            config.consumer_tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(consume_error)?;
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
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                in_flight.spawn(settle(delivery, handler.clone(), queue.clone(), permit));
            }
            Some(Err(error)) => {
                tracing::warn!(queue = %config.queue, %error, "consumer channel failed; waiting for recovery");
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break Ok(()),
                    recovered = channel.wait_for_recovery(error) => match recovered {
                        Ok(()) => tracing::info!(queue = %config.queue, "consumer channel recovered"),
                        Err(source) => break Err(consume_error(source)),
                    },
                }
            }
            None => {
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

/// Runs the handler for one delivery and settles it with the broker.
async fn settle<H, Fut>(
    delivery: lapin::message::Delivery,
    handler: Arc<H>,
    queue: Arc<str>,
    _permit: OwnedSemaphorePermit,
) where
    H: Fn(Delivery) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let lapin::message::Delivery { data, properties, redelivered, acker, .. } = delivery;
    let ours = Delivery {
        payload: data,
        message_id: properties.message_id().as_ref().map(ToString::to_string),
        redelivered,
        delivery_count: delivery_count(properties.headers().as_ref()),
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
    let settled = match outcome {
        Outcome::Ack => acker.ack(BasicAckOptions::default()).await,
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

fn log_join_error(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        // Handler panics are caught in `settle`; this is a panic in settling itself.
        tracing::error!(%error, "consumer task failed");
    }
}

fn delivery_count(headers: Option<&FieldTable>) -> u32 {
    let Some(value) = headers.and_then(|headers| headers.inner().get("x-delivery-count")) else {
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
