//! Property tests: no input, however broken, makes the domain's parsers and
//! validators panic; every refusal says which field is wrong and why; every
//! accepted value comes out as it went in. Each property compares the
//! domain's answer with an independent statement of the contract's rule
//! (an oracle written here), so that a change to a rule fails it.

use chrono::{NaiveDate, TimeDelta};
use ep_domain::{
    parse_instant, CheckedQuery, DeleteError, EventService, InstantError, PublishRequest,
    QueryError, QueryParams, Resume, SubscribeRequest, MAX_FILTER_TYPES,
};
use ep_ports::{EventId, EventType, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// The contract's limits, as clients know them.
const MAX_ID_CHARS: usize = 200;
const MAX_TYPE_CHARS: usize = 50;
const MAX_LIMIT: i64 = 1_000;

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

/// Text of about `max` characters: just under, at, or over a limit.
fn text_near(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![".{0,20}", (max - 2..=max + 2).prop_map(|n| "é".repeat(n)),]
}

/// A value for a filter key: mostly of the right shape, sometimes not.
fn filter_value(key: &'static str) -> BoxedStrategy<Value> {
    let name = prop_oneof![
        prop::sample::select(EventType::BUILT_IN.to_vec()).prop_map(|t| t.as_str().to_owned()),
        text_near(MAX_TYPE_CHARS),
    ];
    let wrong = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(1.5)),
        Just(Value::Array(vec![])),
        Just(Value::Object(Map::new())),
    ];
    match key {
        "event_types" => prop_oneof![
            4 => prop::collection::vec(name.prop_map(Value::String), 0..6).prop_map(Value::Array),
            1 => prop::collection::vec(Just(Value::from("timer_tick")), MAX_FILTER_TYPES..MAX_FILTER_TYPES + 2)
                .prop_map(Value::Array),
            1 => prop::collection::vec(prop_oneof![Just(Value::from("quiz_started")), wrong.clone()], 1..3)
                .prop_map(Value::Array),
            1 => wrong.clone(),
            1 => ".{0,10}".prop_map(Value::String),
        ]
        .boxed(),
        "since_seq" => prop_oneof![
            any::<u64>().prop_map(Value::from),
            (i64::MIN..0).prop_map(Value::from),
            wrong.clone(),
            "[0-9]{1,4}".prop_map(Value::String),
        ]
        .boxed(),
        "last_event_id" => prop_oneof![
            3 => text_near(EventId::MAX_LEN).prop_map(Value::String),
            1 => wrong.clone(),
        ]
        .boxed(),
        _ => prop_oneof![
            3 => text_near(MAX_ID_CHARS).prop_map(Value::String),
            1 => wrong,
        ]
        .boxed(),
    }
}

/// A filter message: each key present or not.
fn filter_object() -> impl Strategy<Value = Map<String, Value>> {
    let keys = [
        "event_types",
        "session_id",
        "user_id",
        "since_seq",
        "last_event_id",
    ];
    let entries: Vec<_> = keys
        .into_iter()
        .map(|k| prop::option::of(filter_value(k)).prop_map(move |v| (k, v)))
        .collect();
    entries.prop_map(|entries| {
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect()
    })
}

/// The contract's rules for a filter message, stated independently:
/// the wrong keys, or what the filter must be.
struct FilterOracle {
    wrong: Vec<&'static str>,
    event_types: Option<Vec<EventType>>,
    session_id: Option<String>,
    user_id: Option<String>,
    resume: Option<Resume>,
}

fn filter_oracle(obj: &Map<String, Value>) -> FilterOracle {
    let mut wrong = Vec::new();
    let event_types = match obj.get("event_types") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            match names {
                Some(names)
                    if items.len() <= MAX_FILTER_TYPES
                        && names.iter().all(|n| n.chars().count() <= MAX_TYPE_CHARS) =>
                {
                    let mut types: Vec<EventType> = Vec::new();
                    for t in names.iter().filter_map(|n| EventType::known(n)) {
                        if !types.contains(&t) {
                            types.push(t);
                        }
                    }
                    (!items.is_empty()).then_some(types)
                }
                _ => {
                    wrong.push("event_types");
                    None
                }
            }
        }
        Some(_) => {
            wrong.push("event_types");
            None
        }
    };
    let mut string = |key: &'static str, max: usize| match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= max => Some(s.clone()),
        Some(_) => {
            wrong.push(key);
            None
        }
    };
    let session_id = string("session_id", MAX_ID_CHARS);
    let user_id = string("user_id", MAX_ID_CHARS);
    let last_event_id = string("last_event_id", EventId::MAX_LEN);
    let since_seq = match obj.get("since_seq") {
        None | Some(Value::Null) => None,
        Some(v) => {
            if v.as_u64().is_none() {
                wrong.push("since_seq");
            }
            v.as_u64()
        }
    };
    let resume = since_seq
        .map(Resume::AfterSeq)
        .or(last_event_id.map(Resume::AfterEvent));
    // payload: an object of at most 16 keys of at most 200 characters, each
    // a scalar (a string of at most 200 characters) or a list of 1 to 64.
    let short = |s: &str| s.chars().count() <= 200;
    let scalar = |v: &Value| match v {
        Value::String(s) => short(s),
        Value::Number(_) | Value::Bool(_) | Value::Null => true,
        _ => false,
    };
    match obj.get("payload") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o))
            if o.len() <= 16
                && o.iter().all(|(k, v)| {
                    short(k)
                        && match v {
                            Value::Array(items) => {
                                (1..=64).contains(&items.len()) && items.iter().all(scalar)
                            }
                            other => scalar(other),
                        }
                }) => {}
        Some(_) => wrong.push("payload"),
    }
    FilterOracle {
        wrong,
        event_types,
        session_id,
        user_id,
        resume,
    }
}

