//! Exchange and queue names, and declaring them.

use std::{fmt, time::Duration};

use lapin::{
    Channel, ExchangeKind,
    options::{
        ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};

use crate::{Broker, QueueError, broker::close_channel};

/// The commands Ferry sends through RabbitMQ; each has its own queue and dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// Import one Drive file into the store.
    ImportItem,
    /// Export one stored file to Drive.
    ExportItem,
    /// Upkeep of the store (removing unused blobs, describing images), consumed by the importer.
    StoreTask,
    /// Plan one library sync run, consumed by the importer.
    SyncRun,
}

impl CommandKind {
    /// Every command, for declaring topology and for metrics.
    pub const ALL: [CommandKind; 4] =
        [CommandKind::ImportItem, CommandKind::ExportItem, CommandKind::StoreTask, CommandKind::SyncRun];

    /// Routing key on the commands exchange, also the AMQP `type` property of the message.
    pub fn routing_key(self) -> &'static str {
        match self {
            CommandKind::ImportItem => "import.item",
            CommandKind::ExportItem => "export.item",
            CommandKind::StoreTask => ferry_messages::STORE_TASK_COMMAND,
            CommandKind::SyncRun => ferry_messages::SYNC_RUN_COMMAND,
        }
    }

    /// Inverse of [`CommandKind::routing_key`].
    pub fn from_routing_key(routing_key: &str) -> Option<CommandKind> {
        CommandKind::ALL.into_iter().find(|kind| kind.routing_key() == routing_key)
    }

    /// The queue-name segment: `{prefix}.{segment}`.
    fn queue_segment(self) -> &'static str {
        match self {
            CommandKind::ImportItem => "import",
            CommandKind::ExportItem => "export",
            CommandKind::StoreTask => "store",
            CommandKind::SyncRun => "sync",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.routing_key())
    }
}

/// Names of Ferry's exchanges and queues under one prefix (one prefix per deployment, or per
/// test), and their declaration.
///
/// ```text
/// {prefix}.commands     (direct) --import.item--> {prefix}.import  (quorum)
///                                 --export.item--> {prefix}.export  (quorum)
///                                 --store.task---> {prefix}.store   (quorum)
///                                 --sync.run-----> {prefix}.sync    (quorum)
/// {prefix}.dead-letter  (direct) --import.item--> {prefix}.import.dead (quorum)
///                                 --export.item--> {prefix}.export.dead (quorum)
/// (default exchange) --> {prefix}.import.retry.{1,2,4,8,16,32}s (classic, TTL) --expired--> {prefix}.commands
/// ```
///
/// Delayed retries: a consumer that wants a message back later publishes a copy to the retry queue of the
/// right tier (its queue-level `x-message-ttl` plus a per-message `expiration` for jitter) and acknowledges the
/// original. When the copy expires the queue dead-letters it to the commands exchange with the command's
/// routing key, so it lands back in the work queue. The tiers are classic queues because quorum queues only
/// learned message TTL in RabbitMQ 3.10 (the oldest version these machines run) and dead-letter with at-most-once
/// semantics there; losing a retry copy is covered by the item reaper (a pending item nobody touches).
///
/// A work queue dead-letters a message when a consumer rejects it without requeue, or when
/// it has been returned to the queue more than `delivery_limit` times (RabbitMQ's
/// `x-delivery-limit`). Measured on RabbitMQ 3.10: a message is delivered at most
/// `delivery_limit + 1` times (`x-delivery-count` 0, 1, ..., `delivery_limit`); the return
/// after the last delivery dead-letters it. On 3.10 a return because the consumer's channel
/// or connection closed counts like a nack with requeue (RabbitMQ 4 may not count those).
/// Dead-lettering is at-least-once (`x-dead-letter-strategy`, which needs
/// `x-overflow=reject-publish`; the queues have no length limit, so nothing is rejected).
///
/// Queue arguments cannot change once a queue exists: declaring again with another
/// `delivery_limit` fails with `PRECONDITION_FAILED`. Change it with a policy instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    delivery_limit: u32,
}

impl Topology {
    /// `delivery_limit` is the quorum queues' `x-delivery-limit`; see the type's documentation.
    pub fn new(prefix: impl Into<String>, delivery_limit: u32) -> Topology {
        Topology { prefix: prefix.into(), delivery_limit }
    }

    /// The name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The `x-delivery-limit` of the work queues.
    pub fn delivery_limit(&self) -> u32 {
        self.delivery_limit
    }

