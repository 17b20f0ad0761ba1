//! What an all-or-none append did with its batch.

use crate::Event;

/// The outcome of [`EventStore::append_unless_held`](crate::EventStore::append_unless_held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Every event of the batch was stored: the stored events, in batch
    /// order, with their sequence numbers.
    Stored(Vec<Event>),
    /// Nothing was stored: each entry is the position in the batch of an
    /// event whose idempotency key was held, and the stored event holding
    /// it. Every held key of the batch is reported, in batch order.
    Held(Vec<(usize, Event)>),
}
