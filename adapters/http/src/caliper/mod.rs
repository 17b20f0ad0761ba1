//! IMS Caliper in: a Sensor API envelope (`sensor`, `sendTime`,
//! `dataVersion`, `data[]`) read into one publish request per Caliper
//! event, by the table in [`mapping`].

pub(crate) mod mapping;

use ep_domain::{FieldError, PublishRequest};
use serde_json::{Map, Value};

use mapping::{find, id_of, term, UNMAPPED};

/// The `dataVersion`s this endpoint reads (Caliper 1.1, which Canvas sends,
/// and 1.2), on either path.
pub(crate) const DATA_VERSIONS: [&str; 2] = [
    "http://purl.imsglobal.org/ctx/caliper/v1p1",
    "http://purl.imsglobal.org/ctx/caliper/v1p2",
];

/// The Caliper fields a school may not want copied, removed wherever they
/// appear in the kept Caliper event unless `CALIPER_STRIP_FIELDS` says
/// otherwise.
pub const DEFAULT_STRIPPED: [&str; 2] = ["ipAddress", "userAgent"];

/// The longest Caliper event id that becomes an idempotency key (a longer
/// one is stored without).
const MAX_KEYED_ID: usize = 190;

/// Why an envelope was refused (before any of it was stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CaliperError {
    /// Not an envelope, or an event without what every event has (400).
    #[error("malformed Caliper envelope")]
    Malformed(Vec<FieldError>),
    /// A `dataVersion` this endpoint does not read (422).
    #[error("unsupported dataVersion '{0}': this endpoint reads http://purl.imsglobal.org/ctx/caliper/v1p1 and v1p2")]
    UnsupportedVersion(String),
    /// The body is not declared JSON (415).
    #[error("a Caliper envelope is sent as application/json (or application/ld+json)")]
    ContentType,
}

fn malformed(loc: &[&str], msg: impl Into<String>, kind: &'static str) -> CaliperError {
    CaliperError::Malformed(vec![FieldError::new(loc, msg, kind)])
}

/// Whether a `Content-Type` declares JSON: `application/json` or
/// `application/ld+json`, parameters allowed.
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
            || essence.eq_ignore_ascii_case("application/ld+json")
    })
}

/// A sensor's IRI as a `source` (`[A-Za-z0-9_.-]{1,100}`): the scheme
/// dropped, every other character `-`, runs of them one.
pub(crate) fn source_of(sensor: &str) -> String {
    let rest = sensor
        .split_once("://")
        .map_or(sensor, |(_, rest)| rest)
        .trim_start_matches("urn:");
    let mut source = String::with_capacity(rest.len().min(100));
    for c in rest.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '-'
        };
        if !(c == '-' && (source.is_empty() || source.ends_with('-'))) {
            source.push(c);
        }
        if source.len() == 100 {
            break;
        }
    }
    let source = source.trim_end_matches('-');
    if source.is_empty() {
        "caliper".to_owned()
    } else {
        source.to_owned()
    }
}

/// Removes every key named in `stripped` from `value`, at any depth.
fn strip(value: &mut Value, stripped: &[String]) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !stripped.iter().any(|s| s == k));
            for v in map.values_mut() {
                strip(v, stripped);
            }
        }
        Value::Array(items) => {
            for v in items {
                strip(v, stripped);
            }
        }
        _ => {}
    }
}

/// The envelope's events as publish requests, in order (entities described
/// in `data`, which have no `action`, are not events and are skipped).
///
/// # Errors
/// `Malformed` naming the first field that is wrong; `UnsupportedVersion`.
pub(crate) fn read_envelope(
    envelope: Value,
    stripped: &[String],
) -> Result<Vec<PublishRequest>, CaliperError> {
    envelope_bodies(envelope, stripped)?
        .into_iter()
        .map(|body| {
            let text = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
            PublishRequest::from_json(&text).map_err(|errors| CaliperError::Malformed(errors.0))
        })
        .collect()
}

