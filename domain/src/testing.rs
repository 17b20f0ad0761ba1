//! Helpers for the domain's unit tests.

use std::sync::Arc;

use ep_ports::{Event, EventBatch, EventId, EventType, Payload, Timestamp};

/// A `timer_tick` with this seq (stamped at `seq` µs), no session or user.
pub(crate) fn event(seq: u64) -> Event {
    Event {
        occurred_at: None,
        id: EventId::new(format!("evt_{seq:032x}")),
        event_type: EventType::TIMER_TICK,
        source: "t".into(),
        session_id: None,
        user_id: None,
        payload: Payload::empty(),
        timestamp: Timestamp::from_micros(seq as i64),
        seq,
    }
}

/// A batch of such events with these seqs.
pub(crate) fn batch(seqs: impl IntoIterator<Item = u64>) -> EventBatch {
    seqs.into_iter().map(|s| Arc::new(event(s))).collect()
}
