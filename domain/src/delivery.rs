//! What the hub hands its subscriptions: each event with its frame, encoded
//! once and shared by every subscriber it matches.

use std::sync::Arc;

use ep_ports::Event;

use crate::ring::Ring;

/// One event as the hub hands it out: the event and its frame, encoded
/// once and shared by every subscriber it matches.
pub(crate) struct Dispatched<F> {
    pub event: Arc<Event>,
    pub frame: F,
}

/// What a ring of the hub holds: one pointer per event.
pub(crate) type Item<F> = Arc<Dispatched<F>>;

/// The ring the subscriptions of one filter share.
pub(crate) type Feed<F> = Arc<Ring<Item<F>>>;