/// Query parameters: known names with values near their limits, and others.
fn query_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let pair = prop_oneof![
        text_near(MAX_TYPE_CHARS).prop_map(|v| ("event_type", v)),
        prop::sample::select(EventType::BUILT_IN.to_vec())
            .prop_map(|t| ("event_type", t.as_str().to_owned())),
        text_near(MAX_ID_CHARS).prop_map(|v| ("session_id", v)),
        text_near(MAX_ID_CHARS).prop_map(|v| ("user_id", v)),
        prop_oneof![
            (-2i64..=1_002).prop_map(|n| n.to_string()),
            prop::sample::select(vec![-1i64, 0, 1, 2, 999, 1_000, 1_001])
                .prop_map(|n| n.to_string()),
            Just(" 7 ".to_owned()),
            ".{0,6}",
        ]
        .prop_map(|v| ("limit", v)),
        prop_oneof![instant_text(), ".{0,30}"].prop_map(|v| ("since", v)),
        ".{0,20}".prop_map(|v| ("other", v)),
    ];
    prop::collection::vec(pair, 0..8)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The parts of a generated instant, and its text.
#[derive(Debug, Clone)]
struct Instant {
    year: i32,
    month: u32,
    day: u32,
    hms: (u32, u32, u32),
    /// Fraction digits as written.
    fraction: String,
    /// Offset east of UTC in minutes, `None` for none written; and whether
    /// it is written `Z`.
    offset: Option<(i32, bool)>,
    text: String,
}

impl Instant {
    /// The instant in microseconds since the epoch.
    fn micros(&self) -> i64 {
        let date = NaiveDate::from_ymd_opt(self.year, self.month, self.day).expect("valid date");
        let (h, m, s) = self.hms;
        let mut micros = date
            .and_hms_opt(h, m, s)
            .expect("valid time")
            .and_utc()
            .timestamp_micros();
        let digits: String = self
            .fraction
            .chars()
            .chain("000000".chars())
            .take(6)
            .collect();
        micros += digits.parse::<i64>().expect("digits");
        let offset = self.offset.map_or(0, |(minutes, _)| minutes);
        micros
            - TimeDelta::minutes(i64::from(offset))
                .num_microseconds()
                .expect("small")
    }
}

