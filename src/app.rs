//! Starting and stopping the service: the adapters chosen by configuration,
//! the domain service, the HTTP server, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ep_auth_apikey::ApiKeyAuthenticator;
use ep_broadcast_local::LocalBroadcaster;
use ep_domain::EventService;
use ep_http::{AppState, HttpConfig};
use ep_ports::{Authenticator, Broadcaster, EventStore};
use ep_store_memory::MemoryStore;
use ep_store_sqlite::{Durability, SqliteStore};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, StoreKind};

/// How long shutdown waits for open HTTP requests before it stops waiting.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] ep_store_sqlite::OpenError),
    /// The API key configuration is unusable.
    #[error(transparent)]
    Auth(#[from] ep_auth_apikey::EmptyKey),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A started service.
pub struct Running {
    addr: SocketAddr,
    service: Arc<EventService>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Running {
    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets open requests finish (at most
    /// [`DRAIN_TIMEOUT`]), then commits every event already accepted.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut server = self.server;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("open connections did not finish in time; closing them");
            server.abort();
        }
        self.service.shutdown().await;
        tracing::info!("every accepted event is committed; stopped");
    }
}

async fn open_store(config: &Config) -> Result<Arc<dyn EventStore>, StartError> {
    Ok(match config.event_store {
        StoreKind::Sqlite => {
            let durability = if config.database_full_sync {
                Durability::Full
            } else {
                Durability::Normal
            };
            let store = SqliteStore::open(&config.database_path, durability).await?;
            tracing::info!(path = %config.database_path.display(), ?durability, "SQLite event store open");
            Arc::new(store)
        }
        StoreKind::Memory => {
            tracing::warn!("in-memory event store: nothing survives a restart");
            Arc::new(MemoryStore::new())
        }
    })
}

/// Opens the configured store, starts the domain and serves HTTP on the
/// configured address.
///
/// # Errors
/// `StartError` when the store cannot be opened or the address bound.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let store = open_store(&config).await?;
    start_with_store(config, store).await
}

/// Like [`start`], on a store the caller built (another adapter, or one
/// with faults injected for tests). `EVENT_STORE` and `DATABASE_PATH` are
/// ignored.
///
/// # Errors
/// `StartError` when the address cannot be bound.
pub async fn start_with_store(
    config: Config,
    store: Arc<dyn EventStore>,
) -> Result<Running, StartError> {
    let broadcaster: Arc<dyn Broadcaster> = Arc::new(LocalBroadcaster::new());
    let auth: Arc<dyn Authenticator> = if config.require_auth {
        Arc::new(ApiKeyAuthenticator::with_key(&config.api_key)?)
    } else {
        Arc::new(ApiKeyAuthenticator::open())
    };
    let service = Arc::new(EventService::start(store, broadcaster, config.limits()));
    let state = AppState {
        service: Arc::clone(&service),
        auth,
        config: Arc::new(HttpConfig {
            max_body_bytes: config.max_body_bytes,
            version: env!("CARGO_PKG_VERSION"),
        }),
    };
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        warp::serve(ep_http::routes(state))
            .incoming(listener)
            .graceful(async {
                let _ = stopped.await;
            })
            .run(),
    );
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "event-pipeline listening");
    Ok(Running {
        addr,
        service,
        stop,
        server,
    })
}
