//! `ferryctl`: the operator's command line (database migrations, API keys, dead letters, requeueing a job's
//! failed items).

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ferry_core::{JobId, JobKind, TenantId};
use ferry_messages::Message;
use ferry_queue::{Broker, CommandKind, Topology};

#[derive(Parser)]
#[command(name = "ferryctl", version, about = "Operate a Ferry deployment")]
struct Cli {
    /// Postgres URL; defaults to the configured `database.url` (FERRY__DATABASE__URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// RabbitMQ URL; defaults to the configured `amqp.url` (FERRY__AMQP__URL).
    #[arg(long, global = true)]
    amqp_url: Option<String>,
    /// Queue name prefix; defaults to the configured `amqp.queue_prefix`.
    #[arg(long, global = true)]
    queue_prefix: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if it is missing and apply pending migrations.
    Migrate,
    /// Manage API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Inspect and requeue dead-lettered messages.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// Operate on jobs.
    Jobs {
        #[command(subcommand)]
        command: JobCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum QueueName {
    Import,
    Export,
}

impl QueueName {
    fn command(self) -> CommandKind {
        match self {
            QueueName::Import => CommandKind::ImportItem,
            QueueName::Export => CommandKind::ExportItem,
        }
    }
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// Print dead-lettered messages (one per line, tab-separated: message id, reason, queue, deaths, job, item),
    /// leaving them in place.
    List {
        #[arg(long, value_enum, default_value = "import")]
        queue: QueueName,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Move dead-lettered messages back to their work queue (with a fresh delivery count).
    Requeue {
        #[arg(long, value_enum, default_value = "import")]
        queue: QueueName,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum JobCommand {
    /// Put a job's failed items back to pending with fresh attempts and enqueue them again (via the outbox).
    RequeueFailed {
        /// `job_…` or the bare UUID.
        job_id: String,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key for a tenant (created on first use). Prints only the key, which is shown this once.
    Create {
        #[arg(long)]
        tenant: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Settings are only loaded for what the flags leave out.
    let settings = || ferry_config::Settings::load().context("loading settings");
    let database_url = match cli.database_url {
        Some(url) => url,
        None => settings()?.database.url,
    };
    let queue_settings = || -> anyhow::Result<(String, Topology)> {
        let loaded = if cli.amqp_url.is_none() || cli.queue_prefix.is_none() { Some(settings()?) } else { None };
        let url = cli.amqp_url.clone().or_else(|| loaded.as_ref().map(|s| s.amqp.url.clone())).unwrap_or_default();
        let prefix = cli
            .queue_prefix
            .clone()
            .or_else(|| loaded.as_ref().map(|s| s.amqp.queue_prefix.clone()))
            .unwrap_or_default();
        let delivery_limit = loaded.as_ref().map(|s| s.amqp.delivery_limit).unwrap_or(5);
        Ok((url, Topology::new(prefix, delivery_limit)))
    };
    match cli.command {
        Command::Migrate => {
            if ferry_db::create_database_if_missing(&database_url).await.context("creating the database")? {
                eprintln!("created database");
            }
            let applied = ferry_db::run_migrations(&database_url).await.context("applying migrations")?;
            eprintln!("applied {} migration(s)", applied.len());
        }
        Command::ApiKey { command: ApiKeyCommand::Create { tenant } } => {
            let tenant = tenant.trim();
            anyhow::ensure!(!tenant.is_empty(), "--tenant must not be empty");
            let db = ferry_db::Db::connect(&database_url, 1)?;
            let tenant_row = db.ensure_tenant(tenant).await.context("creating the tenant")?;
            let key = ferry_crypto::generate_api_key();
            let prefix: String = key.chars().take(8).collect();
            db.insert_api_key(TenantId(tenant_row.id), &ferry_crypto::hash_api_key(&key), &prefix)
                .await
                .context("storing the key")?;
            println!("{key}");
        }
        Command::DeadLetters { command } => {
            let (url, topology) = queue_settings()?;
            let broker = Broker::connect(&url, "ferryctl").await.context("connecting to RabbitMQ")?;
            let result = dead_letters(&broker, &topology, command).await;
            broker.close().await;
            result?;
        }
        Command::Jobs { command: JobCommand::RequeueFailed { job_id } } => {
            let job_id = JobId::parse(job_id.trim()).map_err(|err| anyhow::anyhow!("invalid job id: {err}"))?;
            let db = ferry_db::Db::connect(&database_url, 1)?;
            let kind = db.job_kind_any_tenant(job_id).await.context("reading the job")?;
            let Some(kind) = kind else { anyhow::bail!("no job {job_id}") };
            let command = match kind {
                JobKind::Import => CommandKind::ImportItem,
                JobKind::Export => CommandKind::ExportItem,
            };
            let requeued = db
                .requeue_failed_items(job_id, command.routing_key(), |item| encode_item(command, item))
                .await
                .context("requeueing the failed items")?;
            println!("{}", requeued.len());
            eprintln!("requeued {} failed item(s) of {job_id}", requeued.len());
        }
    }
    Ok(())
}

async fn dead_letters(broker: &Broker, topology: &Topology, command: DeadLetterCommand) -> anyhow::Result<()> {
    match command {
        DeadLetterCommand::List { queue, limit } => {
            let listed = ferry_queue::list_dead_letters(broker, topology, queue.command(), limit)
                .await
                .context("listing dead letters")?;
            for dead in &listed {
                let (job, item) = describe_payload(queue.command(), &dead.payload);
                println!(
                    "{}\t{}\t{}\t{}\t{job}\t{item}",
                    dead.message_id.as_deref().unwrap_or("-"),
                    dead.reason.as_deref().unwrap_or("-"),
                    dead.queue.as_deref().unwrap_or("-"),
                    dead.deaths,
                );
            }
            eprintln!("{} dead letter(s) in {}", listed.len(), topology.dead_letter_queue(queue.command()));
        }
        DeadLetterCommand::Requeue { queue, limit } => {
            let moved = ferry_queue::requeue_dead_letters(broker, topology, queue.command(), limit)
                .await
                .context("requeueing dead letters")?;
            println!("{moved}");
            eprintln!("moved {moved} message(s) back to {}", topology.queue(queue.command()));
        }
    }
    Ok(())
}

/// (job, item) of a command payload, or `undecodable`.
fn describe_payload(command: CommandKind, payload: &[u8]) -> (String, String) {
    let decoded = match command {
        CommandKind::ImportItem => ferry_messages::decode_import(payload).map(|m| (m.job_id, m.item_id)),
        CommandKind::ExportItem => ferry_messages::decode_export(payload).map(|m| (m.job_id, m.item_id)),
    };
    decoded.unwrap_or_else(|_| ("undecodable".to_owned(), "-".to_owned()))
}

fn encode_item(command: CommandKind, item: &ferry_db::leases::RequeuedItem) -> Vec<u8> {
    let (job_id, item_id, tenant_id) = (item.job_id.to_string(), item.item_id.to_string(), item.tenant_id.to_string());
    match command {
        CommandKind::ImportItem => {
            ferry_messages::ImportItem { job_id, item_id, tenant_id, traceparent: String::new() }.encode_to_vec()
        }
        CommandKind::ExportItem => {
            ferry_messages::ExportItem { job_id, item_id, tenant_id, traceparent: String::new() }.encode_to_vec()
        }
    }
}
