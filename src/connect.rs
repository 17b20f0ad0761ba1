//! Opening the dependencies configuration names: the event store and the
//! broadcaster. A dependency that is down at start-up (a PostgreSQL, NATS
//! or Redis server still starting) is retried with back-off, logged, for
//! `STARTUP_TIMEOUT_SECONDS`; then start-up fails naming it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ep_broadcast_local::LocalBroadcaster;
use ep_broadcast_nats::{NatsBroadcaster, NatsOptions};
use ep_broadcast_redis::{RedisBroadcaster, RedisOptions};
use ep_ports::{Broadcaster, EventStore, JobState};
use ep_store_memory::MemoryStore;
use ep_store_postgres::{PostgresOptions, PostgresStore};
use ep_store_sqlite::{Durability, SqliteStore};
use tokio::time::Instant;

use crate::config::{redact_url, BroadcasterKind, Config, StoreKind, Synchronous};
use crate::start_error::StartError;

/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, fails for good (`transient` says
/// no), or `within` has passed.
async fn retrying<T, E, F, Fut>(
    dependency: &'static str,
    target: &str,
    within: Duration,
    transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, StartError>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    let mut pause = FIRST_PAUSE;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(value) => {
                if attempts > 1 {
                    tracing::info!(dependency, target, attempts, "reached at last");
                }
                return Ok(value);
            }
            Err(e) if transient(&e) && Instant::now() + pause < deadline => {
                tracing::warn!(dependency, target, error = %e, retry_in_ms = pause.as_millis() as u64, "not reachable yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => {
                return Err(StartError::Unreachable {
                    dependency,
                    target: target.to_owned(),
                    reason: e.to_string(),
                    attempts,
                })
            }
        }
    }
}

/// The configured store: its events, and the background jobs' leases and
/// cursors kept beside them.
pub(crate) async fn open_store(
    config: &Config,
) -> Result<(Arc<dyn EventStore>, Arc<dyn JobState>), StartError> {
    Ok(match config.event_store {
        StoreKind::Sqlite => {
            let durability = match config.database_synchronous {
                Synchronous::Normal => Durability::Normal,
                Synchronous::Full => Durability::Full,
            };
            let store = SqliteStore::open(&config.database_path, durability).await?;
            tracing::info!(path = %config.database_path.display(), ?durability, "SQLite event store open");
            both(store)
        }
        StoreKind::Memory => {
            tracing::warn!("in-memory event store: nothing survives a restart");
            both(MemoryStore::new())
        }
        StoreKind::Postgres => {
            let url = config.database_url.clone().unwrap_or_default();
            let options = PostgresOptions {
                max_connections: config.database_max_connections,
                ..PostgresOptions::default()
            };
            let store = retrying(
                "PostgreSQL",
                &redact_url(&url),
                config.startup_timeout,
                ep_store_postgres::OpenError::is_transient,
                || PostgresStore::open(&url, options.clone()),
            )
            .await?;
            both(store)
        }
    })
}

/// One store as both ports.
fn both<S: EventStore + JobState>(store: S) -> (Arc<dyn EventStore>, Arc<dyn JobState>) {
    let store = Arc::new(store);
    (store.clone(), store)
}

/// The configured broadcaster.
pub(crate) async fn open_broadcaster(config: &Config) -> Result<Arc<dyn Broadcaster>, StartError> {
    Ok(match config.broadcaster {
        BroadcasterKind::Local => Arc::new(LocalBroadcaster::new()),
        BroadcasterKind::Nats => {
            let options = NatsOptions {
                subject_prefix: config.bus_prefix.clone(),
                ..NatsOptions::default()
            };
            let nats = retrying(
                "NATS",
                &redact_url(&config.nats_url),
                config.startup_timeout,
                |_| true,
                || NatsBroadcaster::connect(&config.nats_url, options.clone()),
            )
            .await?;
            tracing::info!(url = %redact_url(&config.nats_url), prefix = %config.bus_prefix, "NATS broadcaster connected");
            Arc::new(nats)
        }
        BroadcasterKind::Redis => {
            let options = RedisOptions {
                channel_prefix: config.bus_prefix.clone(),
                ..RedisOptions::default()
            };
            let redis = retrying(
                "Redis",
                &redact_url(&config.redis_url),
                config.startup_timeout,
                |_| true,
                || RedisBroadcaster::connect(&config.redis_url, options.clone()),
            )
            .await?;
            tracing::info!(url = %redact_url(&config.redis_url), prefix = %config.bus_prefix, "Redis broadcaster connected");
            Arc::new(redis)
        }
    })
}
