//! The `Broadcaster` port: hands committed events to every part of the system
//! (in one process or on every node) that delivers them live.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures_core::Stream;

use crate::Event;

/// Events committed together, in sequence order. Shared, never copied.
pub type EventBatch = Arc<[Arc<Event>]>;

/// A stream of committed batches, in commit order.
pub type EventFeed = Pin<Box<dyn Stream<Item = EventBatch> + Send>>;

/// Why broadcasting failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    /// The broadcaster is shut down or its transport is unreachable.
    #[error("broadcaster unavailable: {0}")]
    Unavailable(String),
}

/// Delivers committed events to every feed.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Broadcaster: Send + Sync + 'static {
    /// Hands a committed batch to every feed. Feeds MUST see batches in the
    /// order they were published. MAY wait while a feed is full (that paces
    /// the writer), but MUST NOT wait on any network client.
    ///
    /// # Errors
    /// `Unavailable` when the batch could not be handed on.
    async fn publish(&self, batch: EventBatch) -> Result<(), BroadcastError>;

    /// A new feed of every batch published from now on.
    ///
    /// # Errors
    /// `Unavailable` when no feed can be opened.
    fn subscribe(&self) -> Result<EventFeed, BroadcastError>;
}
