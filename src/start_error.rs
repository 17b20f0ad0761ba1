//! Why the service could not start, and the exit status each reason gets:
//! what start-up (app) and the connections to dependencies (connect) share.

use std::net::SocketAddr;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The SQLite store could not be opened.
    #[error(transparent)]
    Store(#[from] ep_store_sqlite::OpenError),
    /// A dependency (PostgreSQL, NATS, Redis) could not be reached within
    /// `STARTUP_TIMEOUT_SECONDS`, or refused for good.
    #[error("cannot start: {dependency} at {target} is unavailable after {attempts} attempt(s): {reason}")]
    Unreachable {
        /// Which.
        dependency: &'static str,
        /// Where (no credentials).
        target: String,
        /// The last error.
        reason: String,
        /// How many times it was tried.
        attempts: u32,
    },
    /// The store is one process's own but the broadcaster spans nodes.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// The broadcaster gave no feed for the fan-out.
    #[error(transparent)]
    Broadcast(#[from] ep_ports::BroadcastError),
    /// The key or token configuration is unusable.
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    /// `EVENT_TYPES_FILE` is unusable.
    #[error(transparent)]
    EventTypes(#[from] crate::event_types::EventTypesError),
    /// `RETENTION` is unusable.
    #[error("RETENTION: {0}")]
    Retention(#[from] ep_domain::BadRetention),
    /// The xAPI connector could not be built.
    #[error("cannot start the xAPI connector: {0}")]
    Export(String),
    /// The publish path's thread, or the subscribers' threads
    /// (`WS_DELIVERY_THREADS`), could not be started.
    #[error("cannot start the publish path's or the subscribers' threads: {0}")]
    Thread(std::io::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl StartError {
    /// The exit status for this failure: 2, as for a bad variable, whatever
    /// stopped start-up (a dependency out of reach, a configuration that
    /// cannot work, a database that cannot be opened, a port in use), so a
    /// supervisor tells "could not start" (2) from a failure while serving.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Unreachable { .. }
            | StartError::Inconsistent(_)
            | StartError::Access(_)
            | StartError::EventTypes(_)
            | StartError::Retention(_)
            | StartError::Export(_)
            | StartError::Store(_)
            | StartError::Thread(_)
            | StartError::Broadcast(_)
            | StartError::Bind { .. } => 2,
        }
    }
}
