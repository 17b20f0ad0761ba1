//! Property tests: no input, however broken, makes the domain's parsers and
//! validators panic, and every refusal says why.

use ep_domain::{parse_instant, EventService, PublishRequest, QueryParams, SubscribeRequest};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec!["timer_tick", "quiz_started", "x", ""])
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event_type".to_owned()),
                    Just("source".to_owned()),
                    Just("session_id".to_owned()),
                    Just("user_id".to_owned()),
                    Just("payload".to_owned()),
                    Just("event_types".to_owned()),
                    Just("since_seq".to_owned()),
                    Just("last_event_id".to_owned()),
                    ".{0,12}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Parsing either succeeds or says why it did not.
fn check_publish(body: &[u8]) {
    if let Err(errors) = PublishRequest::from_json(body) {
        assert!(!errors.0.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_publish_parser(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_publish(&body);
    }

    #[test]
    fn arbitrary_json_never_panics_parsing_or_validation(value in json_value()) {
        let body = value.to_string();
        check_publish(body.as_bytes());
        if let Ok(request) = PublishRequest::from_json(body.as_bytes()) {
            let limits = ep_domain::Limits { max_payload_keys: 3, max_payload_bytes: 200, ..Default::default() };
            if let Err(ep_domain::PublishError::Invalid(errors)) = validate_with(request, limits) {
                prop_assert!(!errors.0.is_empty());
                prop_assert!(errors.0.iter().all(|e| !e.msg.is_empty() && e.loc.first().map(String::as_str) == Some("body")));
            }
        }
    }

    #[test]
    fn arbitrary_filters_never_panic(value in json_value()) {
        if let Value::Object(map) = &value {
            let _ = SubscribeRequest::from_object(map);
        }
    }

    #[test]
    fn arbitrary_query_parameters_never_panic(pairs in prop::collection::vec(
        (prop_oneof![Just("event_type"), Just("session_id"), Just("user_id"), Just("limit"), Just("since"), Just("other")], ".{0,80}"),
        0..8,
    )) {
        let params = QueryParams::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
        let _ = EventService::check_query(params);
    }

    #[test]
    fn arbitrary_text_never_panics_the_timestamp_parser(text in ".{0,80}") {
        let _ = parse_instant(&text);
        let _ = EventService::parse_before(Some(&text));
    }
}

/// Validates on a service wired to fakes (validation reaches no port).
fn validate_with(
    request: PublishRequest,
    limits: ep_domain::Limits,
) -> Result<(), ep_domain::PublishError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = std::sync::Arc::new(ep_ports::MockEventStore::new());
        let broadcaster = std::sync::Arc::new(ep_ports::MockBroadcaster::new());
        let service = EventService::start(store, broadcaster, limits);
        let outcome = service.validate(request).map(drop);
        service.shutdown().await;
        outcome
    })
}