    /// True if returning this delivery to the queue once more (a [`crate::Outcome::Requeue`],
    /// or the worker dying before it settles) will dead-letter it instead of delivering it
    /// again. A handler can use it to record the failure before giving up on the message.
    pub fn is_final_delivery(&self, delivery: &crate::Delivery) -> bool {
        delivery.delivery_count >= self.delivery_limit
    }

    /// `{prefix}.commands`: the direct exchange every command is published to.
    pub fn exchange(&self) -> String {
        format!("{}.commands", self.prefix)
    }

    /// `{prefix}.dead-letter`: the direct exchange the work queues dead-letter to.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letter", self.prefix)
    }

    /// `{prefix}.import` / `{prefix}.export`: the work queue of a command.
    pub fn queue(&self, command: CommandKind) -> String {
        format!("{}.{}", self.prefix, command.queue_segment())
    }

    /// `{prefix}.import.dead` / `{prefix}.export.dead`: where a command's failed messages end up.
    pub fn dead_letter_queue(&self, command: CommandKind) -> String {
        format!("{}.{}.dead", self.prefix, command.queue_segment())
    }

    /// The delayed-retry tiers, shortest first: truncated exponential backoff, 1 s doubling up to 32 s (Google's
    /// guidance for Drive rate limits and 5xx).
    pub fn retry_tiers(&self) -> Vec<Duration> {
        RETRY_TIER_SECS.iter().map(|secs| Duration::from_secs(*secs)).collect()
    }

    /// `{prefix}.import.retry.4s`: the retry queue of `command` for the tier `tier` (one of [`Self::retry_tiers`]).
    pub fn retry_queue(&self, command: CommandKind, tier: Duration) -> String {
        format!("{}.{}.retry.{}s", self.prefix, command.queue_segment(), tier.as_secs())
    }

    /// The retry queues of `command`, with their delays, shortest first (what a consumer needs).
    pub fn retry_queues(&self, command: CommandKind) -> Vec<(Duration, String)> {
        self.retry_tiers().into_iter().map(|tier| (tier, self.retry_queue(command, tier))).collect()
    }

    /// Every queue of this topology (work queues, dead-letter queues and retry tiers).
    pub fn queues(&self) -> Vec<String> {
        CommandKind::ALL
            .into_iter()
            .flat_map(|command| {
                let mut queues = vec![self.queue(command), self.dead_letter_queue(command)];
                queues.extend(self.retry_queues(command).into_iter().map(|(_, queue)| queue));
                queues
            })
            .collect()
    }

    /// Declares the exchanges, queues and bindings. Idempotent as long as the arguments are
    /// unchanged, so every service calls it at start.
    pub async fn declare(&self, broker: &Broker) -> Result<(), QueueError> {
        // A failed declare closes the channel, so topology work gets a throwaway channel.
        let channel = broker.channel("declaring the topology").await?;
        let result = tokio::time::timeout(DECLARE_DEADLINE, self.declare_on(&channel))
            .await
            .unwrap_or(Err(QueueError::Deadline { what: "declaring the topology", waited: DECLARE_DEADLINE }));
        close_channel(&channel).await;
        result
    }

    /// Deletes every queue (with its messages) and both exchanges. For tests and for
    /// tearing down a throwaway deployment; missing objects are not an error.
    pub async fn delete(&self, broker: &Broker) -> Result<(), QueueError> {
        let channel = broker.channel("deleting the topology").await?;
        let result = self.delete_on(&channel).await;
        close_channel(&channel).await;
        result
    }

    async fn delete_on(&self, channel: &Channel) -> Result<(), QueueError> {
        for queue in self.queues() {
            channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.map_err(|source| {
                QueueError::Topology { operation: "deleting queue", name: queue.clone(), source: Box::new(source) }
            })?;
        }
        for exchange in [self.exchange(), self.dead_letter_exchange()] {
            channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await.map_err(
                |source| QueueError::Topology {
                    operation: "deleting exchange",
                    name: exchange.clone(),
                    source: Box::new(source),
                },
            )?;
        }
        Ok(())
    }

    async fn declare_on(&self, channel: &Channel) -> Result<(), QueueError> {
        for exchange in [self.exchange(), self.dead_letter_exchange()] {
            channel
                .exchange_declare(
                    exchange.as_str().into(),
                    ExchangeKind::Direct,
                    ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                    FieldTable::default(),
                )
                .await
                .map_err(|source| QueueError::Topology {
                    operation: "declaring exchange",
                    name: exchange.clone(),
                    source: Box::new(source),
                })?;
        }
        for command in CommandKind::ALL {
            let routing_key = command.routing_key();
            self.declare_queue(channel, &self.queue(command), self.work_queue_arguments(command)).await?;
            self.bind(channel, &self.queue(command), &self.exchange(), routing_key).await?;
            let mut dead_arguments = FieldTable::default();
            dead_arguments.insert("x-queue-type".into(), long_string("quorum"));
            self.declare_queue(channel, &self.dead_letter_queue(command), dead_arguments).await?;
            self.bind(channel, &self.dead_letter_queue(command), &self.dead_letter_exchange(), routing_key).await?;
            for (tier, queue) in self.retry_queues(command) {
                let mut arguments = FieldTable::default();
                arguments.insert("x-queue-type".into(), long_string("classic"));
                let ttl = i64::try_from(tier.as_millis()).unwrap_or(i64::MAX);
                arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl));
                arguments.insert("x-dead-letter-exchange".into(), long_string(&self.exchange()));
                arguments.insert("x-dead-letter-routing-key".into(), long_string(routing_key));
                self.declare_queue(channel, &queue, arguments).await?;
            }
        }
        Ok(())
    }

    fn work_queue_arguments(&self, command: CommandKind) -> FieldTable {
        let mut arguments = FieldTable::default();
        arguments.insert("x-queue-type".into(), long_string("quorum"));
        arguments.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(i64::from(self.delivery_limit)));
        arguments.insert("x-dead-letter-exchange".into(), long_string(&self.dead_letter_exchange()));
        arguments.insert("x-dead-letter-routing-key".into(), long_string(command.routing_key()));
        // Quorum queues dead-letter at-most-once by default; at-least-once keeps a message
        // until the dead-letter queue has confirmed it, and requires reject-publish overflow.
        arguments.insert("x-dead-letter-strategy".into(), long_string("at-least-once"));
        arguments.insert("x-overflow".into(), long_string("reject-publish"));
        arguments
    }

    async fn declare_queue(&self, channel: &Channel, queue: &str, arguments: FieldTable) -> Result<(), QueueError> {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() },
                arguments,
            )
            .await
            .map(drop)
            .map_err(|source| QueueError::Topology {
                operation: "declaring queue",
                name: queue.to_owned(),
                source: Box::new(source),
            })
    }

    async fn bind(&self, channel: &Channel, queue: &str, exchange: &str, routing_key: &str) -> Result<(), QueueError> {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|source| QueueError::Topology {
                operation: "binding queue",
                name: format!("{queue} to {exchange} with {routing_key}"),
                source: Box::new(source),
            })
    }
}

