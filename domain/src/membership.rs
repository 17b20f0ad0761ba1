//! What a subscription asks of the hub it belongs to: to leave it, to
//! change its filter, and what replaying needs (the store, the encoder, the
//! node's tag). A trait of its own, so that the hub and its subscriptions
//! do not depend on each other.

use std::sync::Arc;

use ep_ports::{Event, EventFilter, EventStore};

use crate::delivery::Item;
use crate::ring::Reader;

/// A subscription's move to the ring of its new filter.
pub(crate) struct Moved<F> {
    /// Its place in the ring of the new filter, from the update on.
    pub reader: Reader<Item<F>>,
    /// The position in the old ring where the update took effect: what
    /// the old ring holds before it was matched under the old filter and
    /// dispatched before the update.
    pub cut: u64,
}

/// The hub as one of its subscriptions sees it.
pub(crate) trait Membership<F>: Send + Sync {
    /// Removes subscription `id`; true if it was still registered.
    fn remove(&self, id: u64) -> bool;

    /// Moves subscription `id` to the ring of `filter`; `None` if it is no
    /// longer registered.
    fn update_filter(&self, id: u64, filter: EventFilter) -> Option<Moved<F>>;

    /// This node's random tag (public subscriber ids are unique across nodes).
    fn node(&self) -> u32;

    /// The frame of an event (for events replayed from the store).
    fn encode(&self, event: &Event) -> F;

    /// The store replays read from.
    fn store(&self) -> &Arc<dyn EventStore>;
}
