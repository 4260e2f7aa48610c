//! ferry-queue against a real RabbitMQ (amqp://guest:guest@127.0.0.1:5672/%2f, or
//! `FERRY_TEST_AMQP_URL`). Every test works under its own `test-<uuid>` prefix and deletes
//! its queues and exchanges at the end.

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use ferry_queue::{
    BoxError, Broker, CONTENT_TYPE, CancellationToken, CommandKind, ConsumerConfig, Delivery, OutboxMessage,
    OutboxStore, Outcome, PublishFn, Publisher, QueueError, RelayCounts, Topology, queue_depth, run_consumer,
    run_outbox_relay,
};
use lapin::{
    options::{BasicGetOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use tokio::{
    sync::{Barrier, Notify, mpsc},
    task::JoinHandle,
};

/// How long a test waits for something the broker does before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn amqp_url() -> String {
    std::env::var("FERRY_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A broker connection and a topology under a fresh prefix.
struct Fixture {
    broker: Broker,
    topology: Topology,
    cleaned_up: bool,
}

impl Fixture {
    async fn new(delivery_limit: u32) -> Fixture {
        let fixture = Fixture::undeclared(delivery_limit).await;
        fixture.topology.declare(&fixture.broker).await.expect("declare topology");
        fixture
    }

    async fn undeclared(delivery_limit: u32) -> Fixture {
        let prefix = format!("test-{}", uuid::Uuid::new_v4());
        let broker = Broker::connect(&amqp_url(), &prefix).await.expect("connect to RabbitMQ");
        Fixture { broker, topology: Topology::new(prefix, delivery_limit), cleaned_up: false }
    }

    async fn publisher(&self) -> Publisher {
        Publisher::new(&self.broker, &self.topology).await.expect("publisher")
    }

    fn queue(&self, command: CommandKind) -> String {
        self.topology.queue(command)
    }

    fn dead(&self, command: CommandKind) -> String {
        self.topology.dead_letter_queue(command)
    }

    async fn depth(&self, queue: &str) -> u32 {
        queue_depth(&self.broker, queue).await.expect("queue depth")
    }

    async fn wait_for_depth(&self, queue: &str, expected: u32) {
        let broker = self.broker.clone();
        let queue = queue.to_owned();
        wait_until(&format!("{queue} to hold {expected} messages"), || {
            let broker = broker.clone();
            let queue = queue.clone();
            async move { queue_depth(&broker, &queue).await.ok() == Some(expected) }
        })
        .await;
    }

    /// Runs a consumer in the background; returns its shutdown token and task.
    fn consume<H, Fut>(
        &self,
        queue: String,
        prefetch: u16,
        handler: H,
    ) -> (CancellationToken, JoinHandle<Result<(), QueueError>>)
    where
        H: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let retry_queues = CommandKind::ALL
            .into_iter()
            .find(|command| self.queue(*command) == queue)
            .map(|command| self.topology.retry_queues(command))
            .unwrap_or_default();
        let config = ConsumerConfig {
            consumer_tag: format!("{queue}-consumer-{}", uuid::Uuid::new_v4()),
            queue,
            prefetch,
            retry_queues,
        };
        let broker = self.broker.clone();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { run_consumer(&broker, config, token, handler).await });
        (shutdown, task)
    }

    /// Takes every message from `queue` (acking them) until it is empty.
    async fn drain(&self, queue: &str) -> Vec<Delivery> {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let expected = self.depth(queue).await as usize;
        let (shutdown, task) = self.consume(queue.to_owned(), 10, move |delivery| {
            let sender = sender.clone();
            async move {
                let _ = sender.send(delivery);
                Outcome::Ack
            }
        });
        let mut deliveries = Vec::new();
        while deliveries.len() < expected {
            let delivery = tokio::time::timeout(PATIENCE, receiver.recv())
                .await
                .expect("drained in time")
                .expect("consumer alive");
            deliveries.push(delivery);
        }
        shutdown.cancel();
        task.await.expect("join").expect("consumer result");
        deliveries
    }

    async fn lapin_channel(&self) -> (lapin::Connection, lapin::Channel) {
        let connection = lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("raw connection");
        let channel = connection.create_channel().await.expect("raw channel");
        (connection, channel)
    }

    async fn unbind(&self, command: CommandKind) {
        let (_connection, channel) = self.lapin_channel().await;
        channel
            .queue_unbind(
                self.queue(command).as_str().into(),
                self.topology.exchange().as_str().into(),
                command.routing_key().into(),
                FieldTable::default(),
            )
            .await
            .expect("unbind");
    }

    async fn cleanup(mut self) {
        self.topology.delete(&self.broker).await.expect("delete topology");
        self.broker.close().await;
        self.cleaned_up = true;
    }
}

impl Drop for Fixture {
    /// A failed test still deletes its queues: on a thread of its own, since `Drop` cannot await.
    fn drop(&mut self) {
        if self.cleaned_up {
            return;
        }
        let topology = self.topology.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async {
                if let Ok(broker) = Broker::connect(&amqp_url(), "test-cleanup").await {
                    let _ = topology.delete(&broker).await;
                    broker.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn declare_twice_is_idempotent_and_creates_quorum_queues() {
    let fixture = Fixture::new(5).await;
    fixture.topology.declare(&fixture.broker).await.expect("second declare");
    for queue in fixture.topology.queues() {
        assert_eq!(fixture.depth(&queue).await, 0, "{queue}");
    }

    // Declaring the same name as a classic queue must clash with the quorum queue's type.
    let (_connection, channel) = fixture.lapin_channel().await;
    let mut classic = FieldTable::default();
    classic.insert("x-queue-type".into(), AMQPValue::LongString("classic".into()));
    for queue in fixture.topology.queues() {
        let channel = _connection.create_channel().await.expect("channel");
        let clash = channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() },
                classic.clone(),
            )
            .await
            .expect_err("a classic declare of a quorum queue is refused");
        assert!(
            clash.to_string().contains("PRECONDITION_FAILED") || format!("{clash:?}").contains("PRECONDITIONFAILED"),
            "{queue}: {clash:?}"
        );
    }
    drop(channel);

    // Queue arguments are fixed: another delivery limit under the same prefix is refused.
    let other = Topology::new(fixture.topology.prefix(), 6);
    let error = other.declare(&fixture.broker).await.expect_err("changed x-delivery-limit");
    assert!(matches!(error, QueueError::Topology { .. }), "{error:?}");
    assert!(fixture.broker.is_connected());

    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_sets_the_documented_properties() {
    let fixture = Fixture::new(5).await;
    let publisher = fixture.publisher().await;
    publisher.publish(CommandKind::ExportItem, "msg-1", b"payload").await.expect("publish");

    let (_connection, channel) = fixture.lapin_channel().await;
    let message = channel
        .basic_get(fixture.queue(CommandKind::ExportItem).as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
        .expect("a message");
    let properties = &message.delivery.properties;
    assert_eq!(message.delivery.data, b"payload");
    assert_eq!(message.delivery.routing_key.as_str(), "export.item");
    assert_eq!(properties.message_id().as_ref().map(|id| id.as_str()), Some("msg-1"));
    assert_eq!(properties.content_type().as_ref().map(|ct| ct.as_str()), Some(CONTENT_TYPE));
    assert_eq!(*properties.delivery_mode(), Some(2));
    assert_eq!(properties.kind().as_ref().map(|kind| kind.as_str()), Some("export.item"));
    assert!(properties.timestamp().is_some());

    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_consume_ack() {
    let fixture = Fixture::new(5).await;
    let publisher = fixture.publisher().await;
    publisher.publish(CommandKind::ImportItem, "import-1", b"\x08\x01hello").await.expect("publish");

    let (sender, mut receiver) = mpsc::unbounded_channel();
    let (shutdown, task) = fixture.consume(fixture.queue(CommandKind::ImportItem), 4, move |delivery| {
        let sender = sender.clone();
        async move {
            let _ = sender.send(delivery);
            Outcome::Ack
        }
    });
    let delivery =
        tokio::time::timeout(PATIENCE, receiver.recv()).await.expect("delivered in time").expect("consumer alive");
    let traceparent = delivery.traceparent.clone().expect("traceparent header");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [2, 32, 16, 2], "{traceparent}");
    assert_eq!(
        delivery,
        Delivery {
            payload: b"\x08\x01hello".to_vec(),
            message_id: Some("import-1".to_owned()),
            redelivered: false,
            delivery_count: 0,
            retries: 0,
            traceparent: Some(traceparent.clone()),
        }
    );
    shutdown.cancel();
    task.await.expect("join").expect("consumer stops cleanly");

    // Acked: nothing came back to the queue when the consumer's channel closed.
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 0);
    assert_eq!(fixture.depth(&fixture.dead(CommandKind::ImportItem)).await, 0);
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_batch_confirms_all() {
    let fixture = Fixture::new(5).await;
    let publisher = fixture.publisher().await;
    let batch: Vec<(CommandKind, String, Vec<u8>)> = (0..20)
        .map(|n| {
            let command = if n % 2 == 0 { CommandKind::ImportItem } else { CommandKind::ExportItem };
            (command, format!("batch-{n}"), vec![n as u8])
        })
        .collect();
    // Spawned to prove the future is Send.
    let cloned = publisher.clone();
    tokio::spawn(async move { cloned.publish_batch(&batch).await }).await.expect("join").expect("batch confirmed");
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 10);
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ExportItem)).await, 10);

    let ids: BTreeSet<String> = fixture
        .drain(&fixture.queue(CommandKind::ImportItem))
        .await
        .into_iter()
        .filter_map(|delivery| delivery.message_id)
        .collect();
    let expected: BTreeSet<String> = (0..20).step_by(2).map(|n| format!("batch-{n}")).collect();
    assert_eq!(ids, expected);
    fixture.cleanup().await;
}

/// Operators can look at dead letters without removing them, then put them back on the work queue.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_can_be_listed_and_requeued() {
    let fixture = Fixture::new(5).await;
    let publisher = fixture.publisher().await;
    for n in 0..3 {
        publisher.publish(CommandKind::ImportItem, &format!("dead-{n}"), b"poison").await.expect("publish");
    }
    let (shutdown, task) =
        fixture.consume(fixture.queue(CommandKind::ImportItem), 3, move |_| async { Outcome::Reject });
    fixture.wait_for_depth(&fixture.dead(CommandKind::ImportItem), 3).await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer stops cleanly");

    let listed = ferry_queue::list_dead_letters(&fixture.broker, &fixture.topology, CommandKind::ImportItem, 10)
        .await
        .expect("list");
    let mut ids: Vec<String> = listed.iter().filter_map(|dead| dead.message_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["dead-0", "dead-1", "dead-2"]);
    assert!(listed.iter().all(|dead| dead.reason.as_deref() == Some("rejected") && dead.payload == b"poison"));
    assert_eq!(listed[0].queue.as_deref(), Some(fixture.queue(CommandKind::ImportItem).as_str()));
    // Listing does not remove anything.
    fixture.wait_for_depth(&fixture.dead(CommandKind::ImportItem), 3).await;

    let moved = ferry_queue::requeue_dead_letters(&fixture.broker, &fixture.topology, CommandKind::ImportItem, 2)
        .await
        .expect("requeue");
    assert_eq!(moved, 2);
    fixture.wait_for_depth(&fixture.queue(CommandKind::ImportItem), 2).await;
    fixture.wait_for_depth(&fixture.dead(CommandKind::ImportItem), 1).await;
    let back = fixture.drain(&fixture.queue(CommandKind::ImportItem)).await;
    assert!(back.iter().all(|delivery| delivery.delivery_count == 0 && delivery.payload == b"poison"));
    assert_eq!(
        ferry_queue::purge_queue(&fixture.broker, &fixture.dead(CommandKind::ImportItem)).await.expect("purge"),
        1
    );
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_dead_letters_the_message() {
    let fixture = Fixture::new(5).await;
    let publisher = fixture.publisher().await;
    publisher.publish(CommandKind::ExportItem, "bad-1", b"poison").await.expect("publish");

    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let (shutdown, task) = fixture.consume(fixture.queue(CommandKind::ExportItem), 1, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Outcome::Reject }
    });
    fixture.wait_for_depth(&fixture.dead(CommandKind::ExportItem), 1).await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer stops cleanly");

    assert_eq!(seen.load(Ordering::SeqCst), 1, "rejected once, never redelivered");
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ExportItem)).await, 0);
    let dead = fixture.drain(&fixture.dead(CommandKind::ExportItem)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, b"poison");
    assert_eq!(dead[0].message_id.as_deref(), Some("bad-1"));
    fixture.cleanup().await;
}

