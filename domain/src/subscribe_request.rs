//! A subscriber's filter message, parsed and type-checked: which events it
//! wants and where to resume from.

use ep_ports::{EventFilter, EventType, PayloadFilter};
use serde_json::{Map, Value};

use crate::limits::{MAX_EVENT_TYPE_FILTER_CHARS, MAX_ID_CHARS};

/// Most entries an `event_types` list may have.
pub const MAX_FILTER_TYPES: usize = 64;
/// Most keys a `payload` filter may name.
pub const MAX_PAYLOAD_FILTER_KEYS: usize = 16;
/// Most values a `payload` filter key may list.
pub const MAX_PAYLOAD_FILTER_VALUES: usize = 64;
/// Longest `payload` filter key or string value, in characters.
pub const MAX_PAYLOAD_FILTER_CHARS: usize = 200;

/// Where a resuming subscriber left off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Deliver stored events with a greater `seq` first.
    AfterSeq(u64),
    /// Deliver stored events committed after the event with this id first.
    AfterEvent(String),
}

/// A filter as a subscriber sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeRequest {
    /// What to deliver.
    pub filter: EventFilter,
    /// The `event_types` as named (unregistered ones too, each once): a
    /// scope is checked against these.
    pub type_names: Vec<String>,
    /// Where to resume from, if asked.
    pub resume: Option<Resume>,
}

/// Why a filter was refused: the text for the client's error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    max: usize,
) -> Result<Option<String>, FilterError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(FilterError(format!(
            "{key} must be at most {max} characters"
        ))),
        Some(_) => Err(FilterError(format!("{key} must be a string"))),
    }
}

/// `payload`: `{"key": value}` equality, or `{"key": [values]}` for any of
/// them; values are strings, numbers, booleans or null.
fn payload_filter(value: Option<&Value>) -> Result<Option<PayloadFilter>, FilterError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) if o.is_empty() => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(FilterError(
                "payload must be an object of top-level payload keys to values".into(),
            ))
        }
    };
    if object.len() > MAX_PAYLOAD_FILTER_KEYS {
        return Err(FilterError(format!(
            "payload may name at most {MAX_PAYLOAD_FILTER_KEYS} keys"
        )));
    }
    let scalar = |key: &str, v: &Value| -> Result<Value, FilterError> {
        match v {
            Value::String(s) if s.chars().count() > MAX_PAYLOAD_FILTER_CHARS => Err(FilterError(
                format!("payload.{key}: strings are at most {MAX_PAYLOAD_FILTER_CHARS} characters"),
            )),
            Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => Ok(v.clone()),
            _ => Err(FilterError(format!(
                "payload.{key} must be a string, number, boolean or null, or a list of them"
            ))),
        }
    };
    let mut conditions = Vec::with_capacity(object.len());
    for (key, v) in object {
        if key.chars().count() > MAX_PAYLOAD_FILTER_CHARS {
            return Err(FilterError(format!(
                "payload keys are at most {MAX_PAYLOAD_FILTER_CHARS} characters"
            )));
        }
        let allowed = match v {
            Value::Array(items) if items.is_empty() || items.len() > MAX_PAYLOAD_FILTER_VALUES => {
                return Err(FilterError(format!(
                    "payload.{key} must list 1 to {MAX_PAYLOAD_FILTER_VALUES} values"
                )))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| scalar(key, item))
                .collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar(key, other)?],
        };
        conditions.push((key.clone(), allowed));
    }
    Ok(Some(PayloadFilter(conditions)))
}

