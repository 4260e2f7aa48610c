//! A worker process: context from settings, the consumer loop with reconnects, readiness, and a bounded
//! graceful shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ferry_config::Settings;
use ferry_credentials::{Credentials, ProviderClients};
use ferry_db::Db;
use ferry_queue::{Broker, CancellationToken, CommandKind, Topology};
use ferry_storage::BlobStore;

use crate::reaper::{ReaperConfig, run_reaper};
use crate::worker::{TransferContext, WorkerKind, run_worker};

/// A running worker: its consumer task and what readiness looks at.
pub struct WorkerService {
    pub kind: WorkerKind,
    pub context: TransferContext,
    broker: Arc<Mutex<Option<Broker>>>,
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// The importer's store-task consumer.
    store_task: Option<tokio::task::JoinHandle<()>>,
    /// The importer's sync-run consumer.
    sync_task: Option<tokio::task::JoinHandle<()>>,
}

/// Store tasks handled at once by one importer (image decoding is CPU-bound; removals are quick).
const STORE_TASK_CONCURRENCY: u16 = 2;
/// Sync runs planned at once by one importer (each lists or reads a feed, then writes one transaction).
const SYNC_RUN_CONCURRENCY: u16 = 2;

impl WorkerService {
    /// Builds the context and starts consuming. Postgres and RabbitMQ may be down: the loop retries.
    pub fn start(settings: &Settings, kind: WorkerKind) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database.url, settings.database.max_connections as usize)
            .context("building the database pool")?;
        let storage = BlobStore::from_settings(&settings.storage).context("opening the blob store")?;
        let ProviderClients { oauth, drive, cipher } = ProviderClients::from_settings(settings)?;
        let reliability = &settings.reliability;
        let topology = Topology::new(settings.amqp.queue_prefix.clone(), settings.amqp.delivery_limit);
        let (concurrency, items_in_flight) = match kind {
            WorkerKind::Importer => (settings.importer.concurrency, settings.importer.items_in_flight),
            WorkerKind::Exporter => (settings.exporter.concurrency, settings.exporter.items_in_flight),
        };
        let pacer_db = db.clone();
        let context = TransferContext {
            credentials: Credentials::new(db.clone(), oauth, cipher),
            db,
            storage,
            drive,
            worker_id: format!("{}-{}", kind.name(), uuid::Uuid::new_v4().simple()),
            lease: Duration::from_secs(reliability.lease_secs),
            max_attempts: reliability.max_item_attempts,
            pacer: ferry_pacer::DrivePacer::new(
                pacer_db,
                ferry_pacer::PacerPolicy::with_max_rate(reliability.drive_pacer_max_rate),
                reliability.drive_requests_per_sec,
            ),
            topology: topology.clone(),
            stall_timeout: Duration::from_secs(reliability.stall_timeout_secs),
            slots: crate::TransferSlots::new(concurrency, ferry_config::SMALL_FILE_BYTES),
            export_ahead: crate::ExportAhead::default(),
            progress: crate::attempt::Progress::new(),
        };
        let shutdown = CancellationToken::new();
        let reaper = ReaperConfig {
            interval: Duration::from_secs(reliability.reaper_interval_secs),
            stale_pending: Duration::from_secs(reliability.stale_pending_secs),
            max_attempts: reliability.max_item_attempts,
        };
        let broker: Arc<Mutex<Option<Broker>>> = Arc::default();
        tokio::spawn(crate::observe::report_queue_depth(
            broker.clone(),
            topology.queue(kind.command()),
            shutdown.clone(),
        ));
        tokio::spawn(run_reaper(
            context.db.clone(),
            kind,
            reaper,
            topology.clone(),
            settings.amqp.url.clone(),
            shutdown.clone(),
        ));
        // The importer also keeps the store tidy: removals of unused bytes and image descriptions.
        let store_task = (kind == WorkerKind::Importer).then(|| {
            tokio::spawn(run_worker(
                context.clone(),
                kind,
                CommandKind::StoreTask,
                settings.amqp.url.clone(),
                topology.clone(),
                STORE_TASK_CONCURRENCY,
                shutdown.clone(),
                |_| {},
            ))
        });
        // It starts scheduled library syncs (one replica per pass)...
        if kind == WorkerKind::Importer {
            tokio::spawn(crate::sync::run_sync_scheduler(
                context.db.clone(),
                Duration::from_secs(settings.importer.sync_schedule_every_secs),
                shutdown.clone(),
            ));
        }
        // ...and plans library sync runs, whose transfers then arrive on its own queue.
        let sync_task = (kind == WorkerKind::Importer).then(|| {
            tokio::spawn(run_worker(
                context.clone(),
                kind,
                CommandKind::SyncRun,
                settings.amqp.url.clone(),
                topology.clone(),
                SYNC_RUN_CONCURRENCY,
                shutdown.clone(),
                |_| {},
            ))
        });
        let slot = broker.clone();
        let task = tokio::spawn(run_worker(
            context.clone(),
            kind,
            kind.command(),
            settings.amqp.url.clone(),
            topology,
            u16::try_from(items_in_flight).unwrap_or(u16::MAX),
            shutdown.clone(),
            move |current| {
                let mut guard = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                *guard = current;
            },
        ));
        Ok(WorkerService { kind, context, broker, shutdown, task, store_task, sync_task })
    }

    /// Ready when the database answers and the broker connection is up.
    pub fn readiness_checks(&self) -> (impl Fn() -> bool + Send + Sync + Clone + 'static, Db) {
        let broker = self.broker.clone();
        let connected = move || broker.lock().map(|b| b.as_ref().is_some_and(Broker::is_connected)).unwrap_or(false);
        (connected, self.context.db.clone())
    }

    /// Stops taking messages, lets in-flight items finish (their messages are settled), and returns within
    /// `deadline` (plus a moment to hand items back). Items still running at the deadline are abandoned: they
    /// are released in Postgres so the next worker can claim them at once, and closing the connection returns
    /// their unacknowledged messages to the queue (nack-requeue semantics).
    pub async fn stop(self, deadline: Duration) {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + deadline;
        // Store tasks and sync plannings are safe to repeat: one cut short is redelivered (a planning's lease
        // lapses and the next worker takes it).
        for mut side in [self.store_task, self.sync_task].into_iter().flatten() {
            if tokio::time::timeout_at(deadline, &mut side).await.is_err() {
                side.abort();
                let _ = side.await;
            }
        }
        let mut task = self.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            tracing::warn!(
                worker = self.kind.name(),
                "shutdown deadline passed with items in flight; handing them back"
            );
            task.abort();
            let _ = task.await;
            let broker = self.broker.lock().map(|mut slot| slot.take()).unwrap_or(None);
            if let Some(broker) = broker {
                broker.close().await;
            }
        }
        match tokio::time::timeout(
            Duration::from_secs(5),
            self.context.db.release_items_of_worker(&self.context.worker_id),
        )
        .await
        {
            Ok(Ok(0)) => {}
            Ok(Ok(released)) => tracing::info!(worker = self.kind.name(), released, "released items at shutdown"),
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot release items at shutdown; their leases will expire"),
            Err(_) => tracing::warn!("releasing items at shutdown timed out; their leases will expire"),
        }
    }
}