/// RabbitMQ 3.10 quorum queues: `x-delivery-limit = N` allows N returns (nack with requeue);
/// the message is delivered N + 1 times and the (N + 1)th return dead-letters it. The
/// `x-delivery-count` header counts the returns so far: absent (0), 1, ..., N, and
/// `Topology::is_final_delivery` is true exactly for the last one.
#[tokio::test(flavor = "multi_thread")]
async fn requeue_dead_letters_after_the_delivery_limit() {
    const LIMIT: u32 = 3;
    let fixture = Fixture::new(LIMIT).await;
    let publisher = fixture.publisher().await;
    publisher.publish(CommandKind::ImportItem, "flaky-1", b"retry me").await.expect("publish");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let topology = fixture.topology.clone();
    let (shutdown, task) = fixture.consume(fixture.queue(CommandKind::ImportItem), 1, move |delivery| {
        log.lock().expect("lock").push((
            delivery.redelivered,
            delivery.delivery_count,
            topology.is_final_delivery(&delivery),
        ));
        async { Outcome::Requeue }
    });
    fixture.wait_for_depth(&fixture.dead(CommandKind::ImportItem), 1).await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer stops cleanly");

    let seen = seen.lock().expect("lock").clone();
    println!("deliveries (redelivered, x-delivery-count, final): {seen:?}");
    let expected: Vec<(bool, u32, bool)> = (0..=LIMIT).map(|count| (count > 0, count, count == LIMIT)).collect();
    assert_eq!(seen, expected);
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 0);
    let dead = fixture.drain(&fixture.dead(CommandKind::ImportItem)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id.as_deref(), Some("flaky-1"));
    assert_eq!(dead[0].payload, b"retry me");
    fixture.cleanup().await;
}

