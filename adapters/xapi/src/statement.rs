//! The one table from pipeline events to xAPI statements: which type
//! becomes which ADL verb and object, and what of the payload becomes the
//! statement's result.

use ep_ports::{Event, EventType};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The namespace of statement ids (a name-based UUID of the event id), so
/// that a statement sent again has the same id and an LRS keeps it once.
const STATEMENT_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_2a8e_6b1d_4c53_9e27_8d4a_1b3c_7e01);
/// The namespace of registrations (a name-based UUID of the session id).
const REGISTRATION_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_2a8e_6b1d_4c53_9e27_8d4a_1b3c_7e02);

const ADL_VERBS: &str = "http://adlnet.gov/expapi/verbs/";
const ADL_ACTIVITIES: &str = "http://adlnet.gov/expapi/activities/";

/// What an event's object is: the payload key holding its id (or the
/// event's session), the folder of its activity IRI, and the ADL activity
/// type.
#[derive(Clone, Copy)]
enum Object {
    /// `payload[key]`, as `{home}/{folder}/{id}`.
    Payload {
        key: &'static str,
        folder: &'static str,
        activity_type: &'static str,
    },
    /// The session (`session_id`), as `{home}/sessions/{id}`.
    Session,
}

/// How one event type becomes a statement.
pub(crate) struct Mapping {
    /// The pipeline type.
    pub event_type: EventType,
    /// The ADL verb's last segment (`answered`).
    pub verb: &'static str,
    object: Object,
}

const QUIZ: Object = Object::Payload {
    key: "quiz_id",
    folder: "quizzes",
    activity_type: "assessment",
};
const QUESTION: Object = Object::Payload {
    key: "question_id",
    folder: "questions",
    activity_type: "cmi.interaction",
};
const TOPIC: Object = Object::Payload {
    key: "topic_id",
    folder: "topics",
    activity_type: "objective",
};

/// Every mapped type, as the README lists them. Types not here (timer
/// ticks, errors, ...) are not sent.
pub(crate) static MAPPINGS: [Mapping; 10] = [
    m(EventType::SESSION_CREATED, "initialized", Object::Session),
    m(EventType::QUIZ_STARTED, "attempted", QUIZ),
    m(EventType::QUESTION_VIEWED, "experienced", QUESTION),
    m(EventType::ANSWER_SUBMITTED, "answered", QUESTION),
    m(EventType::ANSWER_CHANGED, "answered", QUESTION),
    m(EventType::QUIZ_COMPLETED, "completed", QUIZ),
    m(EventType::QUIZ_TIMEOUT, "terminated", QUIZ),
    m(EventType::MASTERY_UPDATED, "progressed", TOPIC),
    m(EventType::SESSION_ENDED, "terminated", Object::Session),
    m(EventType::LEARNING_GAP_DETECTED, "experienced", TOPIC),
];

const fn m(event_type: EventType, verb: &'static str, object: Object) -> Mapping {
    Mapping {
        event_type,
        verb,
        object,
    }
}

/// The statement id of an event: the same every time it is sent.
pub(crate) fn statement_id(event: &Event) -> Uuid {
    Uuid::new_v5(&STATEMENT_NAMESPACE, event.id.as_str().as_bytes())
}

/// An id as an IRI: kept when it already is one (`https://...`,
/// `urn:...`), else `{home}/{folder}/{id}` with the id percent-encoded.
fn iri(home: &str, folder: &str, id: &str) -> String {
    if id.contains("://") || id.starts_with("urn:") {
        return id.to_owned();
    }
    let mut encoded = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{}/{folder}/{encoded}", home.trim_end_matches('/'))
}

