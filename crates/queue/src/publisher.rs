//! Publishing commands with publisher confirms.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures::future::join_all;
use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldTable},
};
use tokio::sync::Mutex;

use crate::{Broker, CommandKind, QueueError, Topology};

/// Content type of every command: the payload is a protobuf message from `ferry-messages`.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// How long a batch waits for its confirms unless [`Publisher::with_confirm_timeout`] says otherwise.
pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

/// Publishes commands to the commands exchange on a confirm-mode channel. Cheap to clone;
/// clones share the channel (AMQP channels take concurrent publishes).
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    broker: Broker,
    exchange: String,
    /// How long a batch may wait for the broker's confirms.
    confirm_timeout: Duration,
    // Replaced when the broker closed it after a channel-level error. A lost connection is not
    // recovered: the owner of the `Broker` builds a new one, and a new `Publisher` with it.
    channel: Mutex<Channel>,
}

/// One message for [`Publisher::publish_each`].
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub command: CommandKind,
    /// The AMQP `message_id` (consumers dedupe on it).
    pub message_id: &'a str,
    pub payload: &'a [u8],
    /// W3C `traceparent` to send as a header; `None` starts a new trace.
    pub traceparent: Option<&'a str>,
}

impl Publisher {
    /// Opens a confirm-mode channel. Does not declare anything: call [`Topology::declare`] first.
    pub async fn new(broker: &Broker, topology: &Topology) -> Result<Publisher, QueueError> {
        let channel = confirm_channel(broker).await?;
        Ok(Publisher {
            inner: Arc::new(Inner {
                broker: broker.clone(),
                exchange: topology.exchange(),
                confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
                channel: Mutex::new(channel),
            }),
        })
    }

    /// Sets how long a publish waits for the broker's confirms before it fails with
    /// [`QueueError::ConfirmTimeout`] (a blocked broker never confirms). Call before cloning.
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> Publisher {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.confirm_timeout = timeout;
        }
        self
    }

    /// True while the broker blocks publishing on this connection (a resource alarm).
    pub fn is_blocked(&self) -> bool {
        self.inner.broker.is_blocked()
    }

    /// Publishes one persistent, mandatory message and waits for the broker's confirm.
    ///
    /// Properties: `message_id`, `content_type` [`CONTENT_TYPE`], `delivery_mode` 2, `type`
    /// = the routing key, `timestamp` = now. `Ok` means a queue has the message; a nack
    /// ([`QueueError::Nacked`]) or a return because no queue is bound for the routing key
    /// ([`QueueError::Unroutable`]) is an error.
    pub async fn publish(&self, command: CommandKind, message_id: &str, payload: &[u8]) -> Result<(), QueueError> {
        first_failure(self.publish_each(vec![Outgoing { command, message_id, payload, traceparent: None }]).await)
    }

    /// Publishes every message, then waits for all the confirms. `Ok` only if every message
    /// was confirmed and routed; otherwise the first failure. Some messages may have been
    /// delivered even when this fails, so callers retry the whole batch (at-least-once).
    pub async fn publish_batch(&self, messages: &[(CommandKind, String, Vec<u8>)]) -> Result<(), QueueError> {
        let messages: Vec<Outgoing<'_>> = messages
            .iter()
            .map(|(command, id, payload)| Outgoing {
                command: *command,
                message_id: id.as_str(),
                payload: payload.as_slice(),
                traceparent: None,
            })
            .collect();
        first_failure(self.publish_each(messages).await)
    }

    /// Publishes borrowed messages and awaits all confirms, within the confirm deadline; one result per
    /// message, in order. Past the deadline every message not confirmed yet fails with
    /// [`QueueError::ConfirmTimeout`].
    ///
    /// Takes a `Vec` rather than an iterator: a lazy iterator held across an await makes
    /// callers' futures fail the compiler's higher-ranked `Send` check.
    pub async fn publish_each(&self, messages: Vec<Outgoing<'_>>) -> Vec<Result<(), QueueError>> {
        let waited = self.inner.confirm_timeout;
        let names: Vec<(CommandKind, String)> =
            messages.iter().map(|message| (message.command, message.message_id.to_owned())).collect();
        match tokio::time::timeout(waited, self.publish_unbounded(messages)).await {
            Ok(Ok(results)) => results,
            Ok(Err(channel_error)) => {
                let reason = crate::error_chain(&channel_error);
                names
                    .into_iter()
                    .map(|(command, message_id)| {
                        let result = Err(QueueError::Unpublished { command, message_id, reason: reason.clone() });
                        record(command, &result);
                        result
                    })
                    .collect()
            }
            Err(_) => {
                let blocked = self.inner.broker.is_blocked();
                tracing::warn!(?waited, blocked, messages = names.len(), "the broker did not confirm in time");
                names
                    .into_iter()
                    .map(|(command, message_id)| {
                        let result = Err(QueueError::ConfirmTimeout { command, message_id, waited });
                        record(command, &result);
                        result
                    })
                    .collect()
            }
        }
    }

    async fn publish_unbounded(&self, messages: Vec<Outgoing<'_>>) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        let channel = self.channel().await?;
        let timestamp =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or_default();
        // Send everything first so the confirms of a batch overlap instead of costing one
        // round trip each.
        let mut pending = Vec::new();
        for Outgoing { command, message_id, payload, traceparent } in messages {
            // W3C trace context: the caller's (the trace of the request that created the command), else a fresh
            // one; kept across redeliveries and retry tiers so every log line about one command shares it.
            let traceparent = traceparent.map_or_else(new_traceparent, str::to_owned);
            let mut headers = FieldTable::default();
            headers.insert("traceparent".into(), AMQPValue::LongString(traceparent.into()));
            let properties = BasicProperties::default()
                .with_headers(headers)
                .with_message_id(message_id.into())
                .with_content_type(CONTENT_TYPE.into())
                .with_delivery_mode(2)
                .with_type(command.routing_key().into())
                .with_timestamp(timestamp);
            let sent = channel
                .basic_publish(
                    self.inner.exchange.as_str().into(),
                    command.routing_key().into(),
                    BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                    payload,
                    properties,
                )
                .await;
            pending.push(async move {
                let confirmation = match sent {
                    Ok(confirm) => confirm.await,
                    Err(error) => Err(error),
                };
                let result = check_confirmation(command, message_id, confirmation);
                record(command, &result);
                result
            });
        }
        Ok(join_all(pending).await)
    }

    async fn channel(&self) -> Result<Channel, QueueError> {
        let mut channel = self.inner.channel.lock().await;
        let status = channel.status();
        // Connected (or still opening): keep it. Closed or failed: replace it; on a dead connection that fails
        // and the publish reports it.
        if !(status.connected() || status.initializing()) {
            tracing::warn!("publisher channel was closed; opening a new one");
            *channel = confirm_channel(&self.inner.broker).await?;
        }
        Ok(channel.clone())
    }
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("broker", &self.inner.broker).field("exchange", &self.inner.exchange).finish()
    }
}

