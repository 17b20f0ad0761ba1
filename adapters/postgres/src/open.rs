//! Connecting: the pool, its limits, and the schema at start-up.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::schema::{migrate, MigrationError};
use crate::store::PostgresStore;

/// How the store connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Most connections to PostgreSQL this node holds.
    pub max_connections: usize,
    /// How long connecting, or waiting for a free connection, may take.
    pub timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// `DATABASE_URL` is not a PostgreSQL connection string.
    #[error("DATABASE_URL is not a PostgreSQL URL ({0})")]
    BadUrl(String),
    /// PostgreSQL could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect {
        /// Host and database, without credentials.
        target: String,
        /// Why.
        reason: String,
    },
    /// The schema is from a newer build, or a migration failed.
    #[error(transparent)]
    Schema(#[from] MigrationError),
}

impl OpenError {
    /// Whether trying again later may succeed (the server is down or still
    /// starting), as opposed to a configuration that will never work.
    pub fn is_transient(&self) -> bool {
        matches!(self, OpenError::Connect { .. })
    }
}

/// Host, port and database of a configuration, for messages: never the
/// password.
fn target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}:{port}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default)")
    )
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:5432/db`,
    /// libpq parameters such as `options=-c search_path=...` allowed) and
    /// brings its schema up to date.
    ///
    /// # Errors
    /// `BadUrl`; `Connect` (transient: retry); `Schema` for a database from
    /// a newer build or a failed migration.
    pub async fn open(url: &str, options: PostgresOptions) -> Result<Self, OpenError> {
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| OpenError::BadUrl(e.to_string()))?;
        if config.get_application_name().is_none() {
            config.application_name("event-pipeline");
        }
        config.connect_timeout(options.timeout);
        let target = target(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| OpenError::BadUrl(e.to_string()))?;
        let mut client = pool.get().await.map_err(|e| OpenError::Connect {
            target: target.clone(),
            reason: match &e {
                deadpool_postgres::PoolError::Backend(e) => crate::error::describe(e),
                other => other.to_string(),
            },
        })?;
        let version = migrate(&mut client).await?;
        drop(client);
        tracing::info!(%target, schema = version, "PostgreSQL event store open");
        Ok(PostgresStore::new(pool, target))
    }
}