/// The envelope's events as publish bodies (as a client would send them),
/// in order.
fn envelope_bodies(
    envelope: Value,
    stripped: &[String],
) -> Result<Vec<Map<String, Value>>, CaliperError> {
    let Value::Object(mut envelope) = envelope else {
        return Err(malformed(
            &["body"],
            "A Caliper envelope is a JSON object",
            "model_type",
        ));
    };
    let text = |envelope: &Map<String, Value>, key: &'static str| -> Result<String, CaliperError> {
        match envelope.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(malformed(
                &["body", key],
                format!("{key} must be a non-empty string"),
                "string_type",
            )),
            None => Err(malformed(
                &["body", key],
                format!("{key} is required"),
                "missing",
            )),
        }
    };
    let sensor = text(&envelope, "sensor")?;
    let send_time = text(&envelope, "sendTime")?;
    if ep_domain::parse_instant(&send_time).is_err() {
        return Err(malformed(
            &["body", "sendTime"],
            "sendTime must be an ISO 8601 date and time",
            "datetime_parsing",
        ));
    }
    let version = text(&envelope, "dataVersion")?;
    if !DATA_VERSIONS.contains(&version.as_str()) {
        return Err(CaliperError::UnsupportedVersion(
            version.chars().take(100).collect(),
        ));
    }
    let data = match envelope.remove("data") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(malformed(
                &["body", "data"],
                "data must be an array",
                "list_type",
            ))
        }
        None => return Err(malformed(&["body", "data"], "data is required", "missing")),
    };
    let source = source_of(&sensor);
    let mut bodies = Vec::with_capacity(data.len());
    for (i, item) in data.into_iter().enumerate() {
        if let Some(body) = read_event(i, item, &source, stripped)? {
            bodies.push(body);
        }
    }
    Ok(bodies)
}

/// One item of `data`: an event as a publish body, an entity as `None`.
fn read_event(
    i: usize,
    mut event: Value,
    source: &str,
    stripped: &[String],
) -> Result<Option<Map<String, Value>>, CaliperError> {
    let index = i.to_string();
    let at = |field: &'static str| ["body", "data", index.as_str(), field];
    let Some(object) = event.as_object() else {
        return Err(malformed(
            &["body", "data", index.as_str()],
            "Each item of data is a JSON object",
            "model_type",
        ));
    };
    let field = |key: &'static str| match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
        Some(_) => Err(malformed(
            &at(key),
            format!("{key} must be a non-empty string"),
            "string_type",
        )),
        None => Err(malformed(&at(key), format!("{key} is required"), "missing")),
    };
    let caliper_type = field("type")?;
    let id = field("id")?.to_owned();
    if !object.contains_key("action") {
        // An entity described in the envelope: nothing to store.
        return Ok(None);
    }
    let action = field("action")?;
    let event_time = field("eventTime")?.to_owned();
    if id_of(object.get("actor")).is_none() {
        return Err(malformed(
            &at("actor"),
            "actor must be an entity with an id, or its IRI",
            "missing",
        ));
    }
    if !object.contains_key("object") {
        return Err(malformed(&at("object"), "object is required", "missing"));
    }
    if object.contains_key("session") && id_of(object.get("session")).is_none() {
        return Err(malformed(
            &at("session"),
            "session must be an entity with an id, or its IRI",
            "model_type",
        ));
    }
    let mapped = find(caliper_type, action).and_then(|m| Some((m.event_type, (m.fields)(&event)?)));
    let (event_type, mut payload) = mapped.unwrap_or_else(|| {
        let mut fields = Map::new();
        fields.insert("caliper_type".to_owned(), Value::from(term(caliper_type)));
        fields.insert("action".to_owned(), Value::from(term(action)));
        (UNMAPPED, fields)
    });
    // The student: the actor, unless it is not a person and the object is
    // assigned to one (a grade given by an autograder).
    let actor_is_person = event
        .get("actor")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .is_none_or(|t| term(t) == "Person");
    let assignee = id_of(event.get("object").and_then(|o| o.get("assignee")));
    let user_id = match (actor_is_person, assignee) {
        (false, Some(student)) => Some(student),
        _ => id_of(event.get("actor")),
    }
    .map(str::to_owned);
    // The session: Caliper's session, else the attempt.
    let generated = event.get("generated");
    let session_id = id_of(event.get("session"))
        .or_else(|| id_of(generated.and_then(|g| g.get("attempt"))))
        .or_else(|| attempt(generated))
        .or_else(|| attempt(event.get("object")))
        .map(str::to_owned);
    strip(&mut event, stripped);
    payload.insert("caliper".to_owned(), event);
    let mut body = Map::new();
    body.insert("event_type".to_owned(), Value::from(event_type));
    body.insert("source".to_owned(), Value::from(source));
    body.insert(
        "session_id".to_owned(),
        session_id.map_or(Value::Null, Value::from),
    );
    body.insert(
        "user_id".to_owned(),
        user_id.map_or(Value::Null, Value::from),
    );
    body.insert("occurred_at".to_owned(), Value::from(event_time));
    if id.chars().count() <= MAX_KEYED_ID {
        body.insert(
            "idempotency_key".to_owned(),
            Value::from(format!("caliper:{id}")),
        );
    }
    body.insert("payload".to_owned(), Value::Object(payload));
    Ok(Some(body))
}

