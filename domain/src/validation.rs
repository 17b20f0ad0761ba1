//! Validation of a publish request against the registry and the limits, with
//! errors shaped like the old service's (`loc`, `msg`, `type`).

use ep_ports::{EventType, Timestamp};

use crate::time_parse::{parse_instant, InstantError};

use crate::event_types::EventTypes;
use crate::field_errors::{FieldError, ValidationErrors};
use crate::limits::{Limits, MAX_IDEMPOTENCY_KEY_CHARS, MAX_ID_CHARS, MAX_SOURCE_CHARS};
use crate::payload_check::{check_payload, PayloadProblem};
use crate::publish_request::PublishRequest;
use ep_ports::Payload;

/// A request that passed validation: what the router stamps and queues.
/// Only [`validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEvent {
    pub(crate) event_type: EventType,
    pub(crate) source: String,
    pub(crate) session_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) payload: Payload,
    pub(crate) occurred_at: Option<Timestamp>,
    pub(crate) idempotency_key: Option<String>,
}

/// Checks every rule of the contract and returns all violations at once.
pub(crate) fn validate(
    req: PublishRequest,
    limits: &Limits,
    types: &EventTypes,
) -> Result<ValidEvent, ValidationErrors> {
    let mut errors = req.type_errors;

    let event_type = match req.event_type {
        Some(name) => match types.get(&name) {
            Some(t) => Some(t),
            None => {
                errors.push(FieldError::new(
                    &["body", "event_type"],
                    format!(
                        "Value error, Invalid event_type '{}'. Must be one of: {}",
                        truncate_for_message(&name),
                        types.names()
                    ),
                    "value_error",
                ));
                None
            }
        },
        None => {
            push_missing_unless_mistyped(&mut errors, "event_type");
            None
        }
    };

    let source = match req.source {
        Some(s) => {
            check_source(&s, &mut errors);
            Some(s)
        }
        None => {
            push_missing_unless_mistyped(&mut errors, "source");
            None
        }
    };

    for (field, value) in [("session_id", &req.session_id), ("user_id", &req.user_id)] {
        if let Some(v) = value {
            if v.chars().count() > MAX_ID_CHARS {
                errors.push(too_long(field, MAX_ID_CHARS));
            }
        }
    }

    let payload = match req.payload {
        None => Some(Payload::empty()),
        Some(raw) => match check_payload(raw.get(), limits) {
            Ok(p) => Some(p),
            Err(problem) => {
                errors.push(payload_error(problem, limits));
                None
            }
        },
    };

    let occurred_at = req
        .occurred_at
        .as_deref()
        .and_then(|text| check_occurred_at(text, limits, &mut errors));

    if let Some(key) = &req.idempotency_key {
        let chars = key.chars().count();
        if chars == 0 || chars > MAX_IDEMPOTENCY_KEY_CHARS {
            errors.push(FieldError::new(
                &["body", "idempotency_key"],
                format!("String should have 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
                if chars == 0 {
                    "string_too_short"
                } else {
                    "string_too_long"
                },
            ));
        }
    }

    // The schema is asked only of a payload within the limits.
    if let (Some(t), Some(p)) = (event_type, &payload) {
        errors.extend(types.check(t, p.as_str()));
    }

    match (event_type, source, payload) {
        (Some(event_type), Some(source), Some(payload)) if errors.is_empty() => Ok(ValidEvent {
            event_type,
            source,
            session_id: req.session_id,
            user_id: req.user_id,
            payload,
            occurred_at,
            idempotency_key: req.idempotency_key,
        }),
        _ => Err(ValidationErrors(errors)),
    }
}

/// `occurred_at`: an ISO 8601 instant no further ahead of this node's clock
/// than the allowed skew (any time in the past is fine: a retried or
/// imported event happened earlier).
fn check_occurred_at(
    text: &str,
    limits: &Limits,
    errors: &mut Vec<FieldError>,
) -> Option<Timestamp> {
    let loc = ["body", "occurred_at"];
    match parse_instant(text) {
        Ok(at) => {
            let latest = Timestamp::now().as_micros().saturating_add(
                i64::try_from(limits.max_clock_skew.as_micros()).unwrap_or(i64::MAX),
            );
            if at.as_micros() > latest {
                errors.push(FieldError::new(
                    &loc,
                    format!(
                        "occurred_at is more than {} s ahead of the server's clock (MAX_CLOCK_SKEW_SECONDS)",
                        limits.max_clock_skew.as_secs()
                    ),
                    "datetime_future",
                ));
                None
            } else {
                Some(at)
            }
        }
        Err(InstantError::Unparseable) => {
            errors.push(FieldError::new(
                &loc,
                "Input should be a valid ISO 8601 datetime",
                "datetime_parsing",
            ));
            None
        }
        Err(e @ InstantError::OutOfRange) => {
            errors.push(FieldError::new(
                &loc,
                e.to_string(),
                "datetime_out_of_range",
            ));
            None
        }
    }
}

fn check_source(source: &str, errors: &mut Vec<FieldError>) {
    let chars = source.chars().count();
    if chars == 0 {
        errors.push(FieldError::new(
            &["body", "source"],
            "String should have at least 1 character",
            "string_too_short",
        ));
    } else if chars > MAX_SOURCE_CHARS {
        errors.push(too_long("source", MAX_SOURCE_CHARS));
    } else if !source
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        errors.push(FieldError::new(
            &["body", "source"],
            "String should match pattern '^[a-zA-Z0-9_.-]+$'",
            "string_pattern_mismatch",
        ));
    }
}