impl SubscribeRequest {
    /// Parses a filter object. Each key is optional; `{}` wants everything.
    /// A value of the wrong type (a string where a list belongs) is an
    /// error, never a looser match. Unregistered type names match nothing.
    ///
    /// # Errors
    /// `FilterError` saying which key is wrong and why.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Self, FilterError> {
        let mut type_names = Vec::new();
        let event_types = match obj.get("event_types") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(Value::Array(items)) => {
                if items.len() > MAX_FILTER_TYPES {
                    return Err(FilterError(format!(
                        "event_types may list at most {MAX_FILTER_TYPES} types"
                    )));
                }
                let mut types = Vec::with_capacity(items.len());
                for item in items {
                    let Value::String(name) = item else {
                        return Err(FilterError("event_types must be a list of strings".into()));
                    };
                    if name.chars().count() > MAX_EVENT_TYPE_FILTER_CHARS {
                        return Err(FilterError(format!(
                            "event type names are at most {MAX_EVENT_TYPE_FILTER_CHARS} characters"
                        )));
                    }
                    if !type_names.contains(name) {
                        type_names.push(name.clone());
                    }
                    if let Some(t) = EventType::known(name) {
                        if !types.contains(&t) {
                            types.push(t);
                        }
                    }
                }
                Some(types)
            }
            Some(_) => return Err(FilterError("event_types must be a list of strings".into())),
        };
        let filter = EventFilter {
            event_types,
            session_id: optional_string(obj, "session_id", MAX_ID_CHARS)?,
            user_id: optional_string(obj, "user_id", MAX_ID_CHARS)?,
            payload: payload_filter(obj.get("payload"))?,
            scope: ep_ports::Scope::unrestricted(),
        };
        let since_seq =
            match obj.get("since_seq") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    FilterError("since_seq must be a non-negative integer".into())
                })?),
            };
        let last_event_id = optional_string(obj, "last_event_id", ep_ports::EventId::MAX_LEN)?;
        let resume = match (since_seq, last_event_id) {
            (Some(seq), _) => Some(Resume::AfterSeq(seq)),
            (None, Some(id)) => Some(Resume::AfterEvent(id)),
            (None, None) => None,
        };
        Ok(Self {
            filter,
            type_names,
            resume,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<SubscribeRequest, FilterError> {
        SubscribeRequest::from_object(v.as_object().expect("object"))
    }

    #[test]
    fn an_empty_filter_wants_everything() {
        assert_eq!(parse(json!({})).expect("ok").filter, EventFilter::default());
        assert_eq!(
            parse(json!({"event_types": []})).expect("ok").filter,
            EventFilter::default()
        );
    }

    #[test]
    fn every_key_is_parsed() {
        let r = parse(json!({"event_types": ["timer_tick", "quiz_started", "timer_tick"], "session_id": "s", "user_id": "u", "since_seq": 41}))
            .expect("ok");
        assert_eq!(
            r.filter.event_types,
            Some(vec![EventType::TIMER_TICK, EventType::QUIZ_STARTED])
        );
        assert_eq!(
            (r.filter.session_id.as_deref(), r.filter.user_id.as_deref()),
            (Some("s"), Some("u"))
        );
        assert_eq!(r.resume, Some(Resume::AfterSeq(41)));
    }

    #[test]
    fn wrong_types_are_errors_not_substring_matches() {
        for bad in [
            json!({"event_types": "timer_tick"}),
            json!({"event_types": [1]}),
            json!({"session_id": ["s"]}),
            json!({"user_id": 7}),
            json!({"since_seq": -1}),
            json!({"since_seq": "5"}),
            json!({"session_id": "x".repeat(201)}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_unregistered_type_names_match_nothing() {
        let r = parse(json!({"event_types": ["quiz_begun"]})).expect("ok");
        assert!(r.filter.matches_nothing());
    }

    #[test]
    fn a_payload_filter_is_equality_or_any_of_on_top_level_keys() {
        let r = parse(json!({"event_types": ["answer_submitted"],
                             "payload": {"correct": false, "question_id": ["q1", "q2"]}}))
        .expect("ok");
        let p = r.filter.payload.expect("a payload filter");
        let obj = |v: Value| v.as_object().expect("object").clone();
        assert!(p.matches(&obj(json!({"correct": false, "question_id": "q2", "x": 1}))));
        assert!(!p.matches(&obj(json!({"correct": true, "question_id": "q2"}))));
        assert!(!p.matches(&obj(json!({"correct": false, "question_id": "q3"}))));
        assert!(
            !p.matches(&obj(json!({"question_id": "q1"}))),
            "a missing key is not false"
        );
        let n = parse(json!({"payload": {"score": 1, "gone": null}}))
            .expect("ok")
            .filter
            .payload
            .expect("p");
        assert!(
            n.matches(&obj(json!({"score": 1.0}))),
            "numbers compare by value"
        );
        assert_eq!(
            parse(json!({"payload": {}})).expect("ok").filter.payload,
            None
        );
    }

    #[test]
    fn payload_filter_shapes_and_sizes_outside_the_rules_are_errors() {
        let many: serde_json::Map<String, Value> = (0..=MAX_PAYLOAD_FILTER_KEYS)
            .map(|i| (format!("k{i}"), json!(1)))
            .collect();
        for bad in [
            json!({"payload": "correct"}),
            json!({"payload": [1]}),
            json!({"payload": {"a": {"b": 1}}}),
            json!({"payload": {"a": [[1]]}}),
            json!({"payload": {"a": []}}),
            json!({"payload": {"a": vec![1; MAX_PAYLOAD_FILTER_VALUES + 1]}}),
            json!({"payload": {"a": "x".repeat(MAX_PAYLOAD_FILTER_CHARS + 1)}}),
            json!({"payload": {"k".repeat(MAX_PAYLOAD_FILTER_CHARS + 1): 1}}),
            json!({"payload": Value::Object(many)}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
