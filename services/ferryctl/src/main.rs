//! `ferryctl`: the operator's command line (database migrations, API keys, watching jobs, dead letters,
//! requeueing a job's failed items, token key rotation, pruning).

mod watch;

use std::time::Duration;

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
    /// Token encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Delete published outbox rows, and OAuth states and picker sessions that expired, older than the retention
    /// (`maintenance.retention_hours`, default 7 days). Prints how many of each.
    Prune {
        /// Overrides `maintenance.retention_hours`.
        #[arg(long)]
        retention_hours: Option<u64>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Re-seal every stored token, upload session and PKCE verifier under `crypto.token_key`. Configure the new
    /// key as `crypto.token_key` (with a new `crypto.token_key_id`) and the old one in
    /// `crypto.previous_token_keys`, run this (safe to repeat or interrupt), then the old key can be removed.
    Rotate,
}

#[derive(Clone, Copy, ValueEnum)]
enum QueueName {
    Import,
    Export,
    /// Store upkeep: blob removals and image descriptions.
    Store,
    /// Library sync runs.
    Sync,
}

impl QueueName {
    fn command(self) -> CommandKind {
        match self {
            QueueName::Import => CommandKind::ImportItem,
            QueueName::Export => CommandKind::ExportItem,
            QueueName::Store => CommandKind::StoreTask,
            QueueName::Sync => CommandKind::SyncRun,
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
    /// The newest jobs of every tenant.
    List {
        /// Only these statuses (comma-separated: pending, in_progress, completed, partial, failed, cancelled).
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Follow a job until it finishes: live progress bars on a terminal, one line per change otherwise; each
    /// failed file is printed as it fails. Exit code: 0 completed, 2 partial, 3 failed, 4 cancelled,
    /// 5 still running at --timeout-secs.
    Watch {
        /// `job_…` or the bare UUID.
        job_id: String,
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        #[arg(long, default_value_t = 86_400)]
        timeout_secs: u64,
    },
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
        /// What the key may do, comma-separated: library:read, library:write, library:sync, files:read,
        /// files:write, cloud-storage:read, cloud-storage:write, or a family as `files:*`. Default: everything.
        #[arg(long)]
        scopes: Option<String>,
    },
    /// A tenant's keys: display prefix, created, revoked (keys themselves are never stored).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a key by its display prefix (`fry_` + 4 characters, as `list` shows) or the whole key. The gateway
    /// refuses it from the next request on.
    Revoke {
        key_prefix: String,
        /// Only a key of this tenant (when a prefix is shared).
        #[arg(long)]
        tenant: Option<String>,
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
        Command::ApiKey { command: ApiKeyCommand::Create { tenant, scopes } } => {
            let tenant = tenant.trim();
            anyhow::ensure!(!tenant.is_empty(), "--tenant must not be empty");
            let scopes = scopes.as_deref().map(ferry_core::Scope::parse_list).transpose().context("--scopes")?;
            if let Some(scopes) = &scopes {
                anyhow::ensure!(!scopes.is_empty(), "--scopes must name at least one scope (leave it out for all)");
            }
            let db = ferry_db::Db::connect(&database_url, 1)?;
            let tenant_row = db.ensure_tenant(tenant).await.context("creating the tenant")?;
            let key = ferry_crypto::generate_api_key();
            let prefix: String = key.chars().take(8).collect();
            db.insert_scoped_api_key(
                TenantId(tenant_row.id),
                &ferry_crypto::hash_api_key(&key),
                &prefix,
                scopes.as_deref(),
            )
            .await
            .context("storing the key")?;
            println!("{key}");
        }
        Command::ApiKey { command: ApiKeyCommand::List { tenant } } => {
            let db = ferry_db::Db::connect(&database_url, 1)?;
            let keys = db.list_api_keys(tenant.trim()).await.context("listing keys")?;
            for key in &keys {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M:%SZ")),
                    None => "active".to_owned(),
                };
                println!("{}\t{}\t{state}", key.key_prefix, key.created_at.format("%Y-%m-%d %H:%M:%SZ"));
            }
            eprintln!("{} key(s) for tenant {:?}", keys.len(), tenant.trim());
        }
        Command::ApiKey { command: ApiKeyCommand::Revoke { key_prefix, tenant } } => {
            let given = key_prefix.trim();
            anyhow::ensure!(
                given.starts_with(ferry_crypto::API_KEY_PREFIX),
                "{given:?} is not a key prefix: keys start with {:?} (see `ferryctl api-key list --tenant T`)",
                ferry_crypto::API_KEY_PREFIX
            );
            let prefix = ferry_crypto::api_key_display_prefix(given);
            // The whole key pins one row exactly; a prefix is what operators usually have.
            let hash = (given.len() > prefix.len()).then(|| ferry_crypto::hash_api_key(given));
            let db = ferry_db::Db::connect(&database_url, 1)?;
            match db.revoke_api_key(&prefix, hash.as_deref(), tenant.as_deref()).await.context("revoking")? {
                ferry_db::api_keys::RevokeOutcome::Revoked(key) => {
                    println!("{}", key.key_prefix);
                    eprintln!("revoked key {} of tenant {:?}", key.key_prefix, key.tenant_name);
                }
                ferry_db::api_keys::RevokeOutcome::NotFound => anyhow::bail!("no active key matches {prefix:?}"),
                ferry_db::api_keys::RevokeOutcome::Ambiguous(keys) => {
                    let tenants: Vec<&str> = keys.iter().map(|k| k.tenant_name.as_str()).collect();
                    anyhow::bail!(
                        "{} active keys start with {prefix:?} (tenants {tenants:?}); pass the whole key or --tenant",
                        keys.len()
                    )
                }
            }
        }
        Command::Jobs { command: JobCommand::List { status, limit } } => {
            let db = ferry_db::Db::connect(&database_url, 1)?;
            watch::list(&db, &status, limit.clamp(1, 1000)).await?;
        }
        Command::Jobs { command: JobCommand::Watch { job_id, interval_ms, timeout_secs } } => {
            let job_id = JobId::parse(job_id.trim()).map_err(|err| anyhow::anyhow!("invalid job id: {err}"))?;
            let db = ferry_db::Db::connect(&database_url, 1)?;
            let interval = Duration::from_millis(interval_ms.clamp(100, 60_000));
            let code = watch::watch(&db, job_id, interval, Duration::from_secs(timeout_secs)).await?;
            std::process::exit(code);
        }
        Command::Keys { command: KeysCommand::Rotate } => {
            let cipher = ferry_credentials::token_cipher(&settings()?)?;
            let db = ferry_db::Db::connect(&database_url, 1)?;
            let report = ferry_credentials::rotation::reseal_all(&db, &cipher).await.context("re-sealing")?;
            println!("{}", report.resealed);
            eprintln!(
                "re-sealed {} value(s) under key {:?}; {} already under it; {} changed meanwhile (re-sealed by their writer)",
                report.resealed,
                cipher.current_key_id(),
                report.current,
                report.changed_meanwhile
            );
        }
        Command::Prune { retention_hours } => {
            let retention = match retention_hours {
                Some(hours) => Duration::from_secs(hours.saturating_mul(3600)),
                None => settings()?.maintenance.retention(),
            };
            let db = ferry_db::Db::connect(&database_url, 1)?;
            let pruned = db.prune(retention).await.context("pruning")?;
            println!(
                "outbox_rows={} oauth_states={} picker_sessions={}",
                pruned.outbox_rows, pruned.oauth_states, pruned.picker_sessions
            );
            eprintln!("pruned rows older than {}h", retention.as_secs() / 3600);
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
                // A sync run's transfers are import items.
                JobKind::Import | JobKind::Sync => CommandKind::ImportItem,
                JobKind::Export => CommandKind::ExportItem,
            };
            let requeued = db
                .requeue_failed_items(job_id, command.routing_key(), |item| encode_item(kind, item))
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
        // A store task belongs to no job: the column shows what it is about.
        CommandKind::StoreTask => ferry_messages::decode_store_task(payload).map(|m| {
            let about = match m.task {
                Some(ferry_messages::v1::store_task::Task::RemoveBlob(remove)) => remove.blob_key,
                Some(ferry_messages::v1::store_task::Task::DescribeVersion(describe)) => describe.version_id,
                None => "-".to_owned(),
            };
            ("-".to_owned(), about)
        }),
        CommandKind::SyncRun => ferry_messages::decode_sync_run(payload).map(|m| (m.job_id, "-".to_owned())),
    };
    decoded.unwrap_or_else(|_| ("undecodable".to_owned(), "-".to_owned()))
}

fn encode_item(kind: JobKind, item: &ferry_db::leases::RequeuedItem) -> Vec<u8> {
    let (job_id, item_id, tenant_id) = (item.job_id.to_string(), item.item_id.to_string(), item.tenant_id.to_string());
    match kind {
        JobKind::Import | JobKind::Sync => {
            ferry_messages::ImportItem { job_id, item_id, tenant_id, traceparent: String::new() }.encode_to_vec()
        }
        JobKind::Export => {
            ferry_messages::ExportItem { job_id, item_id, tenant_id, traceparent: String::new() }.encode_to_vec()
        }
    }
}
