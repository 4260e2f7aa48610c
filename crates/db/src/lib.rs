//! Ferry's Postgres layer: schema, embedded migrations and the repositories every service uses.
//! This is the only crate that knows diesel; callers see plain structs and [`DbError`].

pub mod api_keys;
pub mod blobs;
mod clock;
pub mod connections;
pub mod files;
pub mod items;
pub mod job_control;
pub mod jobs;
pub mod leases;
pub mod libraries;
pub mod listen;
pub mod maintenance;
pub mod oauth_states;
pub mod operator;
pub mod outbox;
pub mod pacer;
pub mod picker;
pub mod resealing;
mod schema;
pub mod store;
pub mod sync;
pub mod tenant;
pub mod tenants;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod versions;
pub(crate) mod words;

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// What went wrong talking to Postgres. `Unavailable` means the database could not be reached at all
/// (the API answers 503 and workers retry later); the rest are bugs or bad data.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("query failed: {0}")]
    Query(#[source] diesel::result::Error),
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    /// A fenced write found the item no longer held by the claim that made it (its lease expired and another
    /// worker took it over, or it was settled meanwhile): nothing was changed.
    #[error("item {item_id} is no longer held by this claim; the write was refused")]
    LeaseLost { item_id: uuid::Uuid },
}

impl DbError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }

    /// True when trying again later may succeed. Only a missing or unreadable row, a refused fence and a failed
    /// migration are certain to fail again; anything else the database answered (a lost connection, a server
    /// shutting down, a serialization failure) may be of the moment.
    pub fn is_transient(&self) -> bool {
        use diesel::result::Error;
        !matches!(
            self,
            DbError::Corrupt(_)
                | DbError::LeaseLost { .. }
                | DbError::Migration(_)
                | DbError::Query(Error::NotFound | Error::DeserializationError(_))
        )
    }
}

impl From<diesel::result::Error> for DbError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                DbError::Unavailable(info.message().to_owned())
            }
            // A row that does not read (an unknown state word, say): name the field and the cause.
            Error::DeserializationError(cause) => {
                let mut message = cause.to_string();
                let mut source = cause.source();
                while let Some(inner) = source {
                    message.push_str(": ");
                    message.push_str(&inner.to_string());
                    source = inner.source();
                }
                DbError::Corrupt(message)
            }
            other => DbError::Query(other),
        }
    }
}

impl From<ferry_core::UnknownValue> for DbError {
    fn from(err: ferry_core::UnknownValue) -> Self {
        DbError::Corrupt(err.to_string())
    }
}

pub use tenant::{ApiDb, TenantDb};

pub type PooledConnection = Object<AsyncPgConnection>;

/// A pool of async Postgres connections. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
    url: String,
}

impl Db {
    /// Builds the pool; connections are opened lazily, so this succeeds while Postgres is down.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, DbError> {
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|err| DbError::Unavailable(format!("cannot build the connection pool: {err}")))?;
        Ok(Db { pool, url: url.to_owned() })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn conn(&self) -> Result<PooledConnection, DbError> {
        self.pool.get().await.map_err(|err| DbError::Unavailable(err.to_string()))
    }

    /// True when a connection can be taken and answers a trivial query (for `/readyz`).
    pub async fn is_ready(&self) -> bool {
        let Ok(mut conn) = self.conn().await else { return false };
        diesel::sql_query("SELECT 1").execute(&mut conn).await.is_ok()
    }
}

/// Applies pending migrations. Runs on a blocking thread because diesel's migration harness is synchronous.
pub async fn run_migrations(url: &str) -> Result<Vec<String>, DbError> {
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|err| connection_error("cannot connect to run migrations", err))?;
        let applied = conn.run_pending_migrations(MIGRATIONS).map_err(|err| DbError::Migration(err.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
    .map_err(|err| DbError::Migration(format!("migration task failed: {err}")))?
}

/// Applies, in order, the migrations whose version sorts before `version` (`2026-11-24-001400` or its digits):
/// tests use it to put rows into an older schema and then prove what a later migration does with them.
#[cfg(feature = "test-support")]
pub async fn run_migrations_before(url: &str, version: &str) -> Result<(), DbError> {
    use diesel::Connection;
    use diesel::migration::MigrationSource;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    let digits = |text: &str| text.chars().filter(char::is_ascii_digit).collect::<String>();
    let before = digits(version);
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|err| connection_error("cannot connect to run migrations", err))?;
        diesel::migration::MigrationConnection::setup(&mut conn).map_err(|err| DbError::Migration(err.to_string()))?;
        let mut migrations = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
            .map_err(|err| DbError::Migration(err.to_string()))?;
        migrations.sort_by_key(|m| digits(&m.name().version().to_string()));
        for migration in migrations.iter().filter(|m| digits(&m.name().version().to_string()) < before) {
            conn.run_migration(migration).map_err(|err| DbError::Migration(err.to_string()))?;
        }
        Ok(())
    })
    .await
    .map_err(|err| DbError::Migration(format!("migration task failed: {err}")))?
}

/// Creates the database named in `url` when it does not exist yet (connecting to the server's `postgres`
/// database to do so). Returns true when it was created.
pub async fn create_database_if_missing(url: &str) -> Result<bool, DbError> {
    use diesel::sql_types::Text;
    use diesel_async::AsyncConnection;

    let (admin_url, name) = admin_url_and_database(url)?;
    let mut conn = AsyncPgConnection::establish(&admin_url)
        .await
        .map_err(|err| connection_error("cannot connect to the postgres database", err))?;

    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<Text, _>(&name)
        .get_result(&mut conn)
        .await?;
    if found.exists {
        return Ok(false);
    }
    // Identifiers cannot be bound as parameters; the name was validated to be a plain identifier.
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await?;
    Ok(true)
}

/// Drops a database (tests clean up after themselves with this).
pub async fn drop_database(url: &str) -> Result<(), DbError> {
    use diesel_async::AsyncConnection;

    let (admin_url, name) = admin_url_and_database(url)?;
    let mut conn = AsyncPgConnection::establish(&admin_url)
        .await
        .map_err(|err| connection_error("cannot connect to the postgres database", err))?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut conn).await?;
    Ok(())
}

fn admin_url_and_database(url: &str) -> Result<(String, String), DbError> {
    let mut parsed =
        url::Url::parse(url).map_err(|err| DbError::Unavailable(format!("invalid database url: {err}")))?;
    let name = parsed.path().trim_start_matches('/').to_owned();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(DbError::Unavailable(format!(
            "database url must name a database made of letters, digits, '_' or '-' (got `{name}`)"
        )));
    }
    parsed.set_path("/postgres");
    Ok((parsed.to_string(), name))
}

fn connection_error(context: &str, err: ConnectionError) -> DbError {
    DbError::Unavailable(format!("{context}: {err}"))
}
