//! The event as it is stored and served, and the validated event before a store
//! has assigned its sequence number.

use std::fmt;

use serde::Serialize;

use crate::{EventType, Payload, Timestamp};

/// An event's public id: `evt_` followed by 32 lowercase hex digits of a
/// UUIDv7, so ids sort in creation order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// The prefix every id starts with.
    pub const PREFIX: &'static str = "evt_";
    /// The longest id any store will ever hold; longer lookups can be refused early.
    pub const MAX_LEN: usize = 64;

    /// Wraps an id string. Ids are opaque to stores; the domain mints new ones.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's idempotency key for an event, and the start of the window in
/// which an event already stored with it stands for this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key as the client gave it.
    pub key: String,
    /// Only an event received at or after this instant holds the key.
    pub since: Timestamp,
}

/// A validated event with its id and timestamp, ready to be appended to a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique, time-ordered id.
    pub id: EventId,
    /// The registered type.
    pub event_type: EventType,
    /// Who published it: 1..=100 chars of `[A-Za-z0-9_.-]`.
    pub source: String,
    /// The learning session it belongs to, if any.
    pub session_id: Option<String>,
    /// The user it concerns, if any.
    pub user_id: Option<String>,
    /// The JSON object payload.
    pub payload: Payload,
    /// Server receive time.
    pub timestamp: Timestamp,
    /// When it happened, by the producer's clock, if the producer said.
    pub occurred_at: Option<Timestamp>,
    /// The client's idempotency key, if it gave one.
    pub idempotency: Option<IdempotencyKey>,
}

impl NewEvent {
    /// The stored event, once a store has assigned `seq`.
    pub fn into_event(self, seq: u64) -> Event {
        Event {
            id: self.id,
            event_type: self.event_type,
            source: self.source,
            session_id: self.session_id,
            user_id: self.user_id,
            payload: self.payload,
            timestamp: self.timestamp,
            occurred_at: self.occurred_at,
            seq,
        }
    }
}

/// A stored event, as served over REST and WebSocket.
///
/// Field order is the wire order: `id, event_type, source, session_id,
/// user_id, payload, timestamp, occurred_at` (when given)`, seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Unique, time-ordered id.
    pub id: EventId,
    /// The registered type.
    pub event_type: EventType,
    /// Who published it.
    pub source: String,
    /// The learning session it belongs to, if any.
    pub session_id: Option<String>,
    /// The user it concerns, if any.
    pub user_id: Option<String>,
    /// The JSON object payload.
    pub payload: Payload,
    /// Server receive time.
    pub timestamp: Timestamp,
    /// When it happened, by the producer's clock, if the producer said
    /// (absent from the JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    /// The store's sequence number: strictly increasing in commit order and
    /// never reused, even after deletes. Subscribers resume from it.
    pub seq: u64,
}
