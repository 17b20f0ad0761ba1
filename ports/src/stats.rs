//! Aggregate figures over the stored events.

use serde::Serialize;

use crate::{EventType, Timestamp};

/// What a store reports about its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Every stored event.
    pub total_events: u64,
    /// Events whose timestamp lies after the `since` instant the caller gave.
    pub events_since: u64,
    /// One row per stored type, highest count first (ties by type name).
    pub by_type: Vec<TypeStats>,
}

/// The figures of one event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeStats {
    /// The type.
    pub event_type: EventType,
    /// How many events of that type are stored.
    pub count: u64,
    /// The timestamp of the newest stored event of that type: the one with
    /// the highest seq (the domain stamps events in seq order).
    pub last_seen: Timestamp,
}

impl TypeStats {
    /// Sorts rows the way `Stats::by_type` promises: count descending, then type name.
    pub fn sort(rows: &mut [TypeStats]) {
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.event_type.as_str().cmp(b.event_type.as_str()))
        });
    }
}
