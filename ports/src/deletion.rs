//! Which events a delete removes.

use crate::{Event, EventType, Timestamp};

/// The events one delete selects: those with `seq <= through_seq` and every
/// condition given (`None` selects any): a timestamp strictly before
/// `before`, the type `event_type`, the student `user_id`.
///
/// The seq bound makes a delete finite: the domain takes it from
/// [`EventStore::last_seq`](crate::EventStore::last_seq) when the delete
/// starts, so events published while it runs (in steps) are never chased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// Only events stamped strictly before this instant.
    pub before: Option<Timestamp>,
    /// Only events with a seq at most this.
    pub through_seq: u64,
    /// Only events of this type (retention, which keeps each type for its
    /// own time).
    pub event_type: Option<EventType>,
    /// Only this student's events (erasure).
    pub user_id: Option<String>,
}

impl Deletion {
    /// Every event up to `through_seq`, to be narrowed with the builders.
    #[must_use]
    pub fn through(through_seq: u64) -> Self {
        Self {
            before: None,
            through_seq,
            event_type: None,
            user_id: None,
        }
    }

    /// Narrowed to events stamped strictly before `before`.
    #[must_use]
    pub fn before(mut self, before: Timestamp) -> Self {
        self.before = Some(before);
        self
    }

    /// Narrowed to events of `event_type`.
    #[must_use]
    pub fn of_type(mut self, event_type: EventType) -> Self {
        self.event_type = Some(event_type);
        self
    }

    /// Narrowed to the events of `user_id`.
    #[must_use]
    pub fn of_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Whether `event` is selected.
    #[must_use]
    pub fn selects(&self, event: &Event) -> bool {
        event.seq <= self.through_seq
            && self.before.is_none_or(|b| event.timestamp < b)
            && self.event_type.is_none_or(|t| event.event_type == t)
            && self
                .user_id
                .as_deref()
                .is_none_or(|u| event.user_id.as_deref() == Some(u))
    }
}