/// A retry goes through a delay tier and comes back as a fresh message: the delivery count starts again (the
/// delivery limit is not consumed), the retry count grows, and nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn retry_goes_through_a_delay_tier_and_comes_back() {
    const LIMIT: u32 = 1;
    let fixture = Fixture::new(LIMIT).await;
    let publisher = fixture.publisher().await;
    publisher.publish(CommandKind::ImportItem, "later-1", b"try again").await.expect("publish");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let trace_ids = Arc::new(Mutex::new(BTreeSet::new()));
    let traces = trace_ids.clone();
    let started = std::time::Instant::now();
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let (shutdown, task) = fixture.consume(fixture.queue(CommandKind::ImportItem), 1, move |delivery| {
        let mut log = log.lock().expect("lock");
        log.push((delivery.delivery_count, delivery.retries, started.elapsed()));
        traces.lock().expect("lock").insert(delivery.traceparent.clone());
        let outcome = if log.len() < 4 { Outcome::Retry(Duration::from_millis(300)) } else { Outcome::Ack };
        if log.len() == 4 {
            let _ = sender.send(());
        }
        async move { outcome }
    });
    tokio::time::timeout(PATIENCE, receiver.recv()).await.expect("fourth delivery in time").expect("consumer alive");
    shutdown.cancel();
    task.await.expect("join").expect("consumer stops cleanly");

    let seen = seen.lock().expect("lock").clone();
    println!("deliveries (x-delivery-count, retries, elapsed): {seen:?}");
    // More attempts than the delivery limit allows, yet never dead-lettered: tier retries are new messages.
    assert_eq!(
        seen.iter().map(|(count, retries, _)| (*count, *retries)).collect::<Vec<_>>(),
        [(0, 0), (0, 1), (0, 2), (0, 3)]
    );
    assert!(seen[3].2 >= Duration::from_millis(900), "three delays of 300 ms each");
    let trace_ids = trace_ids.lock().expect("lock").clone();
    assert_eq!(trace_ids.len(), 1, "one trace across the retries: {trace_ids:?}");
    assert!(trace_ids.iter().all(Option::is_some));
    assert_eq!(fixture.depth(&fixture.dead(CommandKind::ImportItem)).await, 0);
    for (_, queue) in fixture.topology.retry_queues(CommandKind::ImportItem) {
        assert_eq!(fixture.depth(&queue).await, 0, "{queue} is empty");
    }
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_handler_requeues() {
    let fixture = Fixture::new(5).await;
    fixture.publisher().await.publish(CommandKind::ImportItem, "panics-once", b"x").await.expect("publish");
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let (shutdown, task) = fixture.consume(fixture.queue(CommandKind::ImportItem), 1, move |delivery| {
        let sender = sender.clone();
        async move {
            let first = delivery.delivery_count == 0;
            let _ = sender.send(delivery);
            assert!(!first, "handler failure on the first delivery");
            Outcome::Ack
        }
    });
    for expected_count in [0, 1] {
        let delivery =
            tokio::time::timeout(PATIENCE, receiver.recv()).await.expect("delivered in time").expect("consumer alive");
        assert_eq!(delivery.delivery_count, expected_count);
    }
    fixture.wait_for_depth(&fixture.queue(CommandKind::ImportItem), 0).await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer survives handler panics");
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 0);
    assert_eq!(fixture.depth(&fixture.dead(CommandKind::ImportItem)).await, 0);
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_to_an_unbound_routing_key_fails() {
    let fixture = Fixture::new(5).await;
    fixture.unbind(CommandKind::ExportItem).await;
    let publisher = fixture.publisher().await;

    let error = publisher
        .publish(CommandKind::ExportItem, "nowhere-1", b"x")
        .await
        .expect_err("no queue is bound for export.item");
    match error {
        QueueError::Unroutable { command, message_id, reply_code, .. } => {
            assert_eq!(command, CommandKind::ExportItem);
            assert_eq!(message_id, "nowhere-1");
            assert_eq!(reply_code, 312); // NO_ROUTE
        }
        other => panic!("expected Unroutable, got {other:?}"),
    }

    // The channel survives a return; a batch with one unroutable message fails as a whole.
    publisher.publish(CommandKind::ImportItem, "somewhere-1", b"x").await.expect("routable publish after a return");
    let batch = vec![
        (CommandKind::ImportItem, "somewhere-2".to_owned(), b"x".to_vec()),
        (CommandKind::ExportItem, "nowhere-2".to_owned(), b"x".to_vec()),
    ];
    let error = publisher.publish_batch(&batch).await.expect_err("batch with an unroutable message");
    assert!(matches!(error, QueueError::Unroutable { .. }), "{error:?}");
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 2);
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publisher_replaces_a_channel_the_broker_closed() {
    let fixture = Fixture::undeclared(5).await;
    // Nothing declared yet: publishing to a missing exchange makes the broker close the channel.
    let publisher = fixture.publisher().await;
    let error = publisher.publish(CommandKind::ImportItem, "early", b"x").await.expect_err("exchange does not exist");
    assert!(matches!(error, QueueError::Publish { .. }), "{error:?}");

    fixture.topology.declare(&fixture.broker).await.expect("declare");
    publisher.publish(CommandKind::ImportItem, "later", b"x").await.expect("publish on a fresh channel");
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 1);
    assert!(fixture.broker.is_connected());
    let broker = fixture.broker.clone();
    fixture.cleanup().await;
    assert!(!broker.is_connected(), "closed by cleanup");
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_depth_of_a_missing_queue_is_an_error() {
    let fixture = Fixture::new(5).await;
    let missing = format!("{}.missing", fixture.topology.prefix());
    let error = queue_depth(&fixture.broker, &missing).await.expect_err("missing queue");
    assert!(matches!(error, QueueError::Topology { .. }), "{error:?}");
    // Only the throwaway channel died; the connection is fine.
    assert!(fixture.broker.is_connected());
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 0);
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn handlers_run_concurrently_up_to_prefetch() {
    const PREFETCH: u16 = 3;
    let fixture = Fixture::new(5).await;
    let batch: Vec<(CommandKind, String, Vec<u8>)> =
        (0..9).map(|n| (CommandKind::ImportItem, format!("c-{n}"), vec![n])).collect();
    fixture.publisher().await.publish_batch(&batch).await.expect("publish");

    // Each group of PREFETCH handlers only gets past the barrier together, so the test
    // finishes only if PREFETCH handlers really run at once; `max` shows it is never more.
    let barrier = Arc::new(Barrier::new(usize::from(PREFETCH)));
    let running = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (b, r, m, d) = (barrier.clone(), running.clone(), max.clone(), done.clone());
    let (shutdown, task) = fixture.consume(fixture.queue(CommandKind::ImportItem), PREFETCH, move |_| {
        let (barrier, running, max, done) = (b.clone(), r.clone(), m.clone(), d.clone());
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            barrier.wait().await;
            running.fetch_sub(1, Ordering::SeqCst);
            done.fetch_add(1, Ordering::SeqCst);
            Outcome::Ack
        }
    });
    wait_until("all handlers to finish", || {
        let done = done.clone();
        async move { done.load(Ordering::SeqCst) == 9 }
    })
    .await;
    shutdown.cancel();
    task.await.expect("join").expect("consumer stops cleanly");
    assert_eq!(max.load(Ordering::SeqCst), usize::from(PREFETCH));
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ImportItem)).await, 0);
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prefetch_zero_is_refused() {
    let fixture = Fixture::new(5).await;
    let (_shutdown, task) = fixture.consume(fixture.queue(CommandKind::ImportItem), 0, |_| async { Outcome::Ack });
    let error = task.await.expect("join").expect_err("prefetch 0");
    assert!(matches!(error, QueueError::InvalidConfig(_)), "{error:?}");
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_waits_for_the_running_handler() {
    let fixture = Fixture::new(5).await;
    let publisher = fixture.publisher().await;
    publisher.publish(CommandKind::ImportItem, "slow-1", b"x").await.expect("publish");

    let events = Arc::new(Mutex::new(Vec::<&'static str>::new()));
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (e, s, r) = (events.clone(), started.clone(), release.clone());
    let (shutdown, task) = fixture.consume(fixture.queue(CommandKind::ImportItem), 1, move |_| {
        let (events, started, release) = (e.clone(), s.clone(), r.clone());
        async move {
            started.notify_one();
            release.notified().await;
            events.lock().expect("lock").push("handler finished");
            Outcome::Ack
        }
    });
    tokio::time::timeout(PATIENCE, started.notified()).await.expect("handler started");

    shutdown.cancel();
    // Published after shutdown: must not be taken any more.
    publisher.publish(CommandKind::ImportItem, "after-shutdown", b"y").await.expect("publish");
    // Give a consumer that does not wait every chance to return before the handler ends.
    let releaser = {
        let release = release.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            release.notify_one();
        })
    };
    task.await.expect("join").expect("consumer stops cleanly");
    events.lock().expect("lock").push("consumer returned");
    releaser.await.expect("join");

    assert_eq!(*events.lock().expect("lock"), vec!["handler finished", "consumer returned"]);
    // The in-flight message was acked; the later one is still waiting in the queue.
    let left = fixture.drain(&fixture.queue(CommandKind::ImportItem)).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message_id.as_deref(), Some("after-shutdown"));
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_returns_err_when_its_queue_is_deleted() {
    let fixture = Fixture::new(5).await;
    let (_shutdown, task) = fixture.consume(fixture.queue(CommandKind::ExportItem), 1, |_| async { Outcome::Ack });
    // Make sure the consumer is registered before the queue goes away.
    let (_connection, channel) = fixture.lapin_channel().await;
    wait_until("the consumer to register", || {
        let channel = channel.clone();
        let queue = fixture.queue(CommandKind::ExportItem);
        async move {
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
                    FieldTable::default(),
                )
                .await
                .map(|queue| queue.consumer_count() == 1)
                .unwrap_or(false)
        }
    })
    .await;
    fixture.topology.delete(&fixture.broker).await.expect("delete");
    let error = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("consumer noticed")
        .expect("join")
        .expect_err("queue deleted under the consumer");
    assert!(matches!(error, QueueError::ConsumerCancelled { .. } | QueueError::Consume { .. }), "{error:?}");
    fixture.cleanup().await;
}

