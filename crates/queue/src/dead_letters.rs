//! Operator tools for dead-lettered messages: look at them, put them back on their work queue, purge a queue.

use lapin::{
    BasicProperties, Confirmation,
    options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions},
    types::{AMQPValue, FieldTable},
};

use crate::{Broker, CommandKind, QueueError, Topology, broker::close_channel};

/// One message in a dead-letter queue, as `ferryctl dead-letters list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: Option<String>,
    /// Why it was dead-lettered (`rejected`, `delivery_limit`, `expired`), from the `x-death` header.
    pub reason: Option<String>,
    /// The queue it died in.
    pub queue: Option<String>,
    /// How many times it died (the `x-death` count).
    pub deaths: i64,
    pub payload: Vec<u8>,
}

/// Up to `limit` messages of `command`'s dead-letter queue, oldest first, without removing them: they are taken
/// unacknowledged and returned to the queue when the inspecting channel closes.
pub async fn list_dead_letters(
    broker: &Broker,
    topology: &Topology,
    command: CommandKind,
    limit: usize,
) -> Result<Vec<DeadLetter>, QueueError> {
    let queue = topology.dead_letter_queue(command);
    let channel = broker.channel("inspecting dead letters").await?;
    let mut found = Vec::new();
    let result = async {
        while found.len() < limit {
            let got = channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(|source| QueueError::Consume { queue: queue.clone(), source: Box::new(source) })?;
            let Some(message) = got else { break };
            let delivery = message.delivery;
            let (reason, died_in, deaths) = death_of(delivery.properties.headers().as_ref());
            found.push(DeadLetter {
                message_id: delivery.properties.message_id().as_ref().map(ToString::to_string),
                reason,
                queue: died_in,
                deaths,
                payload: delivery.data,
            });
        }
        Ok::<(), QueueError>(())
    }
    .await;
    // Closing without acknowledging puts every inspected message back.
    close_channel(&channel).await;
    result.map(|()| found)
}

/// Moves up to `limit` messages from `command`'s dead-letter queue back to its work queue (published to the
/// commands exchange with publisher confirms, then acknowledged, so a crash in between duplicates instead of
/// losing). The copies start with a fresh delivery count. Returns how many were moved.
pub async fn requeue_dead_letters(
    broker: &Broker,
    topology: &Topology,
    command: CommandKind,
    limit: usize,
) -> Result<usize, QueueError> {
    let queue = topology.dead_letter_queue(command);
    let channel = broker.channel("requeueing dead letters").await?;
    let result = async {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|source| QueueError::Channel { what: "enabling confirms", source: Box::new(source) })?;
        let mut moved = 0;
        while moved < limit {
            let got = channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(|source| QueueError::Consume { queue: queue.clone(), source: Box::new(source) })?;
            let Some(message) = got else { break };
            let delivery = message.delivery;
            let message_id = delivery.properties.message_id().as_ref().map(ToString::to_string).unwrap_or_default();
            let mut properties = BasicProperties::default()
                .with_content_type(crate::CONTENT_TYPE.into())
                .with_delivery_mode(2)
                .with_type(command.routing_key().into());
            if let Some(id) = delivery.properties.message_id() {
                properties = properties.with_message_id(id.clone());
            }
            let publish_error = |source: lapin::Error| QueueError::Publish {
                command,
                message_id: message_id.clone(),
                source: Box::new(source),
            };
            let confirmation = channel
                .basic_publish(
                    topology.exchange().as_str().into(),
                    command.routing_key().into(),
                    BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                    &delivery.data,
                    properties,
                )
                .await
                .map_err(publish_error)?
                .await
                .map_err(publish_error)?;
            match confirmation {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    return Err(QueueError::Unroutable {
                        command,
                        message_id,
                        reply_code: returned.reply_code,
                        reply_text: returned.reply_text.to_string(),
                    });
                }
                Confirmation::Nack(None) | Confirmation::NotRequested => {
                    return Err(QueueError::Nacked { command, message_id });
                }
            }
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .map_err(|source| QueueError::Consume { queue: queue.clone(), source: Box::new(source) })?;
            moved += 1;
        }
        Ok(moved)
    }
    .await;
    close_channel(&channel).await;
    result
}

/// Removes every ready message from `queue`; returns how many. For tests and operators.
pub async fn purge_queue(broker: &Broker, queue: &str) -> Result<u32, QueueError> {
    let channel = broker.channel("purging a queue").await?;
    let result = channel.queue_purge(queue.into(), QueuePurgeOptions::default()).await.map_err(|source| {
        QueueError::Topology { operation: "purging queue", name: queue.to_owned(), source: Box::new(source) }
    });
    close_channel(&channel).await;
    result
}

/// (reason, queue, count) of the first `x-death` entry.
fn death_of(headers: Option<&FieldTable>) -> (Option<String>, Option<String>, i64) {
    let Some(AMQPValue::FieldArray(deaths)) = headers.and_then(|headers| headers.inner().get("x-death")) else {
        return (None, None, 0);
    };
    let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first() else {
        return (None, None, 0);
    };
    let text = |name: &str| match first.inner().get(name) {
        Some(AMQPValue::LongString(value)) => Some(value.to_string()),
        Some(AMQPValue::ShortString(value)) => Some(value.to_string()),
        _ => None,
    };
    let count = match first.inner().get("count") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        _ => 0,
    };
    (text("reason"), text("queue"), count)
}
