//! `ferryctl`: the operator's command line (database migrations, API keys).

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_core::TenantId;

#[derive(Parser)]
#[command(name = "ferryctl", version, about = "Operate a Ferry deployment")]
struct Cli {
    /// Postgres URL; defaults to the configured `database.url` (FERRY__DATABASE__URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
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
    let database_url = match cli.database_url {
        Some(url) => url,
        None => ferry_config::Settings::load().context("loading settings")?.database.url,
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
    }
    Ok(())
}
