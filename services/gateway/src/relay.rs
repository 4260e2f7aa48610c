//! The outbox relay, run inside the gateway: Postgres rows → RabbitMQ with publisher confirms, woken by
//! LISTEN/NOTIFY as soon as a job's transaction commits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_db::Db;
use ferry_db::outbox::{OutboxListener, RelayError};
use ferry_queue::{
    BoxError, Broker, CancellationToken, CommandKind, OutboxMessage, OutboxStore, PublishFn, Publisher, QueueError,
    Topology,
};
use tokio::sync::Notify;

/// The database side of the relay.
pub struct PgOutbox {
    db: Db,
    wake: Arc<Notify>,
}

impl PgOutbox {
    /// Starts the LISTEN connection (reconnecting whenever it drops) and returns the store.
    pub fn start(db: Db, shutdown: CancellationToken) -> Arc<Self> {
        let wake = Arc::new(Notify::new());
        tokio::spawn(listen(db.url().to_owned(), wake.clone(), shutdown));
        Arc::new(PgOutbox { db, wake })
    }
}

async fn listen(url: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let mut listener = match OutboxListener::connect(&url).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "outbox listener cannot connect; retrying");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                continue;
            }
        };
        // Rows committed while the listener was down are picked up by this first wake-up.
        wake.notify_one();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                waited = listener.wait(Duration::from_secs(30)) => match waited {
                    Ok(true) => wake.notify_one(),
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "outbox listener lost its connection; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

#[async_trait::async_trait]
impl OutboxStore for PgOutbox {
    async fn relay_batch(&self, limit: usize, publish: &PublishFn<'_>) -> Result<usize, BoxError> {
        let result = self
            .db
            .relay_outbox_batch(limit as i64, async move |rows| {
                let mut messages = Vec::with_capacity(rows.len());
                for row in rows {
                    let command = CommandKind::from_routing_key(&row.command).ok_or_else(|| {
                        QueueError::InvalidConfig(format!(
                            "outbox row {} has unknown command {:?}",
                            row.id, row.command
                        ))
                    })?;
                    messages.push(OutboxMessage { id: row.id, command, payload: row.payload });
                }
                publish(&messages).await
            })
            .await;
        match result {
            Ok(count) => Ok(count),
            Err(RelayError::Db(err)) => Err(Box::new(err)),
            Err(RelayError::Publish(err)) => Err(Box::new(err)),
        }
    }

    async fn wait_for_rows(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
    }

    async fn backlog(&self) -> Option<(i64, f64)> {
        self.db.outbox_backlog().await.ok()
    }
}

/// The broker connection the relay currently uses (for readiness).
pub type SharedBroker = Arc<Mutex<Option<Broker>>>;

/// Runs the relay until shutdown, reconnecting to RabbitMQ when the connection is lost for good.
pub async fn run(
    store: Arc<PgOutbox>,
    amqp_url: String,
    topology: Topology,
    fallback_poll: Duration,
    broker_slot: SharedBroker,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        let connected = async {
            let broker = Broker::connect(&amqp_url, "gateway-outbox-relay").await?;
            topology.declare(&broker).await?;
            let publisher = Publisher::new(&broker, &topology).await?;
            Ok::<_, QueueError>((broker, publisher))
        }
        .await;
        let (broker, publisher) = match connected {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, "outbox relay cannot reach RabbitMQ; retrying");
                tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(backoff) => {} }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        set_broker(&broker_slot, Some(broker.clone()));
        let stop_this_connection = shutdown.child_token();
        let watchdog = {
            let broker = broker.clone();
            let stop = stop_this_connection.clone();
            tokio::spawn(async move {
                // lapin recovers short outages itself (about 40 s of attempts); past that, this relay
                // reconnects from scratch.
                let mut disconnected_for = 0;
                loop {
                    tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                    disconnected_for = if broker.is_connected() { 0 } else { disconnected_for + 1 };
                    if disconnected_for >= 45 {
                        stop.cancel();
                        return;
                    }
                }
            })
        };
        ferry_queue::run_outbox_relay(store.clone(), publisher, 200, fallback_poll, stop_this_connection.clone()).await;
        stop_this_connection.cancel();
        let _ = watchdog.await;
        set_broker(&broker_slot, None);
        broker.close().await;
    }
}

fn set_broker(slot: &SharedBroker, broker: Option<Broker>) {
    let mut guard = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *guard = broker;
}