/// A required field that is absent is `missing`; one that was present with the
/// wrong JSON type already carries its type error.
fn push_missing_unless_mistyped(errors: &mut Vec<FieldError>, field: &str) {
    if !errors
        .iter()
        .any(|e| e.loc.get(1).map(String::as_str) == Some(field))
    {
        errors.push(FieldError::new(
            &["body", field],
            "Field required",
            "missing",
        ));
    }
}

fn too_long(field: &str, max: usize) -> FieldError {
    FieldError::new(
        &["body", field],
        format!("String should have at most {max} characters"),
        "string_too_long",
    )
}

fn payload_error(problem: PayloadProblem, limits: &Limits) -> FieldError {
    let (msg, kind) = match problem {
        PayloadProblem::NotAnObject => {
            ("Input should be a valid dictionary".to_owned(), "dict_type")
        }
        PayloadProblem::TooManyKeys(n) => (
            format!(
                "Value error, Payload has {n} keys; at most {} are allowed",
                limits.max_payload_keys
            ),
            "value_error",
        ),
        PayloadProblem::TooDeep => (
            format!(
                "Value error, Payload nests objects and arrays deeper than {} levels",
                crate::payload_check::MAX_PAYLOAD_DEPTH
            ),
            "value_error",
        ),
        PayloadProblem::TooLarge(n) => (
            format!(
                "Value error, Payload is {n} bytes serialized; at most {} are allowed",
                limits.max_payload_bytes
            ),
            "value_error",
        ),
    };
    FieldError::new(&["body", "payload"], msg, kind)
}

