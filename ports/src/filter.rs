//! Which events a subscriber wants: the live filter, also used to replay
//! stored events to a subscriber that resumes.

use crate::{Event, EventType, Scope};

/// Conditions on an event; all present ones must hold (AND).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    /// `None`: any type. `Some(types)`: one of these (an empty list matches
    /// nothing: the subscriber named only unregistered types).
    pub event_types: Option<Vec<EventType>>,
    /// Only events of this session.
    pub session_id: Option<String>,
    /// Only events of this user.
    pub user_id: Option<String>,
    /// The subscriber's scope: only events inside it, whatever it asked.
    pub scope: Scope,
}

impl EventFilter {
    /// Whether `event` meets every condition.
    pub fn matches(&self, event: &Event) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| types.contains(&event.event_type))
            && self
                .session_id
                .as_ref()
                .is_none_or(|s| event.session_id.as_ref() == Some(s))
            && self
                .user_id
                .as_ref()
                .is_none_or(|u| event.user_id.as_ref() == Some(u))
            && self.scope.allows(event)
    }

    /// True when no event can match.
    pub fn matches_nothing(&self) -> bool {
        self.event_types.as_ref().is_some_and(Vec::is_empty) || self.scope.allows_nothing()
    }
}