/// Seconds as an ISO 8601 duration (`PT41.25S`).
fn duration(seconds: f64) -> Option<String> {
    (seconds.is_finite() && seconds >= 0.0).then(|| {
        let text = format!("{seconds:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("PT{text}S")
    })
}

/// The statement's result from the payload: `success` (`correct`,
/// `passed`), `response` (`answer`), `score` (`score` as raw out of
/// `max_score` or 100; `mastery` as scaled), `duration` (`time_spent_ms`,
/// `duration_seconds`), `completion` for a completed quiz.
fn result(event_type: EventType, payload: &Map<String, Value>) -> Option<Value> {
    let mut result = Map::new();
    let number = |key: &str| payload.get(key).and_then(Value::as_f64);
    if let Some(success) = payload
        .get("correct")
        .or_else(|| payload.get("passed"))
        .and_then(Value::as_bool)
    {
        result.insert("success".into(), Value::Bool(success));
    }
    match payload.get("answer") {
        Some(Value::String(s)) => {
            result.insert("response".into(), Value::from(s.as_str()));
        }
        Some(v @ (Value::Number(_) | Value::Bool(_))) => {
            result.insert("response".into(), Value::from(v.to_string()));
        }
        _ => {}
    }
    if let Some(mastery) = number("mastery").filter(|m| (0.0..=1.0).contains(m)) {
        result.insert("score".into(), json!({ "scaled": mastery }));
    } else if let Some(score) = number("score").filter(|s| *s >= 0.0) {
        let max = number("max_score")
            .filter(|m| *m >= score)
            .unwrap_or(100.0_f64.max(score));
        let mut s = json!({"raw": score, "min": 0, "max": max});
        if max > 0.0 {
            s["scaled"] = Value::from(score / max);
        }
        result.insert("score".into(), s);
    }
    let spent = number("time_spent_ms")
        .map(|ms| ms / 1_000.0)
        .or_else(|| number("duration_seconds"));
    if let Some(d) = spent.and_then(duration) {
        result.insert("duration".into(), Value::from(d));
    }
    if event_type == EventType::QUIZ_COMPLETED {
        result.insert("completion".into(), Value::Bool(true));
    }
    (!result.is_empty()).then_some(Value::Object(result))
}

/// The xAPI statement for `event`, or `None` when its type has no mapping
/// or it lacks what the statement needs (a student, an object).
pub(crate) fn statement(event: &Event, home: &str) -> Option<Value> {
    let mapping = MAPPINGS.iter().find(|m| m.event_type == event.event_type)?;
    let student = event.user_id.as_deref()?;
    let payload: Map<String, Value> = serde_json::from_str(event.payload.as_str()).ok()?;
    let (object_id, activity_type) = match mapping.object {
        Object::Payload {
            key,
            folder,
            activity_type,
        } => {
            let id = match payload.get(key) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return None,
            };
            (iri(home, folder, &id), Some(activity_type))
        }
        Object::Session => (iri(home, "sessions", event.session_id.as_deref()?), None),
    };
    let mut object = json!({"objectType": "Activity", "id": object_id});
    if let Some(t) = activity_type {
        object["definition"] = json!({"type": format!("{ADL_ACTIVITIES}{t}")});
    }
    let mut context = json!({"platform": event.source});
    if let Some(session) = &event.session_id {
        context["registration"] =
            Value::from(Uuid::new_v5(&REGISTRATION_NAMESPACE, session.as_bytes()).to_string());
    }
    let mut statement = json!({
        "id": statement_id(event).to_string(),
        "actor": {"objectType": "Agent", "account": {"homePage": home, "name": student}},
        "verb": {"id": format!("{ADL_VERBS}{}", mapping.verb), "display": {"en-US": mapping.verb}},
        "object": object,
        "context": context,
        "timestamp": event.occurred_at.unwrap_or(event.timestamp).to_string(),
    });
    if let Some(result) = result(event.event_type, &payload) {
        statement["result"] = result;
    }
    Some(statement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ep_ports::{EventId, Payload, Timestamp};

    const HOME: &str = "https://school.example";

    fn event(event_type: EventType, payload: &str) -> Event {
        Event {
            id: EventId::new("evt_0192a0b0c0d07e008000000000000001".to_owned()),
            event_type,
            source: "quiz-engine".into(),
            session_id: Some("sess 7".into()),
            user_id: Some("stu-1042".into()),
            payload: Payload::from_json(payload.to_owned()).expect("payload"),
            timestamp: Timestamp::parse_canonical("2026-11-27T11:57:03.664456Z").expect("ts"),
            occurred_at: None,
            seq: 7,
        }
    }

    #[test]
    fn an_answer_becomes_answered_with_success_response_and_duration() {
        let s = statement(
            &event(
                EventType::ANSWER_SUBMITTED,
                r#"{"question_id":"q-alg3-01","answer":"B","correct":true,"time_spent_ms":41250}"#,
            ),
            HOME,
        )
        .expect("mapped");
        assert_eq!(s["verb"]["id"], "http://adlnet.gov/expapi/verbs/answered");
        assert_eq!(
            s["actor"]["account"],
            json!({"homePage": HOME, "name": "stu-1042"})
        );
        assert_eq!(
            s["object"]["id"],
            "https://school.example/questions/q-alg3-01"
        );
        assert_eq!(
            s["result"],
            json!({"success": true, "response": "B", "duration": "PT41.25S"})
        );
        assert_eq!(s["timestamp"], "2026-11-27T11:57:03.664456Z");
        assert_eq!(s["context"]["platform"], "quiz-engine");
        let again = statement(
            &event(EventType::ANSWER_SUBMITTED, r#"{"question_id":"x"}"#),
            HOME,
        )
        .expect("mapped");
        assert_eq!(s["id"], again["id"], "one id per event, whatever is sent");
        assert_eq!(
            s["context"]["registration"],
            again["context"]["registration"]
        );
    }

    #[test]
    fn scores_mastery_and_sessions_map_and_unmapped_types_do_not() {
        let done = statement(
            &event(
                EventType::QUIZ_COMPLETED,
                r#"{"quiz_id":"https://lms/q/1","score":85,"duration_seconds":1800}"#,
            ),
            HOME,
        )
        .expect("mapped");
        assert_eq!(done["object"]["id"], "https://lms/q/1", "an IRI is kept");
        assert_eq!(
            done["result"],
            json!({"score": {"raw": 85.0, "min": 0, "max": 100.0, "scaled": 0.85},
                   "duration": "PT1800S", "completion": true})
        );
        let mastery = statement(
            &event(
                EventType::MASTERY_UPDATED,
                r#"{"topic_id":"fractions","mastery":0.62}"#,
            ),
            HOME,
        )
        .expect("mapped");
        assert_eq!(mastery["verb"]["display"]["en-US"], "progressed");
        assert_eq!(mastery["result"]["score"], json!({"scaled": 0.62}));
        let started = statement(&event(EventType::SESSION_CREATED, "{}"), HOME).expect("mapped");
        assert_eq!(
            started["object"]["id"],
            "https://school.example/sessions/sess%207"
        );
        assert!(statement(&event(EventType::TIMER_TICK, "{}"), HOME).is_none());
        assert!(
            statement(&event(EventType::QUIZ_STARTED, "{}"), HOME).is_none(),
            "no quiz id"
        );
        let mut anonymous = event(EventType::QUIZ_STARTED, r#"{"quiz_id":"q"}"#);
        anonymous.user_id = None;
        assert!(statement(&anonymous, HOME).is_none(), "no student");
    }

    #[test]
    fn the_statement_id_is_fixed_by_the_event_id_for_good() {
        // Changing how it is derived would send every event again, as new
        // statements, after an upgrade: the value is pinned.
        let answer = event(EventType::ANSWER_SUBMITTED, r#"{"question_id":"q"}"#);
        let s = statement(&answer, HOME).expect("mapped");
        assert_eq!(s["id"], "1cbe7fd6-bb32-58ed-997d-35cbaab6c662");
        let mut next = answer.clone();
        next.id = EventId::new("evt_0192a0b0c0d07e008000000000000002".to_owned());
        let s = statement(&next, HOME).expect("mapped");
        assert_eq!(s["id"], "e1c20c20-d59a-54ed-b53b-3b69345f6e4a");
    }

    #[test]
    fn results_take_what_the_payload_gives_and_leave_out_what_does_not_fit() {
        let result = |event_type, payload: &str| {
            statement(&event(event_type, payload), HOME).expect("mapped")["result"].clone()
        };
        let answered = EventType::ANSWER_SUBMITTED;
        assert_eq!(
            result(answered, r#"{"question_id":"q","answer":42}"#),
            json!({"response": "42"})
        );
        assert_eq!(
            result(answered, r#"{"question_id":"q","answer":true}"#),
            json!({"response": "true"})
        );
        assert_eq!(
            result(answered, r#"{"question_id":"q","time_spent_ms":-1000}"#),
            Value::Null,
            "no negative duration"
        );
        let completed = EventType::QUIZ_COMPLETED;
        assert_eq!(
            result(completed, r#"{"quiz_id":"q","score":17,"max_score":20}"#)["score"],
            json!({"raw": 17.0, "min": 0, "max": 20.0, "scaled": 0.85})
        );
        assert_eq!(
            result(completed, r#"{"quiz_id":"q","score":120,"max_score":100}"#)["score"],
            json!({"raw": 120.0, "min": 0, "max": 120.0, "scaled": 1.0}),
            "a maximum under the score is not one"
        );
        assert_eq!(
            result(completed, r#"{"quiz_id":"q","score":0,"max_score":0}"#)["score"],
            json!({"raw": 0.0, "min": 0, "max": 0.0}),
            "nothing scaled out of 0"
        );
    }

    #[test]
    fn an_object_id_may_be_a_number_but_not_empty() {
        let started = |payload: &str| statement(&event(EventType::QUIZ_STARTED, payload), HOME);
        assert_eq!(
            started(r#"{"quiz_id":7}"#).expect("mapped")["object"]["id"],
            "https://school.example/quizzes/7"
        );
        assert!(started(r#"{"quiz_id":""}"#).is_none());
        assert!(started(r#"{"quiz_id":["q"]}"#).is_none());
    }
}
