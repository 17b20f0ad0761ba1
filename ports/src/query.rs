//! A validated query over stored events.

use crate::{EventType, Scope, Timestamp};

/// Which events to list. All present conditions must hold (AND). Results are
/// newest first (highest `seq` first) and at most `limit` long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events of this type.
    pub event_type: Option<EventType>,
    /// Only events of this session.
    pub session_id: Option<String>,
    /// Only events of this user.
    pub user_id: Option<String>,
    /// Only events strictly after this instant.
    pub since: Option<Timestamp>,
    /// Only events that happened (`occurred_at`) at or after this instant.
    pub occurred_since: Option<Timestamp>,
    /// Only events that happened (`occurred_at`) strictly before this instant.
    pub occurred_before: Option<Timestamp>,
    /// At most this many events (the domain keeps it within 1..=1000).
    pub limit: usize,
    /// Only events inside this scope (the caller's).
    pub scope: Scope,
}

impl EventQuery {
    /// A query for the newest `limit` events of any kind.
    pub fn latest(limit: usize) -> Self {
        Self {
            occurred_before: None,
            occurred_since: None,
            event_type: None,
            session_id: None,
            user_id: None,
            since: None,
            limit,
            scope: Scope::unrestricted(),
        }
    }
}