async fn confirm_channel(broker: &Broker) -> Result<Channel, QueueError> {
    let channel = broker.channel("opening the publisher channel").await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|source| QueueError::Channel { what: "enabling publisher confirms", source: Box::new(source) })?;
    Ok(channel)
}

/// `00-{trace id}-{span id}-01` with random ids (W3C Trace Context, sampled).
pub(crate) fn new_traceparent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{trace}-{}-01", &span[..16])
}

fn check_confirmation(
    command: CommandKind,
    message_id: &str,
    confirmation: lapin::Result<Confirmation>,
) -> Result<(), QueueError> {
    match confirmation {
        Ok(Confirmation::Ack(None)) => Ok(()),
        // A mandatory message no queue took comes back as basic.return, then basic.ack.
        Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => Err(QueueError::Unroutable {
            command,
            message_id: message_id.to_owned(),
            reply_code: returned.reply_code,
            reply_text: returned.reply_text.to_string(),
        }),
        Ok(Confirmation::Nack(None)) => Err(QueueError::Nacked { command, message_id: message_id.to_owned() }),
        // Only happens if confirm mode is off, which `confirm_channel` rules out.
        Ok(Confirmation::NotRequested) => Err(QueueError::Nacked { command, message_id: message_id.to_owned() }),
        Err(source) => {
            Err(QueueError::Publish { command, message_id: message_id.to_owned(), source: Box::new(source) })
        }
    }
}

fn first_failure(results: Vec<Result<(), QueueError>>) -> Result<(), QueueError> {
    results.into_iter().collect()
}

fn record(command: CommandKind, result: &Result<(), QueueError>) {
    match result {
        Ok(()) => {
            metrics::counter!("ferry_queue_published_total", "command" => command.routing_key()).increment(1);
        }
        Err(error) => {
            let reason = match error {
                QueueError::Nacked { .. } => "nacked",
                QueueError::Unroutable { .. } => "unroutable",
                QueueError::ConfirmTimeout { .. } => "confirm_timeout",
                _ => "error",
            };
            metrics::counter!(
                "ferry_queue_publish_failures_total",
                "command" => command.routing_key(),
                "reason" => reason
            )
            .increment(1);
            tracing::warn!(%command, error = %crate::error_chain(error), "publish failed");
        }
    }
}
