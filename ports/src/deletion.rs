//! Which events a delete removes.

use crate::Timestamp;

/// The events one delete selects: those with `seq <= through_seq` and, when
/// `before` is given, a timestamp strictly before it.
///
/// The seq bound makes a delete finite: the domain takes it from
/// [`EventStore::last_seq`](crate::EventStore::last_seq) when the delete
/// starts, so events published while it runs (in steps) are never chased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    /// Only events stamped strictly before this instant (`None`: any).
    pub before: Option<Timestamp>,
    /// Only events with a seq at most this.
    pub through_seq: u64,
}

impl Deletion {
    /// Whether `seq` and `timestamp` are selected.
    #[must_use]
    pub fn selects(&self, seq: u64, timestamp: Timestamp) -> bool {
        seq <= self.through_seq && self.before.is_none_or(|b| timestamp < b)
    }
}
