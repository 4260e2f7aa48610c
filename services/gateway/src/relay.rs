//! The outbox relay, run inside the gateway: Postgres rows → RabbitMQ with publisher confirms, woken by
//! LISTEN/NOTIFY as soon as a job's transaction commits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_db::Db;
use ferry_db::outbox::{OutboxListener, RowOutcome};
use ferry_queue::{
    BoxError, Broker, CancellationToken, CommandKind, OutboxMessage, OutboxStore, PublishFn, Publisher, QueueError,
    RelayCounts, Topology,
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
    async fn relay_batch(&self, limit: usize, publish: &PublishFn<'_>) -> Result<RelayCounts, BoxError> {
        let relayed = self
            .db
            .relay_outbox_rows(limit as i64, async move |rows| {
                // Rows naming no known command can never be published: they are parked, not sent.
                let mut outcomes = vec![RowOutcome::Retry; rows.len()];
                let mut messages = Vec::with_capacity(rows.len());
                let mut positions = Vec::with_capacity(rows.len());
                // One span per message, a child of the transaction that wrote the row; its traceparent travels
                // as the message's header, so the worker's span continues the same trace.
                let mut spans = Vec::with_capacity(rows.len());
                for (position, row) in rows.into_iter().enumerate() {
                    match CommandKind::from_routing_key(&row.command) {
                        Some(command) => {
                            let span = tracing::info_span!(
                                "outbox.publish",
                                outbox_id = row.id,
                                command = %row.command,
                                outcome = tracing::field::Empty
                            );
                            if let Some(parent) = row.traceparent.as_deref() {
                                ferry_telemetry::set_parent_from_traceparent(&span, parent);
                            }
                            let traceparent = ferry_telemetry::traceparent_of(&span).or(row.traceparent);
                            spans.push(span);
                            messages.push(OutboxMessage { id: row.id, command, payload: row.payload, traceparent });
                            positions.push(position);
                        }
                        None => {
                            let reason = format!("unknown command {:?}", row.command);
                            tracing::error!(outbox_id = row.id, %reason, "parking an outbox row");
                            outcomes[position] = RowOutcome::Park(reason);
                        }
                    }
                }
                if messages.is_empty() {
                    return outcomes;
                }
                let results = publish(&messages).await;
                for (((position, message), result), span) in
                    positions.into_iter().zip(&messages).zip(results).zip(&spans)
                {
                    span.record("outcome", if result.is_ok() { "published" } else { "failed" });
                    outcomes[position] = match result {
                        Ok(()) => RowOutcome::Published,
                        Err(err) if err.is_permanent_publish_failure() => {
                            let reason = err.to_string();
                            tracing::error!(outbox_id = message.id, %reason, "parking an outbox row");
                            RowOutcome::Park(reason)
                        }
                        Err(_) => RowOutcome::Retry,
                    };
                }
                outcomes
            })
            .await
            .map_err(|err| Box::new(err) as BoxError)?;
        Ok(RelayCounts { published: relayed.published, parked: relayed.parked, failed: relayed.retry })
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
    confirm_timeout: Duration,
    broker_slot: SharedBroker,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        // Connecting (which may retry for a while) gives way to shutdown; declaring the topology, once started, is
        // finished, so a stopped gateway never leaves a declare in flight behind it.
        let broker = tokio::select! {
            _ = shutdown.cancelled() => return,
            broker = Broker::connect(&amqp_url, "gateway-outbox-relay") => broker,
        };
        let connected = async {
            let broker = broker?;
            topology.declare(&broker).await?;
            let publisher = Publisher::new(&broker, &topology).await?.with_confirm_timeout(confirm_timeout);
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
                // A lost connection is not recovered in place (see `Broker::connect`): this relay reconnects
                // from scratch as soon as it notices.
                let mut was_blocked = false;
                loop {
                    tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
                    // A broker on a memory or disk alarm blocks publishers: confirms stop coming, batches time out
                    // and their rows stay in the outbox until it lifts.
                    let blocked = broker.is_blocked();
                    if blocked != was_blocked {
                        if blocked {
                            tracing::warn!("RabbitMQ blocked publishing (resource alarm); commands wait in the outbox");
                        } else {
                            tracing::info!("RabbitMQ unblocked publishing; the outbox drains");
                        }
                        metrics::gauge!("ferry_broker_blocked").set(if blocked { 1.0 } else { 0.0 });
                        was_blocked = blocked;
                    }
                    if !broker.is_connected() {
                        tracing::warn!("the outbox relay lost its RabbitMQ connection; reconnecting");
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
