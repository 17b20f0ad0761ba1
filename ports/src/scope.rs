//! A principal's scope: which event types, sources, sessions and users it
//! may publish or see. Absent lists restrict nothing; an empty list allows
//! nothing.

use crate::Event;

/// Restrictions on the events a principal may publish or see. Each present
/// list must contain the event's value (AND across lists); an event without
/// a session (or user) is outside a scope that lists sessions (or users).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    /// Only these event types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    /// Only events from these sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    /// Only events of these sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_ids: Option<Vec<String>>,
    /// Only events of these users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<Vec<String>>,
}

/// Which list of a scope a value was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeField {
    /// `event_types`.
    EventType,
    /// `sources`.
    Source,
    /// `session_ids`.
    SessionId,
    /// `user_ids`.
    UserId,
}

impl ScopeField {
    /// The field's name on the wire (`event_type`, `source`, `session_id`, `user_id`).
    pub fn name(self) -> &'static str {
        match self {
            ScopeField::EventType => "event_type",
            ScopeField::Source => "source",
            ScopeField::SessionId => "session_id",
            ScopeField::UserId => "user_id",
        }
    }
}

/// Whether `list` (absent: anything) allows `value` (absent: only an absent list).
fn admits(list: Option<&Vec<String>>, value: Option<&str>) -> bool {
    match (list, value) {
        (None, _) => true,
        (Some(list), Some(value)) => list.iter().any(|v| v == value),
        (Some(_), None) => false,
    }
}

impl Scope {
    /// A scope that restricts nothing.
    pub fn unrestricted() -> Self {
        Self::default()
    }

    /// True when no list is present.
    pub fn is_unrestricted(&self) -> bool {
        self.lists().iter().all(|(_, list)| list.is_none())
    }

    /// True when some list is present and empty: nothing is allowed.
    pub fn allows_nothing(&self) -> bool {
        self.lists()
            .iter()
            .any(|(_, list)| list.is_some_and(Vec::is_empty))
    }

    /// Each list with the field it restricts.
    pub fn lists(&self) -> [(ScopeField, Option<&Vec<String>>); 4] {
        [
            (ScopeField::EventType, self.event_types.as_ref()),
            (ScopeField::Source, self.sources.as_ref()),
            (ScopeField::SessionId, self.session_ids.as_ref()),
            (ScopeField::UserId, self.user_ids.as_ref()),
        ]
    }

    /// The list restricting `field`, if any.
    pub fn list(&self, field: ScopeField) -> Option<&Vec<String>> {
        match field {
            ScopeField::EventType => self.event_types.as_ref(),
            ScopeField::Source => self.sources.as_ref(),
            ScopeField::SessionId => self.session_ids.as_ref(),
            ScopeField::UserId => self.user_ids.as_ref(),
        }
    }

    /// Whether `value` of `field` (absent: the event has none) is inside.
    pub fn admits(&self, field: ScopeField, value: Option<&str>) -> bool {
        admits(self.list(field), value)
    }

    /// The first field of an event with these values that falls outside, if any.
    pub fn outside(
        &self,
        event_type: &str,
        source: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) -> Option<ScopeField> {
        [
            (ScopeField::EventType, Some(event_type)),
            (ScopeField::Source, Some(source)),
            (ScopeField::SessionId, session_id),
            (ScopeField::UserId, user_id),
        ]
        .into_iter()
        .find(|(field, value)| !self.admits(*field, *value))
        .map(|(field, _)| field)
    }

    /// Whether a stored event is inside.
    pub fn allows(&self, event: &Event) -> bool {
        self.outside(
            event.event_type.as_str(),
            &event.source,
            event.session_id.as_deref(),
            event.user_id.as_deref(),
        )
        .is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn absent_lists_restrict_nothing_and_empty_ones_allow_nothing() {
        let open = Scope::unrestricted();
        assert!(open.is_unrestricted() && !open.allows_nothing());
        assert_eq!(open.outside("timer_tick", "s", None, None), None);
        let closed = Scope {
            user_ids: list(&[]),
            ..Scope::default()
        };
        assert!(closed.allows_nothing() && !closed.is_unrestricted());
        assert_eq!(
            closed.outside("timer_tick", "s", None, Some("u")),
            Some(ScopeField::UserId)
        );
    }

    #[test]
    fn every_present_list_must_hold_and_a_missing_value_is_outside() {
        let scope = Scope {
            event_types: list(&["timer_tick"]),
            sources: list(&["quiz-engine"]),
            session_ids: list(&["s1", "s2"]),
            user_ids: None,
        };
        assert_eq!(
            scope.outside("timer_tick", "quiz-engine", Some("s2"), None),
            None
        );
        assert_eq!(
            scope.outside("quiz_started", "quiz-engine", Some("s2"), None),
            Some(ScopeField::EventType)
        );
        assert_eq!(
            scope.outside("timer_tick", "other", Some("s2"), None),
            Some(ScopeField::Source)
        );
        assert_eq!(
            scope.outside("timer_tick", "quiz-engine", None, None),
            Some(ScopeField::SessionId)
        );
        assert_eq!(
            scope.outside("timer_tick", "quiz-engine", Some("s3"), Some("u")),
            Some(ScopeField::SessionId)
        );
    }
}
