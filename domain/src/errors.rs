//! One error enum per domain operation. The http adapter maps each variant to
//! a status code in one place.

use ep_ports::StoreError;

use crate::access::Refused;
use crate::field_errors::ValidationErrors;

/// Why an event was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Not allowed, or over the caller's rate limit; nothing was done.
    #[error(transparent)]
    Refused(Refused),
    /// The event breaks a rule of the contract; nothing was queued.
    #[error("invalid event: {0}")]
    Invalid(ValidationErrors),
    /// `MAX_QUEUE_SIZE` events are waiting to be committed; nothing was
    /// queued. The client should retry after a short pause.
    #[error("publish queue is full")]
    QueueFull,
    /// The service is shutting down and accepts nothing new.
    #[error("service is shutting down")]
    ShuttingDown,
    /// The event was queued but the store could not commit it: it is not stored.
    #[error("event not stored: {0}")]
    Store(StoreError),
    /// Its idempotency key was used, within the window, for this other
    /// event of different content; nothing was stored.
    #[error("the idempotency key was already used for a different event ({0})")]
    Conflict(ep_ports::EventId),
}

/// Why a query was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Not allowed, or over the caller's rate limit; nothing was done.
    #[error(transparent)]
    Refused(Refused),
    /// A parameter breaks a rule (length, `limit` range, `since` outside
    /// years 0000-9999).
    #[error("invalid query: {0}")]
    Invalid(ValidationErrors),
    /// The named parameter (`since`) is not an ISO 8601 instant.
    #[error("Invalid ISO 8601 timestamp for '{0}'")]
    BadTimestamp(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Why an event could not be fetched by id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    /// Not allowed, or over the caller's rate limit; nothing was done.
    #[error(transparent)]
    Refused(Refused),
    /// No event has this id (malformed ids included).
    #[error("Event not found")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Why stats could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    /// Not allowed, or over the caller's rate limit; nothing was done.
    #[error(transparent)]
    Refused(Refused),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

/// Why a delete did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    /// Not allowed, or over the caller's rate limit; nothing was done.
    #[error(transparent)]
    Refused(Refused),
    /// A parameter breaks a rule (`before` outside years 0000-9999).
    #[error("invalid delete: {0}")]
    Invalid(ValidationErrors),
    /// The named parameter (`before`) is not an ISO 8601 instant.
    #[error("Invalid ISO 8601 timestamp for '{0}'")]
    BadTimestamp(&'static str),
    /// The service began to stop while the delete ran: it ended at a step,
    /// after `deleted` events (gone for good); asking again finishes it.
    #[error("The service is shutting down: the delete stopped after {deleted} events; send it again to finish")]
    Interrupted {
        /// Events deleted before it stopped.
        deleted: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<crate::deleter::Unfinished> for DeleteError {
    fn from(e: crate::deleter::Unfinished) -> Self {
        match e {
            crate::deleter::Unfinished::Store(e) => DeleteError::Store(e),
            crate::deleter::Unfinished::Stopped { deleted } => DeleteError::Interrupted { deleted },
        }
    }
}

impl From<Refused> for PublishError {
    fn from(e: Refused) -> Self {
        PublishError::Refused(e)
    }
}

impl From<Refused> for QueryError {
    fn from(e: Refused) -> Self {
        QueryError::Refused(e)
    }
}

impl From<Refused> for GetError {
    fn from(e: Refused) -> Self {
        GetError::Refused(e)
    }
}

impl From<Refused> for StatsError {
    fn from(e: Refused) -> Self {
        StatsError::Refused(e)
    }
}

impl From<Refused> for DeleteError {
    fn from(e: Refused) -> Self {
        DeleteError::Refused(e)
    }
}