/// In-memory stand-in for the database's outbox table (test scaffolding; the broker is real).
#[derive(Default)]
struct MemoryOutbox {
    state: Mutex<OutboxState>,
    notify: Notify,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RowState {
    Waiting,
    Published,
    Parked(String),
}

#[derive(Default)]
struct OutboxState {
    rows: BTreeMap<i64, (OutboxMessage, RowState)>,
    /// Rows a running `relay_batch` holds, like `FOR UPDATE SKIP LOCKED` locks.
    claimed: BTreeSet<i64>,
    failed_batches: usize,
}

impl MemoryOutbox {
    fn insert(&self, id: i64, command: CommandKind, payload: &[u8]) {
        self.state.lock().expect("lock").rows.insert(
            id,
            (OutboxMessage { id, command, payload: payload.to_vec(), traceparent: None }, RowState::Waiting),
        );
        // Like the NOTIFY of an insert trigger.
        self.notify.notify_one();
    }

    fn in_state(&self, wanted: impl Fn(&RowState) -> bool) -> BTreeSet<i64> {
        let state = self.state.lock().expect("lock");
        state.rows.iter().filter(|(_, (_, row))| wanted(row)).map(|(id, _)| *id).collect()
    }

    fn published(&self) -> BTreeSet<i64> {
        self.in_state(|row| *row == RowState::Published)
    }

