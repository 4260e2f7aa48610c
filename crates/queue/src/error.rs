//! The one error type of this crate.

use crate::CommandKind;

/// What went wrong talking to RabbitMQ. Every variant names the object it was about.
/// (lapin's errors are boxed: they are large and this type travels in every `Result`.)
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The AMQP connection could not be established (after lapin's own retries).
    #[error("connecting to RabbitMQ as {connection_name:?}")]
    Connect {
        connection_name: String,
        #[source]
        source: Box<lapin::Error>,
    },
    /// A channel could not be opened or configured (qos, confirm mode).
    #[error("opening a channel: {what}")]
    Channel {
        what: &'static str,
        #[source]
        source: Box<lapin::Error>,
    },
    /// Declaring, binding or inspecting an exchange or queue failed (for example inequivalent
    /// arguments on an existing queue, or a passive declare of a missing queue).
    #[error("{operation} {name:?}")]
    Topology {
        operation: &'static str,
        name: String,
        #[source]
        source: Box<lapin::Error>,
    },
    /// The message could not be handed to the broker, or the channel died before it confirmed.
    #[error("publishing {command} message {message_id:?}")]
    Publish {
        command: CommandKind,
        message_id: String,
        #[source]
        source: Box<lapin::Error>,
    },
    /// The broker negatively acknowledged the message: it did not take responsibility for it.
    #[error("broker nacked {command} message {message_id:?}")]
    Nacked { command: CommandKind, message_id: String },
    /// The broker did not confirm the message within the publisher's deadline (for example because it blocked
    /// publishers on a memory or disk alarm). It may or may not have been queued.
    #[error("broker did not confirm {command} message {message_id:?} within {waited:?}")]
    ConfirmTimeout { command: CommandKind, message_id: String, waited: std::time::Duration },
    /// The message was not handed to the broker at all (no channel could be had); nothing was sent.
    #[error("{command} message {message_id:?} was not published: {reason}")]
    Unpublished { command: CommandKind, message_id: String, reason: String },
    /// The message was mandatory and no queue was bound for its routing key.
    #[error("broker returned {command} message {message_id:?} as unroutable: {reply_code} {reply_text}")]
    Unroutable { command: CommandKind, message_id: String, reply_code: u16, reply_text: String },
    /// Consuming failed: the channel or connection died.
    #[error("consuming from queue {queue:?}")]
    Consume {
        queue: String,
        #[source]
        source: Box<lapin::Error>,
    },
    /// The consumer's connection to the broker is gone; the caller reconnects.
    #[error("lost the connection while consuming from queue {queue:?}")]
    ConnectionLost { queue: String },
    /// The broker cancelled our consumer (for example because the queue was deleted).
    #[error("the broker cancelled the consumer on queue {queue:?}")]
    ConsumerCancelled { queue: String },
    /// A step that talks to the broker did not finish within its deadline (a broker that accepted the TCP
    /// connection but stopped answering, typically while it starts or stops). The caller reconnects.
    #[error("{what} did not finish within {waited:?}")]
    Deadline { what: &'static str, waited: std::time::Duration },
    /// A configuration value this crate cannot work with.
    #[error("invalid queue configuration: {0}")]
    InvalidConfig(String),
}

impl QueueError {
    /// True when publishing the same message again cannot succeed without someone changing something (no
    /// queue is bound for it): the relay parks such a message instead of retrying it forever.
    pub fn is_permanent_publish_failure(&self) -> bool {
        matches!(self, QueueError::Unroutable { .. })
    }
}
