//! The one table from IMS Caliper events to pipeline events: which
//! (type, action) becomes which event type, and what of the Caliper event
//! becomes top-level payload keys (the whole event is kept under
//! `caliper` beside them).

use serde_json::{Map, Value};

/// Unmapped Caliper events (and mapped ones without what their mapping
/// needs) are stored as this type, declared by default.
pub(crate) const UNMAPPED: &str = "caliper_event";

/// How one Caliper (type, action) becomes a pipeline event.
pub(crate) struct Mapping {
    /// The Caliper event type (`AssessmentEvent`).
    pub caliper_type: &'static str,
    /// The Caliper action (`Started`).
    pub action: &'static str,
    /// The pipeline event type.
    pub event_type: &'static str,
    /// The payload keys taken from the Caliper event; `None` when it lacks
    /// what the mapping needs (it is then stored as [`UNMAPPED`]).
    pub fields: fn(&Value) -> Option<Map<String, Value>>,
}

const fn m(
    caliper_type: &'static str,
    action: &'static str,
    event_type: &'static str,
    fields: fn(&Value) -> Option<Map<String, Value>>,
) -> Mapping {
    Mapping {
        caliper_type,
        action,
        event_type,
        fields,
    }
}

/// Every mapped (type, action), as the README lists them.
pub(crate) static MAPPINGS: [Mapping; 10] = [
    m("AssessmentEvent", "Started", "quiz_started", quiz),
    m("AssessmentEvent", "Submitted", "quiz_completed", quiz),
    m(
        "AssessmentItemEvent",
        "Started",
        "question_viewed",
        question,
    ),
    m(
        "AssessmentItemEvent",
        "Completed",
        "answer_submitted",
        question,
    ),
    m(
        "AssessmentItemEvent",
        "Skipped",
        "question_skipped",
        question,
    ),
    m("SessionEvent", "LoggedIn", "session_created", nothing),
    m("SessionEvent", "LoggedOut", "session_ended", logged_out),
    m("SessionEvent", "TimedOut", "session_ended", timed_out),
    m("GradeEvent", "Graded", "mastery_updated", grade),
    m("ToolUseEvent", "Used", "mastery_updated", tool_use),
];

/// The mapping of a (type, action), compared on their last IRI segment
/// (`http://purl.imsglobal.org/vocab/caliper/action#Started` is `Started`).
pub(crate) fn find(caliper_type: &str, action: &str) -> Option<&'static Mapping> {
    let (t, a) = (term(caliper_type), term(action));
    MAPPINGS
        .iter()
        .find(|m| m.caliper_type == t && m.action == a)
}

/// A term's last segment after `/` or `#`.
pub(crate) fn term(text: &str) -> &str {
    text.rsplit(['/', '#']).next().unwrap_or(text)
}

/// An entity's id: the string itself (an IRI reference) or its `id`;
/// `None` for anything else or an empty id.
pub(crate) fn id_of(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o.get("id").and_then(Value::as_str),
        _ => None,
    }
    .filter(|id| !id.is_empty())
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    map
}

/// `quiz_id`: the assessment (the object).
fn quiz(event: &Value) -> Option<Map<String, Value>> {
    id_of(event.get("object")).map(|id| one("quiz_id", Value::from(id)))
}

/// `question_id`: the assessment item (the object), and `quiz_id`: the
/// assessment it is part of, when given.
fn question(event: &Value) -> Option<Map<String, Value>> {
    let object = event.get("object");
    let mut fields = one("question_id", Value::from(id_of(object)?));
    if let Some(quiz) = id_of(object.and_then(|o| o.get("isPartOf"))) {
        fields.insert("quiz_id".to_owned(), Value::from(quiz));
    }
    Some(fields)
}

fn nothing(_: &Value) -> Option<Map<String, Value>> {
    Some(Map::new())
}

fn logged_out(_: &Value) -> Option<Map<String, Value>> {
    Some(one("reason", Value::from("logged_out")))
}

fn timed_out(_: &Value) -> Option<Map<String, Value>> {
    Some(one("reason", Value::from("timed_out")))
}