/// Retry tier delays in seconds.
/// The longest declaring the whole topology may take (about a hundred declares and binds, each normally a
/// millisecond or two).
const DECLARE_DEADLINE: Duration = Duration::from_secs(30);

const RETRY_TIER_SECS: [u64; 6] = [1, 2, 4, 8, 16, 32];

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prefix() {
        let topology = Topology::new("ferry", 5);
        assert_eq!(topology.exchange(), "ferry.commands");
        assert_eq!(topology.dead_letter_exchange(), "ferry.dead-letter");
        assert_eq!(topology.queue(CommandKind::ImportItem), "ferry.import");
        assert_eq!(topology.queue(CommandKind::ExportItem), "ferry.export");
        assert_eq!(topology.dead_letter_queue(CommandKind::ImportItem), "ferry.import.dead");
        assert_eq!(topology.dead_letter_queue(CommandKind::ExportItem), "ferry.export.dead");
        assert_eq!(topology.retry_queue(CommandKind::ImportItem, Duration::from_secs(4)), "ferry.import.retry.4s");
        assert_eq!(topology.retry_queues(CommandKind::ExportItem).len(), 6);
        assert_eq!(topology.queue(CommandKind::StoreTask), "ferry.store");
        assert_eq!(topology.queue(CommandKind::SyncRun), "ferry.sync");
        assert_eq!(topology.queues().len(), 32);
    }

    #[test]
    fn routing_keys_round_trip() {
        for command in CommandKind::ALL {
            assert_eq!(CommandKind::from_routing_key(command.routing_key()), Some(command));
        }
        assert_eq!(CommandKind::ImportItem.routing_key(), "import.item");
        assert_eq!(CommandKind::ExportItem.to_string(), "export.item");
        assert_eq!(CommandKind::from_routing_key("import"), None);
    }
}