/// The id of an entity of type `Attempt`.
fn attempt(entity: Option<&Value>) -> Option<&str> {
    let entity = entity?;
    (entity.get("type").and_then(Value::as_str).map(term) == Some("Attempt"))
        .then(|| id_of(Some(entity)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensor_iri_becomes_a_valid_source() {
        assert_eq!(
            source_of("https://example.edu/sensors/1"),
            "example.edu-sensors-1"
        );
        assert_eq!(source_of("urn:uuid:1234"), "uuid-1234");
        assert_eq!(source_of("://"), "caliper");
        assert_eq!(source_of("https://é.edu/ü"), ".edu");
        let long = format!("https://{}", "a/".repeat(200));
        let s = source_of(&long);
        assert!(s.len() <= 100 && !s.ends_with('-'), "{s}");
    }

    #[test]
    fn only_json_content_types_are_read() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/ld+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }

    #[test]
    fn stripped_fields_go_at_any_depth() {
        let mut v = serde_json::json!({"session": {"client": {"ipAddress": "10.0.0.1", "host": "h",
            "userAgent": "UA"}}, "list": [{"ipAddress": "x"}]});
        strip(&mut v, &["ipAddress".to_owned(), "userAgent".to_owned()]);
        assert_eq!(
            v,
            serde_json::json!({"session": {"client": {"host": "h"}}, "list": [{}]})
        );
    }

    const V1P2: &str = "http://purl.imsglobal.org/ctx/caliper/v1p2";

    fn envelope(data: Vec<Value>) -> Value {
        serde_json::json!({"sensor": "https://example.edu/sensors/1",
            "sendTime": "2026-12-04T10:00:00.000Z", "dataVersion": V1P2, "data": data})
    }

    /// A Caliper event no row of the table maps (stored as `caliper_event`).
    fn navigated(id: &str) -> Value {
        serde_json::json!({"id": id, "type": "NavigationEvent", "action": "NavigatedTo",
            "actor": {"id": "https://example.edu/users/554433", "type": "Person"},
            "object": {"id": "https://example.edu/pages/1", "type": "WebPage"},
            "eventTime": "2026-12-04T09:59:58.000Z",
            "session": {"id": "https://example.edu/sessions/1f6442a4", "type": "Session",
                "client": {"ipAddress": "10.0.0.1", "host": "h"}}})
    }

    fn bodies(envelope: Value) -> Vec<Map<String, Value>> {
        envelope_bodies(envelope, &["ipAddress".to_owned()]).expect("an envelope")
    }

    fn body(event: Value) -> Map<String, Value> {
        let mut all = bodies(envelope(vec![event]));
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    /// Where and why `envelope` is refused.
    fn refusal(envelope: Value) -> (Vec<String>, &'static str) {
        match envelope_bodies(envelope, &[]) {
            Err(CaliperError::Malformed(errors)) => (errors[0].loc.clone(), errors[0].kind),
            other => panic!("not malformed: {other:?}"),
        }
    }

    fn loc(path: &[&str]) -> Vec<String> {
        path.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_envelope_is_checked_naming_its_first_wrong_field() {
        assert_eq!(
            refusal(serde_json::json!([1])),
            (loc(&["body"]), "model_type")
        );
        let with = |key: &str, value: Option<Value>| {
            let mut e = envelope(vec![navigated("urn:uuid:1")]);
            match value {
                Some(v) => e[key] = v,
                None => {
                    e.as_object_mut().expect("object").remove(key);
                }
            }
            e
        };
        let field = |key: &str| loc(&["body", key]);
        assert_eq!(refusal(with("sensor", None)), (field("sensor"), "missing"));
        for bad in [Value::from(""), Value::from(5)] {
            assert_eq!(
                refusal(with("sensor", Some(bad))),
                (field("sensor"), "string_type")
            );
        }
        assert_eq!(
            refusal(with("sendTime", Some("yesterday".into()))),
            (field("sendTime"), "datetime_parsing")
        );
        assert_eq!(
            envelope_bodies(with("dataVersion", Some("v9".into())), &[]),
            Err(CaliperError::UnsupportedVersion("v9".into()))
        );
        assert_eq!(refusal(with("data", None)), (field("data"), "missing"));
        assert_eq!(
            refusal(with("data", Some(serde_json::json!({})))),
            (field("data"), "list_type")
        );
        assert_eq!(bodies(with("data", Some(serde_json::json!([])))).len(), 0);
    }

    #[test]
    fn each_event_needs_what_every_event_has_and_entities_are_skipped() {
        let at = |i: &str, key: &str| loc(&["body", "data", i, key]);
        assert_eq!(
            refusal(envelope(vec![Value::from(5)])),
            (loc(&["body", "data", "0"]), "model_type")
        );
        let entity = serde_json::json!({"id": "https://example.edu/users/1", "type": "Person"});
        assert_eq!(
            bodies(envelope(vec![entity.clone(), navigated("urn:uuid:1")])).len(),
            1,
            "an entity is not an event"
        );
        let without = |key: &str| {
            let mut e = navigated("urn:uuid:1");
            e.as_object_mut().expect("object").remove(key);
            envelope(vec![entity.clone(), e])
        };
        // (Without an action it is an entity, skipped as above.)
        for key in ["type", "id", "eventTime", "actor", "object"] {
            let (where_, _) = refusal(without(key));
            assert_eq!(where_, at("1", key), "{key}");
        }
        let with = |key: &str, value: Value| {
            let mut e = navigated("urn:uuid:1");
            e[key] = value;
            envelope(vec![e])
        };
        assert_eq!(
            refusal(with("id", "".into())),
            (at("0", "id"), "string_type")
        );
        assert_eq!(
            refusal(with("type", 5.into())),
            (at("0", "type"), "string_type")
        );
        assert_eq!(
            refusal(with("actor", serde_json::json!({"type": "Person"}))),
            (at("0", "actor"), "missing")
        );
        assert_eq!(
            refusal(with("session", 5.into())),
            (at("0", "session"), "model_type")
        );
        // An IRI stands for an entity.
        assert_eq!(
            body(
                navigated("urn:uuid:1").tap(|e| e["actor"] = "https://example.edu/users/9".into())
            )["user_id"],
            "https://example.edu/users/9"
        );
    }

    #[test]
    fn an_event_becomes_a_body_with_its_student_session_time_and_key() {
        let b = body(navigated("urn:uuid:ff"));
        assert_eq!(b["event_type"], "caliper_event");
        assert_eq!(b["source"], "example.edu-sensors-1");
        assert_eq!(b["user_id"], "https://example.edu/users/554433");
        assert_eq!(b["session_id"], "https://example.edu/sessions/1f6442a4");
        assert_eq!(b["occurred_at"], "2026-12-04T09:59:58.000Z");
        assert_eq!(b["idempotency_key"], "caliper:urn:uuid:ff");
        assert_eq!(b["payload"]["caliper_type"], "NavigationEvent");
        assert_eq!(b["payload"]["action"], "NavigatedTo");
        let kept = &b["payload"]["caliper"];
        assert_eq!(kept["id"], "urn:uuid:ff");
        assert_eq!(
            kept["session"]["client"],
            serde_json::json!({"host": "h"}),
            "stripped"
        );

        // A grade given by a program is the assignee's; one given by a
        // person is still the actor's.
        let graded = |actor_type: &str| {
            navigated("urn:uuid:1").tap(|e| {
                e["actor"]["type"] = actor_type.into();
                e["object"]["assignee"] = serde_json::json!({"id": "stu-7", "type": "Person"});
            })
        };
        assert_eq!(body(graded("SoftwareApplication"))["user_id"], "stu-7");
        assert_eq!(
            body(graded("Person"))["user_id"],
            "https://example.edu/users/554433"
        );

        // Without a session: the generated attempt, a generated Attempt, or
        // an Attempt as the object.
        let sessionless = |edit: fn(&mut Value)| {
            let mut e = navigated("urn:uuid:1");
            e.as_object_mut().expect("object").remove("session");
            edit(&mut e);
            body(e)["session_id"].clone()
        };
        assert_eq!(
            sessionless(|e| e["generated"] = serde_json::json!({"attempt": {"id": "att-1"}})),
            "att-1"
        );
        assert_eq!(
            sessionless(|e| e["generated"] = serde_json::json!({"id": "att-2", "type": "Attempt"})),
            "att-2"
        );
        assert_eq!(
            sessionless(|e| e["object"] = serde_json::json!({"id": "att-3", "type": "Attempt"})),
            "att-3"
        );
        assert_eq!(
            sessionless(|e| e["generated"] = serde_json::json!({"id": "r-1", "type": "Response"})),
            Value::Null
        );
        assert_eq!(sessionless(|_| {}), Value::Null);

        // An id too long for a key is stored without one.
        let longest = format!("urn:{}", "x".repeat(MAX_KEYED_ID - 4));
        assert!(body(navigated(&longest)).contains_key("idempotency_key"));
        let longer = format!("{longest}x");
        assert!(!body(navigated(&longer)).contains_key("idempotency_key"));
    }

    #[test]
    fn the_bodies_become_publish_requests_in_order() {
        let requests = read_envelope(
            envelope(vec![navigated("urn:uuid:1"), navigated("urn:uuid:2")]),
            &[],
        )
        .expect("an envelope");
        assert_eq!(requests.len(), 2);
        assert!(requests
            .iter()
            .all(|r| r.event_type() == Some(ep_ports::EventType::CALIPER_EVENT)));
    }

    /// Edits a value in place and hands it back.
    trait Tap: Sized {
        fn tap(self, edit: impl FnOnce(&mut Self)) -> Self;
    }

    impl Tap for Value {
        fn tap(mut self, edit: impl FnOnce(&mut Self)) -> Self {
            edit(&mut self);
            self
        }
    }
}
