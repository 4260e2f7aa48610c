//! RabbitMQ for Ferry: the exchange and queue topology, a publisher with confirms, a
//! consumer runner with bounded concurrency and explicit ack/requeue/reject, and the outbox
//! relay. The only crate that knows lapin; the others see bytes, [`CommandKind`]s and
//! [`QueueError`]s.
//!
//! Metrics (the `metrics` crate; the binary installs the recorder):
//! - `ferry_queue_published_total{command}`: messages confirmed by the broker,
//! - `ferry_queue_publish_failures_total{command, reason="nacked"|"unroutable"|"error"}`,
//! - `ferry_queue_consumer_outcomes_total{queue, outcome="ack"|"requeue"|"reject"}`,
//! - `ferry_outbox_relayed_total`, `ferry_outbox_relay_failures_total`, `ferry_outbox_backlog`,
//!   `ferry_outbox_oldest_age_seconds` (gauges, refreshed every 5 s by the relay).

mod broker;
mod consumer;
mod dead_letters;
mod error;
mod outbox;
mod publisher;
mod topology;

pub use broker::{Broker, queue_depth};
pub use consumer::{ConsumerConfig, Delivery, Outcome, run_consumer};
pub use dead_letters::{DeadLetter, list_dead_letters, purge_queue, requeue_dead_letters};
pub use error::QueueError;
pub use outbox::{BoxError, OutboxMessage, OutboxStore, PublishFn, RelayCounts, run_outbox_relay};
pub use publisher::{CONTENT_TYPE, DEFAULT_CONFIRM_TIMEOUT, Outgoing, Publisher};
/// Re-exported so callers can name the shutdown signal without another dependency line.
pub use tokio_util::sync::CancellationToken;
pub use topology::{CommandKind, Topology};

/// `error: cause: cause` on one line, for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
