//! Which events a subscriber wants: the live filter, also used to replay
//! stored events to a subscriber that resumes.

use serde_json::{Map, Value};

use crate::{Event, EventType, Scope};

/// Conditions on an event's top-level payload keys: each key's value must
/// equal one of the listed values (numbers compare by value, `1` = `1.0`);
/// a key the payload lacks matches only a listed `null`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayloadFilter(pub Vec<(String, Vec<Value>)>);

impl PayloadFilter {
    /// Whether `payload` (an event's payload object) meets every condition.
    pub fn matches(&self, payload: &Map<String, Value>) -> bool {
        self.0.iter().all(|(key, allowed)| {
            let value = payload.get(key).unwrap_or(&Value::Null);
            allowed.iter().any(|a| same(a, value))
        })
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

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
    /// Conditions on the payload's top-level keys.
    pub payload: Option<PayloadFilter>,
    /// The subscriber's scope: only events inside it, whatever it asked.
    pub scope: Scope,
}

impl EventFilter {
    /// Whether `event` meets every condition.
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_parsed(event, &mut None)
    }

    /// Like [`Self::matches`], parsing the payload (when a payload
    /// condition needs it) into `parsed` once for every filter asked about
    /// the same event.
    pub fn matches_parsed(&self, event: &Event, parsed: &mut Option<Map<String, Value>>) -> bool {
        self.matches_fields(event)
            && self.payload.as_ref().is_none_or(|p| {
                let payload = parsed.get_or_insert_with(|| {
                    serde_json::from_str(event.payload.as_str()).unwrap_or_default()
                });
                p.matches(payload)
            })
    }

    fn matches_fields(&self, event: &Event) -> bool {
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
