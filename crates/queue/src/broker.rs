//! The AMQP connection shared by everything in one process.

use std::{fmt, sync::Arc, time::Duration};

use lapin::{Channel, Connection, ConnectionProperties, options::QueueDeclareOptions, types::FieldTable};

use crate::QueueError;

/// The longest [`Broker::connect`] takes, lapin's own retries included, before it gives up with
/// [`QueueError::Deadline`]: a broker that is starting can accept TCP connections and never finish the AMQP
/// handshake.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(60);
/// The longest opening a channel or closing the connection waits for the broker's answer.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(15);

/// One AMQP connection (cheap to clone: clones share it). Channels are opened from it per
/// publisher, per consumer and per short topology operation.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    connection: Connection,
    name: String,
}

impl Broker {
    /// Connects, retrying the first attempt with a short backoff (about 0.5 s, 1 s, 2 s, 4 s, then every 5 s;
    /// 10 attempts), all within [`CONNECT_DEADLINE`].
    ///
    /// lapin's automatic recovery is deliberately off: when the broker restarted several times in a row, a
    /// recovered connection could come back with its consumer never re-registered and no error ever reported,
    /// so a worker sat idle for good. Instead a lost connection stays lost ([`Broker::is_connected`] turns
    /// false, consumers return [`QueueError::ConnectionLost`], publishes fail) and each owner builds a new
    /// `Broker`: the workers' consumer loop, the gateway's relay and the reapers all reconnect with backoff.
    ///
    /// `url` is an `amqp://` or `amqps://` URI; it is never logged or put in errors because
    /// it carries the password.
    pub async fn connect(url: &str, connection_name: &str) -> Result<Broker, QueueError> {
        let properties =
            ConnectionProperties::default().with_connection_name(connection_name.into()).configure_backoff(|backoff| {
                backoff
                    .with_min_delay(Duration::from_millis(500))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(10)
                    .with_jitter()
            });
        let connection = tokio::time::timeout(CONNECT_DEADLINE, Connection::connect(url, properties))
            .await
            .map_err(|_| QueueError::Deadline { what: "connecting to RabbitMQ", waited: CONNECT_DEADLINE })?
            .map_err(|source| QueueError::Connect {
                connection_name: connection_name.to_owned(),
                source: Box::new(source),
            })?;
        tracing::info!(connection_name, "connected to RabbitMQ");
        Ok(Broker { inner: Arc::new(Inner { connection, name: connection_name.to_owned() }) })
    }

    /// True while the connection is open (false once it failed or was closed). Meant for readiness probes.
    pub fn is_connected(&self) -> bool {
        self.inner.connection.status().connected()
    }

    /// True while the broker blocks this connection's publishers (a memory or disk alarm): published
    /// messages wait unconfirmed until it lifts. Shown by readiness and logged by the relay.
    pub fn is_blocked(&self) -> bool {
        self.inner.connection.status().blocked()
    }

    /// Closes the connection politely (reply code 200), waiting at most [`ANSWER_DEADLINE`] for the broker's
    /// close-ok (a half-dead connection never sends one). Errors are only logged: closing is best effort and
    /// usually happens at shutdown or before reconnecting.
    pub async fn close(&self) {
        if self.inner.connection.status().closed() {
            return;
        }
        match tokio::time::timeout(ANSWER_DEADLINE, self.inner.connection.close(200, "OK".into())).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(connection_name = %self.inner.name, %error, "closing the RabbitMQ connection")
            }
            Err(_) => tracing::warn!(
                connection_name = %self.inner.name,
                waited = ?ANSWER_DEADLINE,
                "the broker did not acknowledge closing the connection; dropping it"
            ),
        }
    }

    /// The connection name given at [`Broker::connect`] (shown by `rabbitmqctl list_connections`).
    pub fn connection_name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) async fn channel(&self, what: &'static str) -> Result<Channel, QueueError> {
        tokio::time::timeout(ANSWER_DEADLINE, self.inner.connection.create_channel())
            .await
            .map_err(|_| QueueError::Deadline { what, waited: ANSWER_DEADLINE })?
            .map_err(|source| QueueError::Channel { what, source: Box::new(source) })
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("connection_name", &self.inner.name)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// Number of ready messages in `queue` (not counting unacknowledged ones), from a passive
/// declare. A missing queue is an error. For tests, metrics and autoscaling hints.
pub async fn queue_depth(broker: &Broker, queue: &str) -> Result<u32, QueueError> {
    // A failed passive declare closes its channel, so it gets a channel of its own.
    let channel = broker.channel("inspecting a queue").await?;
    let result = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
            FieldTable::default(),
        )
        .await;
    close_channel(&channel).await;
    result.map(|declared| declared.message_count()).map_err(|source| QueueError::Topology {
        operation: "inspecting queue",
        name: queue.to_owned(),
        source: Box::new(source),
    })
}

/// Closes a channel we are done with; a channel the broker already closed is fine.
/// Runs one request that waits for the broker's answer, giving up after [`ANSWER_DEADLINE`].
pub(crate) async fn answered<T>(
    what: &'static str,
    request: impl std::future::Future<Output = Result<T, QueueError>>,
) -> Result<T, QueueError> {
    tokio::time::timeout(ANSWER_DEADLINE, request)
        .await
        .unwrap_or(Err(QueueError::Deadline { what, waited: ANSWER_DEADLINE }))
}

pub(crate) async fn close_channel(channel: &Channel) {
    if !channel.status().connected() {
        return;
    }
    match tokio::time::timeout(ANSWER_DEADLINE, channel.close(200, "OK".into())).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "closing a channel"),
        Err(_) => tracing::warn!(waited = ?ANSWER_DEADLINE, "the broker did not acknowledge closing a channel"),
    }
}