/// Client text echoed in a message is cut short so a huge value cannot make a
/// huge error body.
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> PublishRequest {
        PublishRequest::from_json(json.as_bytes()).expect("request parses")
    }

    fn errors_of(json: &str, limits: &Limits) -> Vec<FieldError> {
        validate(req(json), limits, &EventTypes::default())
            .expect_err("should be invalid")
            .0
    }

    #[test]
    fn occurred_at_in_the_past_is_kept_and_too_far_ahead_is_refused() {
        let at = |text: &str| {
            format!(
                r#"{{"event_type":"timer_tick","source":"t","payload":{{}},"occurred_at":"{text}"}}"#
            )
        };
        let v = validate(
            req(&at("2020-01-02T03:04:05Z")),
            &Limits::default(),
            &EventTypes::default(),
        )
        .expect("valid");
        assert_eq!(
            v.occurred_at,
            Timestamp::parse_canonical("2020-01-02T03:04:05Z")
        );
        let ahead = Timestamp::now().as_micros() + 301 * 1_000_000;
        let errors = errors_of(
            &at(&Timestamp::from_micros(ahead).to_string()),
            &Limits::default(),
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].loc, ["body", "occurred_at"]);
        assert_eq!(errors[0].kind, "datetime_future");
    }

    #[test]
    fn an_idempotency_key_has_1_to_its_most_characters() {
        let keyed = |key: &str| {
            format!(
                r#"{{"event_type":"timer_tick","source":"t","payload":{{}},"idempotency_key":"{key}"}}"#
            )
        };
        let most = "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS);
        let ok = validate(
            req(&keyed(&most)),
            &Limits::default(),
            &EventTypes::default(),
        );
        assert_eq!(
            ok.expect("valid").idempotency_key.as_deref(),
            Some(most.as_str())
        );
        for (key, kind) in [
            (String::new(), "string_too_short"),
            (format!("{most}k"), "string_too_long"),
        ] {
            let errors = errors_of(&keyed(&key), &Limits::default());
            assert_eq!(errors.len(), 1, "{key}");
            assert_eq!(errors[0].loc, ["body", "idempotency_key"]);
            assert_eq!(errors[0].kind, kind);
        }
    }

    #[test]
    fn a_valid_event_passes_with_its_payload_compacted() {
        let v = validate(
            req(r#"{"event_type":"timer_tick","source":"timer-service","session_id":"sess-7f3a","payload":{ "remaining_seconds" : 1799 }}"#), &Limits::default(), &EventTypes::default(),
        )
        .expect("valid");
        assert_eq!(v.event_type, EventType::TIMER_TICK);
        assert_eq!(v.payload.as_str(), r#"{"remaining_seconds":1799}"#);
        assert_eq!(v.user_id, None);
    }

    #[test]
    fn the_one_line_summary_names_each_field_with_its_reason() {
        let errors = validate(
            req(r#"{"event_type":"quiz_begun","source":"bad source!"}"#),
            &Limits::default(),
            &EventTypes::default(),
        )
        .expect_err("invalid");
        let line = errors.to_string();
        assert!(line.starts_with("event_type: "), "{line}");
        assert!(line.contains("; source: "), "{line}");
        assert_eq!(line.matches("; ").count(), errors.0.len() - 1, "{line}");
    }

    #[test]
    fn unknown_event_type_names_the_value_and_lists_the_valid_ones() {
        let errs = errors_of(
            r#"{"event_type":"quiz_begun","source":"q"}"#,
            &Limits::default(),
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].loc, ["body", "event_type"]);
        assert!(errs[0].msg.contains("quiz_begun"));
        assert!(errs[0].msg.contains("timer_tick"));
    }

    #[test]
    fn source_rules_are_length_and_pattern() {
        let limits = Limits::default();
        assert_eq!(
            errors_of(r#"{"event_type":"timer_tick","source":""}"#, &limits)[0].kind,
            "string_too_short"
        );
        let long = format!(
            r#"{{"event_type":"timer_tick","source":"{}"}}"#,
            "a".repeat(101)
        );
        assert_eq!(errors_of(&long, &limits)[0].kind, "string_too_long");
        assert_eq!(
            errors_of(r#"{"event_type":"timer_tick","source":"a b"}"#, &limits)[0].kind,
            "string_pattern_mismatch"
        );
        let ok = format!(
            r#"{{"event_type":"timer_tick","source":"{}"}}"#,
            "a".repeat(100)
        );
        assert!(validate(req(&ok), &limits, &EventTypes::default()).is_ok());
    }

    #[test]
    fn ids_longer_than_200_chars_are_refused_but_200_pass() {
        let limits = Limits::default();
        let at = format!(
            r#"{{"event_type":"timer_tick","source":"s","session_id":"{}","user_id":"{}"}}"#,
            "é".repeat(200),
            "u".repeat(200)
        );
        assert!(validate(req(&at), &limits, &EventTypes::default()).is_ok());
        let over = format!(
            r#"{{"event_type":"timer_tick","source":"s","user_id":"{}"}}"#,
            "u".repeat(201)
        );
        assert_eq!(errors_of(&over, &limits)[0].loc, ["body", "user_id"]);
    }

    #[test]
    fn payload_limits_follow_configuration() {
        let limits = Limits {
            max_payload_keys: 3,
            max_payload_bytes: 30,
            ..Limits::default()
        };
        assert!(validate(
            req(r#"{"event_type":"timer_tick","source":"s","payload":{"a":1,"b":2,"c":3}}"#),
            &limits,
            &EventTypes::default()
        )
        .is_ok());
        let errs = errors_of(
            r#"{"event_type":"timer_tick","source":"s","payload":{"a":1,"b":2,"c":3,"d":4}}"#,
            &limits,
        );
        assert_eq!(errs[0].loc, ["body", "payload"]);
        let errs = errors_of(
            r#"{"event_type":"timer_tick","source":"s","payload":{"a":"0123456789012345678901234567"}}"#,
            &limits,
        );
        assert!(errs[0].msg.contains("bytes"));
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let errs = errors_of(
            r#"{"event_type":"nope","source":"a b","payload":[1]}"#,
            &Limits::default(),
        );
        let fields: Vec<_> = errs.iter().map(|e| e.loc[1].as_str()).collect();
        assert_eq!(fields, ["event_type", "source", "payload"]);
    }

    #[test]
    fn missing_required_fields_are_named() {
        let errs = errors_of("{}", &Limits::default());
        assert_eq!(errs.len(), 2);
        assert!(errs.iter().all(|e| e.kind == "missing"));
    }

    #[test]
    fn echoed_values_are_truncated() {
        let long = "x".repeat(10_000);
        assert!(truncate_for_message(&long).len() < 100);
        assert_eq!(truncate_for_message("short"), "short");
    }
}