/// `topic_id`: what was graded (the attempt's assignable, else the
/// object); `mastery`: `scoreGiven / maxScore` of the generated score,
/// when both are there and `maxScore` is above zero.
fn grade(event: &Value) -> Option<Map<String, Value>> {
    let object = event.get("object");
    let topic = id_of(object.and_then(|o| o.get("assignable"))).or(id_of(object))?;
    let mut fields = one("topic_id", Value::from(topic));
    let score = event.get("generated");
    let given = score
        .and_then(|s| s.get("scoreGiven"))
        .and_then(Value::as_f64);
    let max = score
        .and_then(|s| s.get("maxScore"))
        .and_then(Value::as_f64);
    if let (Some(given), Some(max)) = (given, max) {
        if max > 0.0 {
            fields.insert("mastery".to_owned(), Value::from(given / max));
        }
    }
    Some(fields)
}

/// The Caliper metrics that say how much of something was mastered.
const MASTERY_METRICS: [&str; 5] = [
    "SkillsMastered",
    "StandardsMastered",
    "UnitsPassed",
    "UnitsCompleted",
    "AssessmentsPassed",
];

/// A tool use with a mastery metric (an `AggregateMeasure` of one of
/// [`MASTERY_METRICS`] with a `maxMetricValue` above zero): `topic_id` the
/// course section (`group`), else the tool; `mastery` the metric's value
/// over its maximum; `metric` its name. Without one: not mapped.
fn tool_use(event: &Value) -> Option<Map<String, Value>> {
    let items = event.get("generated")?.get("items")?.as_array()?;
    let measure = items.iter().find(|item| {
        item.get("metric")
            .and_then(Value::as_str)
            .is_some_and(|metric| MASTERY_METRICS.contains(&term(metric)))
            && item
                .get("maxMetricValue")
                .and_then(Value::as_f64)
                .is_some_and(|max| max > 0.0)
    })?;
    let value = measure.get("metricValue").and_then(Value::as_f64)?;
    let max = measure.get("maxMetricValue").and_then(Value::as_f64)?;
    let topic = id_of(event.get("group")).or(id_of(event.get("object")))?;
    let mut fields = one("topic_id", Value::from(topic));
    fields.insert("mastery".to_owned(), Value::from(value / max));
    if let Some(metric) = measure.get("metric").and_then(Value::as_str) {
        fields.insert("metric".to_owned(), Value::from(term(metric)));
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_type_and_action_find_their_mapping_by_term_or_iri() {
        assert_eq!(
            find("AssessmentEvent", "Started").map(|m| m.event_type),
            Some("quiz_started")
        );
        assert_eq!(
            find(
                "http://purl.imsglobal.org/caliper/v1/AssessmentItemEvent",
                "http://purl.imsglobal.org/vocab/caliper/v1/action#Skipped"
            )
            .map(|m| m.event_type),
            Some("question_skipped")
        );
        assert!(find("NavigationEvent", "NavigatedTo").is_none());
        assert!(find("AssessmentEvent", "Paused").is_none());
    }

    #[test]
    fn a_grade_gives_mastery_only_with_a_score_out_of_something() {
        let graded = json!({"object": {"id": "att-1", "assignable": {"id": "assess-1"}},
                            "generated": {"scoreGiven": 15.0, "maxScore": 20.0}});
        let fields = grade(&graded).expect("mapped");
        assert_eq!(
            Value::Object(fields),
            json!({"topic_id": "assess-1", "mastery": 0.75})
        );
        let unscored = json!({"object": "att-1", "generated": {"maxScore": 0.0}});
        assert_eq!(
            Value::Object(grade(&unscored).expect("mapped")),
            json!({"topic_id": "att-1"})
        );
    }

    #[test]
    fn a_tool_use_is_mastery_only_with_a_mastery_metric() {
        let minutes = json!({"object": "app", "generated": {"items": [
            {"metric": "MinutesOnTask", "metricValue": 873.0}]}});
        assert!(tool_use(&minutes).is_none());
        let units = json!({"object": "app", "group": {"id": "sec-1"}, "generated": {"items": [
            {"metric": "MinutesOnTask", "metricValue": 873.0},
            {"metric": "UnitsCompleted", "metricValue": 12.0, "maxMetricValue": 24.0}]}});
        assert_eq!(
            Value::Object(tool_use(&units).expect("mapped")),
            json!({"topic_id": "sec-1", "mastery": 0.5, "metric": "UnitsCompleted"})
        );
    }
}
