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
    let mut requests = Vec::with_capacity(data.len());
    for (i, item) in data.into_iter().enumerate() {
        if let Some(request) = read_event(i, item, &source, stripped)? {
            requests.push(request);
        }
    }
    Ok(requests)
}

/// One item of `data`: an event as a publish request, an entity as `None`.
fn read_event(
    i: usize,
    mut event: Value,
    source: &str,
    stripped: &[String],
) -> Result<Option<PublishRequest>, CaliperError> {
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
    let text = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
    PublishRequest::from_json(&text)
        .map(Some)
        .map_err(|errors| CaliperError::Malformed(errors.0))
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
}