fn instant() -> impl Strategy<Value = Instant> {
    let year = prop_oneof![
        4 => 0i32..=9_999,
        1 => prop::sample::select(vec![0, 1, 9_998, 9_999, 10_000, 10_001, -1]),
    ];
    let offset = prop_oneof![
        Just(None),
        Just(Some((0, true))),
        (-(14 * 60)..=14 * 60i32).prop_map(|m| Some((m, false))),
    ];
    (
        year,
        1u32..=12,
        1u32..=28,
        (0u32..24, 0u32..60, 0u32..60),
        "[0-9]{0,9}",
        offset,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_filter_map(
            "RFC 3339's Z takes four-digit years only",
            |(year, month, day, hms, fraction, offset, space, colon)| {
                let four_digits = (0..=9_999).contains(&year);
                if matches!(offset, Some((_, true))) && !four_digits {
                    return None;
                }
                let year_text = if four_digits {
                    format!("{year:04}")
                } else if year < 0 {
                    format!("-{:04}", -year)
                } else {
                    format!("+{year}")
                };
                let (h, m, s) = hms;
                let sep = if space { ' ' } else { 'T' };
                let frac = if fraction.is_empty() {
                    String::new()
                } else {
                    format!(".{fraction}")
                };
                let zone = match offset {
                    None => String::new(),
                    Some((_, true)) => "Z".to_owned(),
                    Some((minutes, false)) => {
                        let sign = if minutes < 0 { '-' } else { '+' };
                        let (oh, om) = (minutes.abs() / 60, minutes.abs() % 60);
                        if colon {
                            format!("{sign}{oh:02}:{om:02}")
                        } else {
                            format!("{sign}{oh:02}{om:02}")
                        }
                    }
                };
                let text =
                    format!("{year_text}-{month:02}-{day:02}{sep}{h:02}:{m:02}:{s:02}{frac}{zone}");
                Some(Instant {
                    year,
                    month,
                    day,
                    hms,
                    fraction,
                    offset,
                    text,
                })
            },
        )
}

fn instant_text() -> impl Strategy<Value = String> {
    instant().prop_map(|i| i.text)
}

/// What the contract says of an accepted instant: inside years 0000-9999,
/// and its canonical text reads back as itself.
fn assert_accepted_instant(text: &str, t: Timestamp) -> Result<(), TestCaseError> {
    prop_assert!(
        (Timestamp::MIN..=Timestamp::MAX).contains(&t),
        "{text} → {t}"
    );
    prop_assert_eq!(parse_instant(&t.to_string()), Ok(t), "{} round-trips", t);
    prop_assert_eq!(EventService::parse_before(Some(text)), Ok(Some(t)));
    Ok(())
}

/// A refused instant is refused the same way as `before`, naming it.
fn assert_refused_before(text: &str, error: InstantError) -> Result<(), TestCaseError> {
    match (error, EventService::parse_before(Some(text))) {
        (InstantError::Unparseable, Err(DeleteError::BadTimestamp("before"))) => Ok(()),
        (InstantError::OutOfRange, Err(DeleteError::Invalid(errors))) => {
            prop_assert_eq!(errors.0.len(), 1);
            prop_assert_eq!(&errors.0[0].loc, &["query", "before"]);
            prop_assert_eq!(errors.0[0].kind, "datetime_out_of_range");
            Ok(())
        }
        (error, other) => Err(TestCaseError::fail(format!(
            "{text}: {error:?} but before gives {other:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_publish_parser(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(errors) = PublishRequest::from_json(&body) {
            prop_assert!(!errors.0.is_empty());
            prop_assert!(errors.0.iter().all(|e| !e.msg.is_empty() && e.loc.first().map(String::as_str) == Some("body")));
        }
    }

    #[test]
    fn arbitrary_json_never_panics_parsing_or_validation(value in json_value()) {
        let body = value.to_string();
        match PublishRequest::from_json(body.as_bytes()) {
            Err(errors) => prop_assert!(!errors.0.is_empty()),
            Ok(request) => {
                let limits = ep_domain::Limits { max_payload_keys: 3, max_payload_bytes: 200, ..Default::default() };
                if let Err(ep_domain::PublishError::Invalid(errors)) = validate_with(request, limits) {
                    prop_assert!(!errors.0.is_empty());
                    prop_assert!(errors.0.iter().all(|e| !e.msg.is_empty() && e.loc.first().map(String::as_str) == Some("body")));
                }
            }
        }
    }

    #[test]
    fn a_filter_is_accepted_exactly_when_every_key_is_right_and_then_means_what_was_sent(
        obj in filter_object()
    ) {
        let oracle = filter_oracle(&obj);
        match SubscribeRequest::from_object(&obj) {
            Ok(request) => {
                prop_assert!(oracle.wrong.is_empty(), "accepted although {:?} are wrong: {:?}", oracle.wrong, obj);
                prop_assert_eq!(request.filter.event_types, oracle.event_types);
                prop_assert_eq!(request.filter.session_id, oracle.session_id);
                prop_assert_eq!(request.filter.user_id, oracle.user_id);
                prop_assert_eq!(request.resume, oracle.resume);
            }
            Err(e) => {
                prop_assert!(!oracle.wrong.is_empty(), "refused a right filter {:?}: {}", obj, e);
                let names = |key: &str| e.0.contains(key) || (key == "event_types" && e.0.contains("event type"));
                prop_assert!(oracle.wrong.iter().any(|k| names(k)), "'{}' names none of {:?}", e, oracle.wrong);
            }
        }
    }

    #[test]
    fn arbitrary_json_filters_are_accepted_exactly_when_every_key_is_right(value in json_value()) {
        if let Value::Object(map) = &value {
            let oracle = filter_oracle(map);
            prop_assert_eq!(SubscribeRequest::from_object(map).is_ok(), oracle.wrong.is_empty(), "{:?}", map);
        }
    }

    #[test]
    fn query_parameters_are_refused_naming_each_bad_one_or_become_exactly_that_query(
        pairs in query_pairs()
    ) {
        let last = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut bad = Vec::new();
        for (name, max) in [("event_type", MAX_TYPE_CHARS), ("session_id", MAX_ID_CHARS), ("user_id", MAX_ID_CHARS)] {
            if last(name).is_some_and(|v| v.chars().count() > max) {
                bad.push(name);
            }
        }
        let limit = match last("limit") {
            None => Some(100),
            Some(text) => match text.trim().parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n as usize),
                _ => { bad.push("limit"); None }
            },
        };
        let since = last("since").map(|text| parse_instant(&text));
        if matches!(since, Some(Err(InstantError::OutOfRange))) {
            bad.push("since");
        }
        let outcome = EventService::check_query(QueryParams::from_pairs(pairs.clone()));
        match outcome {
            Err(QueryError::Invalid(errors)) => {
                let mut named: Vec<&str> = errors.0.iter().map(|e| {
                    assert_eq!(e.loc.first().map(String::as_str), Some("query"));
                    assert!(!e.msg.is_empty());
                    e.loc[1].as_str()
                }).collect();
                named.sort_unstable();
                bad.sort_unstable();
                prop_assert_eq!(named, bad);
            }
            Err(QueryError::BadTimestamp(name)) => {
                prop_assert!(bad.is_empty(), "{:?} reported as a bad timestamp before {:?}", pairs, bad);
                prop_assert_eq!(name, "since");
                prop_assert_eq!(since, Some(Err(InstantError::Unparseable)));
            }
            Err(QueryError::Store(e)) => prop_assert!(false, "no store is asked: {}", e),
            Err(QueryError::Refused(e)) => prop_assert!(false, "no caller is checked: {}", e),
            Ok(checked) => {
                prop_assert!(bad.is_empty(), "accepted although {:?} are bad", bad);
                let since = since.transpose().expect("an accepted since parses");
                match (last("event_type").map(|t| EventType::known(&t)), checked) {
                    (Some(None), CheckedQuery::NothingMatches) => {}
                    (event_type, CheckedQuery::Run(q)) => {
                        prop_assert_eq!(q.event_type, event_type.flatten());
                        prop_assert_eq!(q.session_id, last("session_id"));
                        prop_assert_eq!(q.user_id, last("user_id"));
                        prop_assert_eq!(Some(q.limit), limit);
                        prop_assert_eq!(q.since, since);
                    }
                    (event_type, checked) => prop_assert!(false, "{:?} gave {:?}", event_type, checked),
                }
            }
        }
    }

    #[test]
    fn a_written_instant_parses_to_itself_inside_years_0000_to_9999_and_is_422_outside(
        instant in instant()
    ) {
        let micros = instant.micros();
        let inside = (Timestamp::MIN.as_micros()..=Timestamp::MAX.as_micros()).contains(&micros);
        match parse_instant(&instant.text) {
            Ok(t) => {
                prop_assert!(inside, "{} accepted as {}", instant.text, t);
                prop_assert_eq!(t.as_micros(), micros, "{}", instant.text);
                assert_accepted_instant(&instant.text, t)?;
            }
            Err(e) => {
                prop_assert!(!inside, "{} refused: {}", instant.text, e);
                prop_assert_eq!(e, InstantError::OutOfRange, "{}", instant.text);
                assert_refused_before(&instant.text, e)?;
            }
        }
    }

    #[test]
    fn arbitrary_text_is_an_instant_that_round_trips_or_a_refusal_that_says_which(
        text in prop_oneof![".{0,80}", "[0-9+: TZ.-]{0,30}"]
    ) {
        match parse_instant(&text) {
            Ok(t) => assert_accepted_instant(&text, t)?,
            Err(e) => assert_refused_before(&text, e)?,
        }
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
        let service = EventService::start(
            store,
            broadcaster,
            limits,
            ep_domain::RateLimitConfig::default(),
        );
        // A caller whose scope allows nothing: a valid event is refused
        // after validation and never queued, so no port is reached.
        let nowhere = ep_ports::Scope {
            sources: Some(Vec::new()),
            ..ep_ports::Scope::default()
        };
        let caller = ep_domain::Caller::new(
            ep_ports::Principal::everything().with_scope(nowhere),
            std::net::IpAddr::from([127, 0, 0, 1]),
        );
        let outcome = match service.publish(&caller, request, ep_domain::Operation::Publish) {
            Err(ep_domain::PublishError::Refused(_)) => Ok(()),
            Err(e) => Err(e),
            Ok(_) => panic!("an event outside the caller's scope was queued"),
        };
        service.shutdown().await;
        outcome
    })
}
