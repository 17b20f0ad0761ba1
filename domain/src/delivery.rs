//! What the hub hands a subscription: each event with its frame (encoded
//! once, shared by every subscriber it matches), and the flags the
//! dispatcher and a subscription share.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ep_ports::Event;

/// One event as the hub hands it out: the event and its frame, encoded
/// once and shared by every subscriber it matches.
pub(crate) struct Dispatched<F> {
    pub event: Arc<Event>,
    pub frame: F,
}

/// An event on its way to one subscriber: one pointer and a number, so a
/// subscriber's queue (whose first block of 32 slots every subscriber
/// allocates, busy or idle) is 16 bytes a slot, not 48.
pub(crate) struct Delivery<F> {
    pub item: Arc<Dispatched<F>>,
    /// The filter generation the event was matched against; the
    /// subscription re-checks only deliveries matched under an older filter.
    pub generation: u64,
}

/// Flags the dispatcher and a subscription share.
#[derive(Default)]
pub(crate) struct SubState {
    /// The subscription is still replaying stored events.
    pub replaying: AtomicBool,
    /// Its queue overflowed while replaying: live events were dropped.
    pub lagged: AtomicBool,
}
