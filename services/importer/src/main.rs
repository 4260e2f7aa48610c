//! The importer worker: consumes its queue and moves files; serves /livez, /readyz and /metrics.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ferry_worker_runtime::run(ferry_transfer::WorkerKind::Importer).await
}