    fn parked(&self) -> BTreeSet<i64> {
        self.in_state(|row| matches!(row, RowState::Parked(_)))
    }

    fn failed_batches(&self) -> usize {
        self.state.lock().expect("lock").failed_batches
    }
}

#[async_trait]
impl OutboxStore for MemoryOutbox {
    async fn relay_batch(&self, limit: usize, publish: &PublishFn<'_>) -> Result<RelayCounts, BoxError> {
        let batch: Vec<OutboxMessage> = {
            let mut state = self.state.lock().expect("lock");
            let batch: Vec<OutboxMessage> = state
                .rows
                .values()
                .filter(|(message, row)| *row == RowState::Waiting && !state.claimed.contains(&message.id))
                .take(limit)
                .map(|(message, _)| message.clone())
                .collect();
            state.claimed.extend(batch.iter().map(|message| message.id));
            batch
        };
        if batch.is_empty() {
            return Ok(RelayCounts::default());
        }
        let results = publish(&batch).await;
        let mut state = self.state.lock().expect("lock");
        let mut counts = RelayCounts::default();
        for (message, result) in batch.iter().zip(results) {
            state.claimed.remove(&message.id);
            let next = match result {
                Ok(()) => {
                    counts.published += 1;
                    RowState::Published
                }
                Err(error) if error.is_permanent_publish_failure() => {
                    counts.parked += 1;
                    RowState::Parked(error.to_string())
                }
                Err(_) => {
                    counts.failed += 1;
                    RowState::Waiting
                }
            };
            if let Some((_, row)) = state.rows.get_mut(&message.id) {
                *row = next;
            }
        }
        if counts.failed > 0 {
            state.failed_batches += 1;
        }
        Ok(counts)
    }

