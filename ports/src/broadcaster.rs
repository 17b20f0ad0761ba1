//! The `Broadcaster` port: carries committed events to every part of the
//! system that delivers them live: in one process, or to every node sharing
//! the store.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures_core::Stream;

use crate::Event;

/// Events committed together, in sequence order. Shared, never copied.
pub type EventBatch = Arc<[Arc<Event>]>;

/// What a feed yields.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// Committed events, in seq order within the batch. Batches committed
    /// by several nodes may arrive in any order relative to each other, and
    /// the same events may arrive more than once: the domain puts them in
    /// seq order and drops duplicates.
    Batch(EventBatch),
    /// The feed may have lost batches since the last item (it reconnected
    /// to its transport, or fell behind and dropped some): whatever was
    /// committed meanwhile must be read from the store.
    Gap,
}

/// The items of one feed, from when it was opened.
pub type EventFeed = Pin<Box<dyn Stream<Item = FeedItem> + Send>>;

/// Why broadcasting failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    /// The broadcaster is shut down or its transport is unreachable.
    #[error("broadcaster unavailable: {0}")]
    Unavailable(String),
}

/// Carries committed batches to every feed, in this process or on every
/// node.
///
/// Delivery MAY be at most once (core NATS, Redis pub/sub): a feed that
/// may have missed batches MUST say so with [`FeedItem::Gap`] as soon as it
/// knows (after a reconnect, after dropping what it could not hold), so
/// that the domain reads them from the store. Batches published by one
/// broadcaster MUST reach each feed in the order they were published.
///
/// Implementations MUST pass the broadcaster conformance suite (crate
/// `ep-conformance`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Broadcaster: Send + Sync + 'static {
    /// Hands a committed batch on to every feed. MAY wait while an
    /// in-process feed is full (that paces the writer), but MUST NOT wait on
    /// any network client, and SHOULD return once the batch is handed to the
    /// transport, not once it is delivered.
    ///
    /// # Errors
    /// `Unavailable` when the batch could not be handed on; the events stay
    /// committed, and other nodes find them in the store.
    async fn publish(&self, batch: EventBatch) -> Result<(), BroadcastError>;

    /// Opens a feed of every batch published from now on (by any node).
    /// Opening may be I/O (a subscription on the transport).
    ///
    /// # Errors
    /// `Unavailable` when no feed can be opened.
    async fn subscribe(&self) -> Result<EventFeed, BroadcastError>;

    /// Checks that the transport is connected: readiness reports the
    /// broadcaster down while it is not.
    ///
    /// # Errors
    /// `Unavailable` with the reason.
    async fn ping(&self) -> Result<(), BroadcastError>;
}
