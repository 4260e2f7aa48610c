//! A worker process: context from settings, the consumer loop with reconnects, readiness, and a bounded
//! graceful shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use ferry_config::Settings;
use ferry_credentials::{Credentials, ProviderClients};
use ferry_db::Db;
use ferry_queue::{Broker, CancellationToken, Topology};
use ferry_storage::BlobStore;

use crate::worker::{TransferContext, WorkerKind, run_worker};

/// A running worker: its consumer task and what readiness looks at.
pub struct WorkerService {
    pub kind: WorkerKind,
    pub context: TransferContext,
    broker: Arc<Mutex<Option<Broker>>>,
    pub shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl WorkerService {
    /// Builds the context and starts consuming. Postgres and RabbitMQ may be down: the loop retries.
    pub fn start(settings: &Settings, kind: WorkerKind) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database.url, settings.database.max_connections as usize)
            .context("building the database pool")?;
        let storage = BlobStore::local(&settings.storage.root).context("opening the blob store")?;
        let ProviderClients { oauth, drive, cipher } = ProviderClients::from_settings(settings)?;
        let concurrency = match kind {
            WorkerKind::Importer => settings.importer.concurrency,
            WorkerKind::Exporter => settings.exporter.concurrency,
        };
        let context = TransferContext {
            credentials: Credentials::new(db.clone(), oauth, cipher),
            db,
            storage,
            drive,
            worker_id: format!("{}-{}", kind.name(), uuid::Uuid::new_v4().simple()),
            lease: Duration::from_secs(120),
            upload_chunk_size: usize::try_from(settings.exporter.chunk_size_bytes).unwrap_or(8 * 1024 * 1024),
            // A quorum queue delivers a message up to delivery_limit + 1 times (measured on RabbitMQ 3.10).
            max_attempts: settings.amqp.delivery_limit + 1,
        };
        let topology = Topology::new(settings.amqp.queue_prefix.clone(), settings.amqp.delivery_limit);
        let shutdown = CancellationToken::new();
        let broker: Arc<Mutex<Option<Broker>>> = Arc::default();
        let slot = broker.clone();
        let task = tokio::spawn(run_worker(
            context.clone(),
            kind,
            settings.amqp.url.clone(),
            topology,
            u16::try_from(concurrency).unwrap_or(u16::MAX),
            shutdown.clone(),
            move |current| {
                let mut guard = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                *guard = current;
            },
        ));
        Ok(WorkerService { kind, context, broker, shutdown, task })
    }

    /// Ready when the database answers and the broker connection is up.
    pub fn readiness_checks(&self) -> (impl Fn() -> bool + Send + Sync + Clone + 'static, Db) {
        let broker = self.broker.clone();
        let connected = move || broker.lock().map(|b| b.as_ref().is_some_and(Broker::is_connected)).unwrap_or(false);
        (connected, self.context.db.clone())
    }

    /// Stops taking messages, lets in-flight items finish (their messages are settled), and returns within
    /// `deadline`; items still running then keep their lease and are picked up again after it expires.
    pub async fn stop(self, deadline: Duration) {
        self.shutdown.cancel();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!(worker = self.kind.name(), "shutdown deadline passed with items in flight");
        }
    }
}