    async fn wait_for_rows(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.notify.notified()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_relay_parks_unroutable_rows_and_publishes_the_rest() {
    let fixture = Fixture::new(5).await;
    // export.item is unroutable until re-bound: row 3 can never be published as things stand.
    fixture.unbind(CommandKind::ExportItem).await;
    let store = Arc::new(MemoryOutbox::default());
    store.insert(1, CommandKind::ImportItem, b"one");
    store.insert(2, CommandKind::ImportItem, b"two");
    store.insert(3, CommandKind::ExportItem, b"three");
    store.insert(4, CommandKind::ImportItem, b"four");

    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(run_outbox_relay(
        store.clone(),
        fixture.publisher().await,
        10,
        // Long: wake-ups in this test come from notifications.
        Duration::from_secs(3600),
        shutdown.clone(),
    ));

    // The unroutable row is set aside; the rows behind it are not blocked.
    wait_until("rows 1, 2 and 4 published and row 3 parked", || {
        let store = store.clone();
        async move { store.published() == BTreeSet::from([1, 2, 4]) && store.parked() == BTreeSet::from([3]) }
    })
    .await;
    assert_eq!(store.failed_batches(), 0, "a parked row is not a failed batch");

    // Once the queue is bound again, new export rows flow (row 3 stays parked for an operator).
    let (_connection, channel) = fixture.lapin_channel().await;
    channel
        .queue_bind(
            fixture.queue(CommandKind::ExportItem).as_str().into(),
            fixture.topology.exchange().as_str().into(),
            CommandKind::ExportItem.routing_key().into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    store.insert(5, CommandKind::ExportItem, b"five");
    wait_until("row 5 to be marked published", || {
        let store = store.clone();
        async move { store.published().contains(&5) }
    })
    .await;

    shutdown.cancel();
    tokio::time::timeout(PATIENCE, relay).await.expect("relay stops on shutdown").expect("join");

    let imports = fixture.drain(&fixture.queue(CommandKind::ImportItem)).await;
    let import_ids: BTreeSet<String> = imports.iter().filter_map(|d| d.message_id.clone()).collect();
    assert_eq!(import_ids, BTreeSet::from(["1".to_owned(), "2".to_owned(), "4".to_owned()]));
    let exports = fixture.drain(&fixture.queue(CommandKind::ExportItem)).await;
    let export_ids: BTreeSet<(Option<String>, Vec<u8>)> =
        exports.into_iter().map(|d| (d.message_id, d.payload)).collect();
    assert_eq!(export_ids, BTreeSet::from([(Some("5".to_owned()), b"five".to_vec())]));
    fixture.cleanup().await;
}

/// A TCP proxy in front of RabbitMQ whose connections the test can cut, to exercise lapin's
/// connection recovery without touching the broker.
struct CuttableProxy {
    url: String,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl CuttableProxy {
    async fn start() -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let upstream = std::env::var("FERRY_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".to_owned());
        let connections = Arc::new(Mutex::new(Vec::new()));
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tracked.lock().expect("lock").push(task.abort_handle());
            }
        });
        CuttableProxy { url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"), connections, accept }
    }

    /// Drops every proxied socket, as a network failure would.
    fn cut(&self) {
        for connection in self.connections.lock().expect("lock").drain(..) {
            connection.abort();
        }
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A dropped connection is never recovered in place (a recovered connection could come back without its
/// consumer): the consumer waits for its running handler, then returns `ConnectionLost` so its owner reconnects;
/// publishing through the dead connection fails instead of pretending; the interrupted message is delivered
/// again on a new connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_connection_ends_the_consumer_and_fails_publishes() {
    let fixture = Fixture::new(5).await;
    let proxy = CuttableProxy::start().await;
    let flaky = Broker::connect(&proxy.url, &format!("{}-flaky", fixture.topology.prefix()))
        .await
        .expect("connect through the proxy");
    let direct_publisher = fixture.publisher().await;
    let flaky_publisher = Publisher::new(&flaky, &fixture.topology).await.expect("publisher through the proxy");

    let (sender, mut receiver) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let handler_done = Arc::new(AtomicBool::new(false));
    let done = handler_done.clone();
    let config = ConsumerConfig {
        queue: fixture.queue(CommandKind::ImportItem),
        consumer_tag: "flaky-consumer".to_owned(),
        prefetch: 2,
        retry_queues: Vec::new(),
    };
    let consumer = {
        let broker = flaky.clone();
        tokio::spawn(async move {
            run_consumer(&broker, config, CancellationToken::new(), move |delivery: Delivery| {
                let (sender, gate, done) = (sender.clone(), gate.clone(), done.clone());
                async move {
                    let _ = sender.send(delivery);
                    gate.notified().await;
                    done.store(true, Ordering::SeqCst);
                    Outcome::Ack
                }
            })
            .await
        })
    };

    direct_publisher.publish(CommandKind::ImportItem, "in-flight", b"x").await.expect("publish");
    let first = tokio::time::timeout(PATIENCE, receiver.recv()).await.expect("delivered in time").expect("sent");
    assert_eq!((first.message_id.as_deref(), first.redelivered), (Some("in-flight"), false));

    // The network drops while the handler is still working on "in-flight".
    proxy.cut();
    wait_until("the flaky connection to be seen as lost", || {
        let flaky = flaky.clone();
        async move { !flaky.is_connected() }
    })
    .await;
    assert!(!consumer.is_finished(), "the consumer waits for its running handler");
    release.notify_one();
    let ended = tokio::time::timeout(PATIENCE, consumer).await.expect("the consumer returns").expect("join");
    assert!(handler_done.load(Ordering::SeqCst), "the handler ran to its end first");
    assert!(matches!(ended, Err(QueueError::ConnectionLost { .. })), "got {ended:?}");

    // Nothing can be published through the dead connection, and nothing claims it was.
    let published = flaky_publisher.publish(CommandKind::ExportItem, "through-dead-proxy", b"z").await;
    assert!(published.is_err(), "a publish through a dead connection must fail");
    assert_eq!(fixture.depth(&fixture.queue(CommandKind::ExportItem)).await, 0);

    // The ack of the interrupted handler was lost with the connection: a new consumer gets the message again.
    let redelivered = fixture.drain(&fixture.queue(CommandKind::ImportItem)).await;
    let again: Vec<_> =
        redelivered.iter().map(|d| (d.message_id.as_deref(), d.redelivered, d.delivery_count)).collect();
    assert_eq!(again, vec![(Some("in-flight"), true, 1)]);
    flaky.close().await;
    fixture.cleanup().await;
}
