//! A publish body as the client sent it, before any rule is checked.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::field_errors::{FieldError, ValidationErrors};

/// The fields of a publish body, parsed but not yet validated. Unknown extra
/// fields are ignored. Build one with [`PublishRequest::from_json`].
#[derive(Debug, Default)]
pub struct PublishRequest {
    pub(crate) event_type: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    /// The payload's JSON text as sent (`None` when absent; `null` is kept as text).
    pub(crate) payload: Option<Box<RawValue>>,
    /// When it happened, by the producer's clock (ISO 8601), if given.
    pub(crate) occurred_at: Option<String>,
    /// The client's idempotency key (body field, or the REST header).
    pub(crate) idempotency_key: Option<String>,
    /// Fields present with the wrong JSON type, found by the slow path.
    pub(crate) type_errors: Vec<FieldError>,
}

/// The fast path: every field has the JSON type it should.
#[derive(Deserialize)]
struct WellTyped {
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "raw_keeping_null")]
    payload: Option<Box<RawValue>>,
    #[serde(default)]
    occurred_at: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

fn raw_keeping_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

impl PublishRequest {
    /// The event type as sent, if it names one this process knows.
    pub fn event_type(&self) -> Option<ep_ports::EventType> {
        self.event_type
            .as_deref()
            .and_then(ep_ports::EventType::known)
    }

    /// Sets the idempotency key (the REST `Idempotency-Key` header, which
    /// wins over a body field).
    pub fn set_idempotency_key(&mut self, key: String) {
        self.idempotency_key = Some(key);
    }

    /// Parses a publish body.
    ///
    /// Field types are checked here (a number where a string belongs is a
    /// `string_type` error for that field); the rules of the contract are
    /// checked when the request is published.
    ///
    /// # Errors
    /// The body is empty, not JSON (`json_invalid`), or not a JSON object
    /// (`model_attributes_type`).
    pub fn from_json(body: &[u8]) -> Result<Self, ValidationErrors> {
        if let Ok(w) = serde_json::from_slice::<WellTyped>(body) {
            return Ok(Self {
                event_type: w.event_type,
                source: w.source,
                session_id: w.session_id,
                user_id: w.user_id,
                payload: w.payload,
                occurred_at: w.occurred_at,
                idempotency_key: w.idempotency_key,
                type_errors: Vec::new(),
            });
        }
        Self::from_json_slow(body)
    }

    /// The slow path, taken only for bodies the fast path refused: find out
    /// exactly what is wrong, field by field.
    fn from_json_slow(body: &[u8]) -> Result<Self, ValidationErrors> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ValidationErrors::one(FieldError::new(
                &["body"],
                "Field required",
                "missing",
            )));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ValidationErrors::one(FieldError::new(
                &["body"],
                format!("JSON decode error: {e}"),
                "json_invalid",
            ))
        })?;
        let Value::Object(mut map) = value else {
            return Err(ValidationErrors::one(FieldError::new(
                &["body"],
                "Input should be a valid dictionary or object to extract fields from",
                "model_attributes_type",
            )));
        };
        let mut req = PublishRequest::default();
        let mut take_string = |field: &str, errors: &mut Vec<FieldError>| match map.remove(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                errors.push(FieldError::new(
                    &["body", field],
                    "Input should be a valid string",
                    "string_type",
                ));
                None
            }
        };
        let mut errors = Vec::new();
        req.event_type = take_string("event_type", &mut errors);
        req.source = take_string("source", &mut errors);
        req.session_id = take_string("session_id", &mut errors);
        req.user_id = take_string("user_id", &mut errors);
        req.occurred_at = take_string("occurred_at", &mut errors);
        req.idempotency_key = take_string("idempotency_key", &mut errors);
        req.payload = match map.remove("payload") {
            None => None,
            // Re-serializing a value we just parsed cannot fail.
            Some(v) => serde_json::value::to_raw_value(&v).ok(),
        };
        req.type_errors = errors;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_typed_bodies_take_the_fast_path_and_ignore_extra_fields() {
        let r = PublishRequest::from_json(
            br#"{"event_type":"timer_tick","source":"t","extra":[1],"payload":{"a":1}}"#,
        )
        .expect("parses");
        assert_eq!(r.event_type.as_deref(), Some("timer_tick"));
        assert_eq!(r.payload.as_ref().map(|p| p.get()), Some(r#"{"a":1}"#));
        assert!(r.type_errors.is_empty());
    }

    #[test]
    fn null_payload_is_kept_so_validation_can_refuse_it() {
        let r = PublishRequest::from_json(
            br#"{"event_type":"timer_tick","source":"t","payload":null}"#,
        )
        .expect("parses");
        assert_eq!(r.payload.as_ref().map(|p| p.get()), Some("null"));
    }

    #[test]
    fn wrong_field_types_are_reported_per_field() {
        let r = PublishRequest::from_json(br#"{"event_type":7,"source":"t","user_id":["x"]}"#)
            .expect("parses");
        let locs: Vec<_> = r.type_errors.iter().map(|e| e.loc.join(".")).collect();
        assert_eq!(locs, ["body.event_type", "body.user_id"]);
    }

    #[test]
    fn non_json_non_objects_and_empty_bodies_are_refused() {
        for (body, kind) in [
            (&b"{not json"[..], "json_invalid"),
            (b"[1,2]", "model_attributes_type"),
            (b"\"x\"", "model_attributes_type"),
            (b"", "missing"),
            (b"  \n", "missing"),
        ] {
            let err = PublishRequest::from_json(body).expect_err("refused");
            assert_eq!(
                err.0[0].kind,
                kind,
                "body {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
