//! The use cases decide what a caller may do, with fakes for the ports:
//! roles, scope on publish, query, subscribe, get and stats, the reasons
//! given, and rate limits kept per key, per token and per address.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ep_domain::{
    Caller, Denied, EventService, GetError, Limits, Operation, PublishError, PublishRequest,
    QueryError, QueryParams, RateLimitConfig, Refused, StatsError,
};
use ep_ports::{
    Event, EventId, EventType, Identity, MockBroadcaster, MockEventStore, NewEvent, OwnLimits,
    Payload, Principal, RateLimit, Role, Scope, ScopeField, Stats, Timestamp,
};

const ANSWER: &str = r#"{"event_type":"answer_submitted","source":"quiz-engine","session_id":"s1","user_id":"u1","payload":{}}"#;

fn request(json: &str) -> PublishRequest {
    PublishRequest::from_json(json.as_bytes()).expect("parses")
}

fn list(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| (*s).to_owned()).collect())
}

fn address(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

fn caller(identity: Identity, roles: &[Role], scope: Scope, from: u8) -> Caller {
    Caller::new(
        Principal::new(roles.to_vec())
            .with_identity(identity)
            .with_scope(scope),
        address(from),
    )
}

fn stored(seq: u64, source: &str, session: &str) -> Event {
    NewEvent {
        idempotency: None,
        occurred_at: None,
        id: EventId::new(format!("evt_{seq:032x}")),
        event_type: EventType::ANSWER_SUBMITTED,
        source: source.into(),
        session_id: Some(session.into()),
        user_id: Some("u1".into()),
        payload: Payload::empty(),
        timestamp: Timestamp::from_micros(1_795_773_600_000_000),
    }
    .into_event(seq)
}

/// A store that commits every batch, numbering events from 1.
fn committing_store() -> MockEventStore {
    let mut store = MockEventStore::new();
    let mut next = 0u64;
    store.expect_append().returning(move |batch| {
        Ok(batch
            .into_iter()
            .map(|e| {
                next += 1;
                e.into_event(next)
            })
            .collect())
    });
    store
}

fn service(store: MockEventStore, publish_limit: RateLimit) -> EventService {
    let mut broadcaster = MockBroadcaster::new();
    broadcaster.expect_publish().returning(|_| Ok(()));
    let generous = RateLimit {
        count: 1_000_000,
        per: Duration::from_secs(1),
    };
    EventService::start(
        Arc::new(store),
        Arc::new(broadcaster),
        Limits::default(),
        RateLimitConfig {
            publish: publish_limit,
            query: generous,
            admin: generous,
            ws_publish: generous,
            ..RateLimitConfig::default()
        },
    )
}

fn generous() -> RateLimit {
    RateLimit {
        count: 1_000_000,
        per: Duration::from_secs(1),
    }
}

async fn publish(svc: &EventService, who: &Caller, json: &str) -> Result<Arc<Event>, PublishError> {
    svc.publish(who, request(json), Operation::Publish)?
        .await
        .map(|p| p.event)
}

#[tokio::test]
async fn a_publish_outside_the_scope_or_without_the_role_is_refused_with_its_reason() {
    let svc = service(MockEventStore::new(), generous());
    let engine = caller(
        Identity::Key("quiz-engine".into()),
        &[Role::Publish],
        Scope {
            sources: list(&["timer"]),
            ..Scope::default()
        },
        1,
    );
    let refused = publish(&svc, &engine, ANSWER).await.expect_err("outside");
    let PublishError::Refused(Refused::Denied(denied)) = refused else {
        panic!("not a denial: {refused:?}");
    };
    assert_eq!(
        denied.to_string(),
        "source 'quiz-engine' is outside this credential's scope"
    );
    let no_session = caller(
        Identity::Token("t".into()),
        &[Role::Publish],
        Scope {
            session_ids: list(&["s1"]),
            ..Scope::default()
        },
        1,
    );
    let err = publish(
        &svc,
        &no_session,
        r#"{"event_type":"answer_submitted","source":"quiz-engine"}"#,
    )
    .await
    .expect_err("no session");
    assert_eq!(
        err.to_string(),
        "session_id (none) is outside this credential's scope"
    );
    let reader = caller(Identity::Anonymous, &[Role::Read], Scope::default(), 1);
    assert!(matches!(
        publish(&svc, &reader, ANSWER).await,
        Err(PublishError::Refused(Refused::Denied(Denied::MissingRole(
            Role::Publish
        ))))
    ));
    svc.shutdown().await;
}

#[tokio::test]
async fn limits_are_kept_per_key_per_token_and_per_address() {
    let svc = service(committing_store(), RateLimit::per_minute(2));
    let everything =
        |identity: Identity, from: u8| caller(identity, &Role::ALL, Scope::default(), from);
    let key_a = everything(Identity::Key("a".into()), 1);
    let key_b = everything(Identity::Key("b".into()), 1);
    let key_a_elsewhere = everything(Identity::Key("a".into()), 2);
    let token = everything(Identity::Token("teacher-7".into()), 1);
    let legacy = everything(Identity::LegacyKey, 1);
    let limited = |r: Result<Arc<Event>, PublishError>| {
        matches!(r, Err(PublishError::Refused(Refused::RateLimited(_))))
    };
    for _ in 0..2 {
        publish(&svc, &key_a, ANSWER)
            .await
            .expect("within a's limit");
    }
    // The key's allowance follows the key, whatever the address.
    assert!(limited(publish(&svc, &key_a_elsewhere, ANSWER).await));
    for who in [&key_b, &token, &legacy] {
        publish(&svc, who, ANSWER)
            .await
            .expect("an allowance of its own");
    }
    // The legacy key is limited by address: a second address is untouched.
    publish(&svc, &legacy, ANSWER)
        .await
        .expect("second of the burst");
    assert!(limited(publish(&svc, &legacy, ANSWER).await));
    let other_address = everything(Identity::LegacyKey, 3);
    publish(&svc, &other_address, ANSWER)
        .await
        .expect("another address");

    // A key's own limit replaces the default, and covers WebSocket publishes.
    let mut own = everything(Identity::Key("district".into()), 1);
    own.principal.limits = OwnLimits {
        publish: Some(RateLimit::per_minute(3)),
        query: None,
    };
    publish(&svc, &own, ANSWER).await.expect("1");
    publish(&svc, &own, ANSWER).await.expect("2");
    svc.publish(&own, request(ANSWER), Operation::WsPublish)
        .expect("3, over a WebSocket")
        .await
        .expect("committed");
    assert!(limited(publish(&svc, &own, ANSWER).await));
    assert!(matches!(
        svc.publish(&own, request(ANSWER), Operation::WsPublish),
        Err(PublishError::Refused(Refused::RateLimited(_)))
    ));
    svc.shutdown().await;
}

#[tokio::test]
async fn a_query_is_refused_outside_the_scope_and_narrowed_to_it_inside() {
    let scope = Scope {
        session_ids: list(&["s1", "s2"]),
        ..Scope::default()
    };
    let mut store = MockEventStore::new();
    let expected = scope.clone();
    store
        .expect_query()
        .withf(move |q| q.scope == expected && q.session_id.as_deref() != Some("s3"))
        .times(2)
        .returning(|_| Ok(Vec::new()));
    let svc = service(store, generous());
    let teacher = caller(Identity::Token("t".into()), &[Role::Read], scope, 1);
    let pairs = |p: &[(&str, &str)]| {
        QueryParams::from_pairs(p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    };
    assert_eq!(svc.query(&teacher, pairs(&[])).await, Ok(Vec::new()));
    assert_eq!(
        svc.query(&teacher, pairs(&[("session_id", "s2")])).await,
        Ok(Vec::new())
    );
    assert_eq!(
        svc.query(&teacher, pairs(&[("session_id", "s3")])).await,
        Err(QueryError::Refused(Refused::Denied(Denied::OutsideScope {
            field: ScopeField::SessionId,
            value: Some("s3".into()),
        })))
    );
    svc.shutdown().await;
}

/// A subscriber's filter goes through the same role and scope as a query:
/// `{}` is everything in the scope, a session outside it is refused, and a
/// caller without `read` subscribes to nothing.
#[tokio::test]
async fn a_subscription_is_narrowed_to_the_scope_and_refused_outside_it() {
    let svc = service(MockEventStore::new(), generous());
    let scope = Scope {
        session_ids: list(&["s1", "s2"]),
        ..Scope::default()
    };
    let teacher = caller(Identity::Token("t".into()), &[Role::Read], scope.clone(), 1);
    let everything = svc
        .subscription_filter(&teacher, &[], ep_ports::EventFilter::default())
        .expect("in scope");
    assert_eq!(everything.scope, scope);
    let outside = ep_ports::EventFilter {
        session_id: Some("s3".into()),
        ..ep_ports::EventFilter::default()
    };
    assert_eq!(
        svc.subscription_filter(&teacher, &[], outside),
        Err(Denied::OutsideScope {
            field: ScopeField::SessionId,
            value: Some("s3".into()),
        })
    );
    let producer = caller(
        Identity::Key("p".into()),
        &[Role::Publish],
        Scope::default(),
        2,
    );
    assert_eq!(
        svc.subscription_filter(&producer, &[], ep_ports::EventFilter::default()),
        Err(Denied::MissingRole(Role::Read))
    );
    svc.shutdown().await;
}

#[tokio::test]
async fn an_event_outside_the_scope_is_not_found_nor_resumed_from_and_stats_need_no_restriction() {
    let mut store = MockEventStore::new();
    store.expect_get().returning(|id| {
        Ok(Some(stored(
            if id.as_str().ends_with('1') { 1 } else { 2 },
            "quiz-engine",
            "s3",
        )))
    });
    store.expect_stats().returning(|_| {
        Ok(Stats {
            total_events: 0,
            events_since: 0,
            by_type: Vec::new(),
        })
    });
    let svc = service(store, generous());
    let teacher = caller(
        Identity::Token("t".into()),
        &[Role::Read],
        Scope {
            session_ids: list(&["s1"]),
            ..Scope::default()
        },
        1,
    );
    let id = format!("evt_{:032x}", 1);
    assert_eq!(svc.get(&teacher, &id).await, Err(GetError::NotFound));
    let reader = caller(Identity::Anonymous, &[Role::Read], Scope::default(), 1);
    assert_eq!(svc.get(&reader, &id).await.expect("inside").seq, 1);
    // A resume from an event id is a lookup like `get`: the same scope.
    let second = format!("evt_{:032x}", 2);
    let after = |id: &str| ep_domain::Resume::AfterEvent(id.to_owned());
    assert_eq!(
        svc.resume_point(&teacher, &after(&second)).await,
        Err(GetError::NotFound)
    );
    assert_eq!(svc.resume_point(&reader, &after(&second)).await, Ok(2));
    assert_eq!(
        svc.resume_point(&teacher, &ep_domain::Resume::AfterSeq(42))
            .await,
        Ok(42)
    );
    assert!(matches!(
        svc.stats(&teacher).await,
        Err(StatsError::Refused(Refused::Denied(Denied::Restricted)))
    ));
    assert!(svc.stats(&reader).await.is_ok());
    svc.shutdown().await;
}
