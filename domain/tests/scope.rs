//! A subscriber's scope, as a property: with a random scope and random
//! filter updates, over random publishes, a subscriber never receives an
//! event outside its scope and misses none inside its filter and scope; a
//! filter naming a value outside the scope is refused and the old one stays.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ep_domain::{narrow, Denied, Hub, HubConfig, Next, SubscriberGauge, Subscription};
use ep_ports::{Event, EventFilter, EventId, EventType, Payload, Scope, Timestamp};
use proptest::prelude::*;

const TYPES: [EventType; 3] = [
    EventType::TIMER_TICK,
    EventType::ANSWER_SUBMITTED,
    EventType::QUIZ_STARTED,
];
const SOURCES: [&str; 2] = ["quiz-engine", "timer"];
const SESSIONS: [&str; 3] = ["s1", "s2", "s3"];
const USERS: [&str; 3] = ["u1", "u2", "u3"];

/// An event drawn from the small universe (session and user may be absent).
#[derive(Debug, Clone)]
struct Draw {
    event_type: usize,
    source: usize,
    session: Option<usize>,
    user: Option<usize>,
}

fn draw() -> impl Strategy<Value = Draw> {
    (
        0..TYPES.len(),
        0..SOURCES.len(),
        proptest::option::weighted(0.9, 0..SESSIONS.len()),
        proptest::option::weighted(0.9, 0..USERS.len()),
    )
        .prop_map(|(event_type, source, session, user)| Draw {
            event_type,
            source,
            session,
            user,
        })
}

/// A list of some of `names`, or none (absent restricts nothing).
fn some_of(names: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<String>>> {
    proptest::option::of(proptest::sample::subsequence(
        names.to_vec(),
        0..=names.len(),
    ))
    .prop_map(|list| list.map(|l| l.into_iter().map(str::to_owned).collect()))
}

fn type_names() -> Vec<&'static str> {
    TYPES.iter().map(|t| t.as_str()).collect()
}

fn scope() -> impl Strategy<Value = Scope> {
    let types: &'static [&'static str] = Box::leak(type_names().into_boxed_slice());
    (
        some_of(types),
        some_of(&SOURCES),
        some_of(&SESSIONS),
        some_of(&USERS),
    )
        .prop_map(|(event_types, sources, session_ids, user_ids)| Scope {
            event_types,
            sources,
            session_ids,
            user_ids,
        })
}

/// A filter as a subscriber sends it: type names, one session, one user.
#[derive(Debug, Clone)]
struct Asked {
    types: Option<Vec<usize>>,
    session: Option<usize>,
    user: Option<usize>,
}

fn asked() -> impl Strategy<Value = Asked> {
    (
        proptest::option::of(proptest::sample::subsequence(vec![0, 1, 2], 1..=3)),
        proptest::option::of(0..SESSIONS.len()),
        proptest::option::of(0..USERS.len()),
    )
        .prop_map(|(types, session, user)| Asked {
            types,
            session,
            user,
        })
}

impl Asked {
    fn names(&self) -> Vec<String> {
        self.types
            .iter()
            .flatten()
            .map(|t| TYPES[*t].as_str().to_owned())
            .collect()
    }

    fn filter(&self) -> EventFilter {
        EventFilter {
            event_types: self
                .types
                .as_ref()
                .map(|ts| ts.iter().map(|t| TYPES[*t]).collect()),
            session_id: self.session.map(|s| SESSIONS[s].to_owned()),
            user_id: self.user.map(|u| USERS[u].to_owned()),
            payload: None,
            scope: Scope::default(),
        }
    }

    /// Whether every value it names lies inside `scope`.
    fn inside(&self, scope: &Scope) -> bool {
        let listed = |list: &Option<Vec<String>>, value: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
        };
        self.names().iter().all(|t| listed(&scope.event_types, t))
            && self
                .session
                .is_none_or(|s| listed(&scope.session_ids, SESSIONS[s]))
            && self.user.is_none_or(|u| listed(&scope.user_ids, USERS[u]))
    }
}

#[derive(Debug, Clone)]
enum Step {
    Publish(Vec<Draw>),
    Update(Asked),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => proptest::collection::vec(draw(), 1..8).prop_map(Step::Publish),
        1 => asked().prop_map(Step::Update),
    ]
}

fn event(seq: u64, d: &Draw) -> Arc<Event> {
    Arc::new(Event {
        occurred_at: None,
        id: EventId::new(format!("evt_{seq:032x}")),
        event_type: TYPES[d.event_type],
        source: SOURCES[d.source].to_owned(),
        session_id: d.session.map(|s| SESSIONS[s].to_owned()),
        user_id: d.user.map(|u| USERS[u].to_owned()),
        payload: Payload::empty(),
        timestamp: Timestamp::from_micros(i64::try_from(seq).unwrap_or(0)),
        seq,
    })
}

/// Every seq the subscription has ready now (time is paused: the timeout
/// fires only once nothing else can happen).
async fn ready(sub: &mut Subscription<u64>) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(next) = tokio::time::timeout(Duration::from_millis(20), sub.next()).await {
        match next.expect("no store error") {
            Next::Event { seq, .. } => out.push(seq),
            Next::Evicted { .. } => panic!("evicted"),
        }
    }
    out
}

fn run(scope: Scope, first: Asked, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let hub: Hub<u64> = Hub::new(
            Arc::new(support::Log::default()),
            SubscriberGauge::default(),
            HubConfig::default(),
            Box::new(|e: &Event| e.seq),
        );
        // The filter in force: what the subscriber asked, narrowed.
        let mut current = match narrow(&scope, &first.names(), first.filter()) {
            Ok(filter) => {
                prop_assert!(first.inside(&scope), "{first:?} accepted outside {scope:?}");
                filter
            }
            Err(Denied::OutsideScope { .. }) => {
                prop_assert!(!first.inside(&scope), "{first:?} refused inside {scope:?}");
                // The subscriber then subscribes with `{}`.
                narrow(&scope, &[], EventFilter::default()).expect("{} is always inside")
            }
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other}"))),
        };
        prop_assert_eq!(&current.scope, &scope);
        let mut sub = hub.subscribe(current.clone(), None).expect("room");
        let mut seq = 0;
        for step in steps {
            match step {
                Step::Update(asked) => match narrow(&scope, &asked.names(), asked.filter()) {
                    Ok(filter) => {
                        prop_assert!(asked.inside(&scope));
                        sub.update_filter(filter.clone());
                        current = filter;
                    }
                    Err(_) => prop_assert!(!asked.inside(&scope)),
                },
                Step::Publish(draws) => {
                    let events: Vec<Arc<Event>> = draws
                        .iter()
                        .map(|d| {
                            seq += 1;
                            event(seq, d)
                        })
                        .collect();
                    hub.dispatch(&events.clone().into());
                    let got = ready(&mut sub).await;
                    let want: Vec<u64> = events
                        .iter()
                        .filter(|e| current.matches(e))
                        .map(|e| e.seq)
                        .collect();
                    for e in events.iter().filter(|e| got.contains(&e.seq)) {
                        prop_assert!(scope.allows(e), "delivered outside the scope: {e:?}");
                    }
                    prop_assert_eq!(got, want);
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_subscriber_sees_exactly_what_its_filter_and_scope_allow(
        scope in scope(),
        first in asked(),
        steps in proptest::collection::vec(step(), 1..12),
    ) {
        run(scope, first, steps)?;
    }
}
