//! The domain's use cases against fakes of its ports: mockall mocks where a
//! call count or argument matters, a small gated store where timing does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ep_domain::{
    Caller, DeleteError, EventService, GetError, Limits, Operation, PublishError, PublishRequest,
    QueryError, QueryParams, RateLimitConfig,
};
use ep_ports::{
    Appended, BroadcastError, Broadcaster, Deletion, Event, EventBatch, EventFeed, EventFilter,
    EventId, EventQuery, EventStore, EventType, MockBroadcaster, MockEventStore, NewEvent, Stats,
    StoreError, Timestamp,
};
use mockall::predicate::{always, eq};
use tokio::sync::Semaphore;

const TICK: &str = r#"{"event_type":"timer_tick","source":"timer-service","session_id":"sess-7f3a","user_id":"stu-1042","payload":{"remaining_seconds":1799,"elapsed_seconds":1}}"#;

fn request(json: &str) -> PublishRequest {
    PublishRequest::from_json(json.as_bytes()).expect("parses")
}

/// Stores batches as a store does: each event gets the next seq, in order.
fn numbering() -> impl FnMut(Vec<NewEvent>) -> Vec<Event> + Send + 'static {
    let mut next = 0u64;
    move |batch| {
        batch
            .into_iter()
            .map(|e| {
                next += 1;
                e.into_event(next)
            })
            .collect()
    }
}

fn committing_store() -> MockEventStore {
    let mut store = MockEventStore::new();
    let mut number = numbering();
    store
        .expect_append()
        .returning(move |batch| Ok(number(batch)));
    store
}

fn quiet_broadcaster() -> MockBroadcaster {
    let mut b = MockBroadcaster::new();
    b.expect_publish().returning(|_| Ok(()));
    b.expect_ping().returning(|| Ok(()));
    b
}

fn service(store: impl EventStore, broadcaster: impl Broadcaster, limits: Limits) -> EventService {
    let generous = ep_ports::RateLimit {
        count: 1_000_000,
        per: Duration::from_secs(1),
    };
    EventService::start(
        Arc::new(store),
        Arc::new(broadcaster),
        limits,
        RateLimitConfig {
            publish: generous,
            query: generous,
            admin: generous,
            ws_publish: generous,
            ..RateLimitConfig::default()
        },
    )
}

#[tokio::test]
async fn an_invalid_event_never_reaches_the_store() {
    let mut store = MockEventStore::new();
    store.expect_append().never();
    let mut broadcaster = MockBroadcaster::new();
    broadcaster.expect_publish().never();
    let svc = service(store, broadcaster, Limits::default());
    let err = publish(
        &svc,
        request(r#"{"event_type":"quiz_begun","source":"quiz-engine"}"#),
    )
    .await
    .expect_err("invalid");
    assert!(matches!(err, PublishError::Invalid(_)));
    svc.shutdown().await;
}

#[tokio::test]
async fn a_valid_event_is_committed_once_then_broadcast() {
    let mut broadcaster = MockBroadcaster::new();
    broadcaster
        .expect_publish()
        .times(1)
        .withf(|batch| batch.len() == 1 && batch[0].seq == 1)
        .returning(|_| Ok(()));
    let svc = service(committing_store(), broadcaster, Limits::default());
    let event = publish(&svc, request(TICK)).await.expect("published");
    assert_eq!(event.seq, 1);
    assert_eq!(event.session_id.as_deref(), Some("sess-7f3a"));
    assert_eq!(
        event.payload.as_str(),
        r#"{"remaining_seconds":1799,"elapsed_seconds":1}"#
    );
    assert!(event.id.as_str().starts_with("evt_"));
    // Shutdown waits for the writer, so the broadcast has happened when the
    // mocks are checked on drop.
    svc.shutdown().await;
}

#[tokio::test]
async fn a_store_failure_becomes_a_store_error_and_nothing_is_broadcast() {
    let mut store = MockEventStore::new();
    store
        .expect_append()
        .times(1)
        .returning(|_| Err(StoreError::Unavailable("disk full".into())));
    let mut broadcaster = MockBroadcaster::new();
    broadcaster.expect_publish().never();
    let svc = service(store, broadcaster, Limits::default());
    let err = publish(&svc, request(TICK))
        .await
        .expect_err("store failed");
    assert_eq!(
        err,
        PublishError::Store(StoreError::Unavailable("disk full".into()))
    );
    assert_eq!(svc.router().status().queue_size, 0);
    svc.shutdown().await;
}

#[tokio::test]
async fn events_are_committed_in_acceptance_order_with_increasing_ids_and_timestamps() {
    let committed = Arc::new(Mutex::new(Vec::<NewEvent>::new()));
    let mut store = MockEventStore::new();
    let seen = Arc::clone(&committed);
    store.expect_append().returning(move |batch| {
        let mut seen = seen.lock().expect("lock");
        let base = seen.len() as u64;
        seen.extend(batch.iter().cloned());
        Ok(batch
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.into_event(base + i as u64 + 1))
            .collect())
    });
    let svc = service(store, quiet_broadcaster(), Limits::default());
    let receipts: Vec<_> = (0..50)
        .map(|_| enqueue(&svc, request(TICK)).expect("accepted"))
        .collect();
    for (i, receipt) in receipts.into_iter().enumerate() {
        assert_eq!(receipt.await.expect("committed").seq, i as u64 + 1);
    }
    svc.shutdown().await;
    let committed = committed.lock().expect("lock");
    assert!(committed
        .windows(2)
        .all(|w| w[0].id < w[1].id && w[0].timestamp <= w[1].timestamp));
}

/// A store whose appends (and delete steps) wait until the test lets them
/// through.
struct GatedStore {
    gate: Arc<Semaphore>,
    stored: Mutex<Vec<Event>>,
    /// A delete step takes a permit of its own.
    deletes: Arc<Semaphore>,
    /// Delete steps begun.
    delete_steps: Arc<AtomicUsize>,
}

impl GatedStore {
    fn new() -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        (
            Self {
                gate: Arc::clone(&gate),
                stored: Mutex::new(Vec::new()),
                deletes: Arc::new(Semaphore::new(0)),
                delete_steps: Arc::new(AtomicUsize::new(0)),
            },
            gate,
        )
    }
}

#[async_trait]
impl EventStore for GatedStore {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        self.gate.acquire().await.expect("gate open").forget();
        let mut stored = self.stored.lock().expect("lock");
        let out: Vec<Event> = batch
            .into_iter()
            .map(|e| e.into_event(stored.len() as u64 + 1))
            .collect();
        stored.extend(out.iter().cloned());
        Ok(out)
    }
    async fn append_unless_held(&self, batch: Vec<NewEvent>) -> Result<Appended, StoreError> {
        // Holds no keys: everything is stored.
        self.append(batch).await.map(Appended::Stored)
    }
    async fn get(&self, _: &EventId) -> Result<Option<Event>, StoreError> {
        Ok(None)
    }
    async fn query(&self, _: EventQuery) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }
    async fn after(&self, _: u64, _: EventFilter, _: usize) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }
    async fn stats(&self, _: Timestamp) -> Result<Stats, StoreError> {
        Ok(Stats {
            total_events: 0,
            events_since: 0,
            by_type: Vec::new(),
        })
    }
    async fn delete_some(&self, _: Deletion, _: usize) -> Result<u64, StoreError> {
        self.delete_steps.fetch_add(1, Ordering::SeqCst);
        self.deletes.acquire().await.expect("gate open").forget();
        Ok(0)
    }
    async fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.stored.lock().expect("lock").len() as u64)
    }
    fn shared_by_nodes(&self) -> bool {
        false
    }
    async fn probe_write(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        // A ping that never answers: the store is hung.
        std::future::pending().await
    }
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A service on a store whose appends wait for `gate`'s permits, with a
/// publish queue of `max_queue_size` events.
fn gated_service(max_queue_size: usize) -> (EventService, Arc<Semaphore>) {
    let (store, gate) = GatedStore::new();
    let limits = Limits {
        max_queue_size,
        ..Limits::default()
    };
    (service(store, quiet_broadcaster(), limits), gate)
}

#[tokio::test]
async fn a_full_queue_answers_queue_full_and_frees_up_after_commits() {
    let (svc, gate) = gated_service(3);
    let accepted: Vec<_> = (0..3)
        .map(|_| enqueue(&svc, request(TICK)).expect("room"))
        .collect();
    assert_eq!(svc.router().status().queue_size, 3);
    assert!(matches!(
        enqueue(&svc, request(TICK)),
        Err(PublishError::QueueFull)
    ));
    gate.add_permits(100);
    for receipt in accepted {
        receipt.await.expect("committed");
    }
    assert_eq!(svc.router().status().queue_size, 0);
    publish(&svc, request(TICK)).await.expect("room again");
    svc.shutdown().await;
}

/// A group (a batch, an envelope) is queued whole or not at all: it must fit
/// beside what is queued, and one larger than the queue is taken alone
/// when the queue is empty (else it could never be published).
#[tokio::test]
async fn a_group_is_queued_only_where_it_fits_whole_or_alone() {
    let (svc, gate) = gated_service(4);
    let group = |n| {
        svc.publish_all(
            &caller(),
            (0..n).map(|_| request(TICK)).collect(),
            Operation::Publish,
        )
    };
    let alone = group(6).expect("larger than the queue, into an empty one");
    assert_eq!(svc.router().status().queue_size, 6);
    assert!(matches!(
        enqueue(&svc, request(TICK)),
        Err(PublishError::QueueFull)
    ));
    gate.add_permits(1);
    assert_eq!(alone.await.expect("committed").len(), 6);
    let first = enqueue(&svc, request(TICK)).expect("room");
    assert!(matches!(group(4), Err(PublishError::QueueFull)));
    let fits = group(3).expect("fits exactly");
    assert_eq!(svc.router().status().queue_size, 4);
    gate.add_permits(100);
    first.await.expect("committed");
    assert_eq!(fits.await.expect("committed").len(), 3);
    svc.shutdown().await;
}

/// Limits of zero (a misconfiguration the domain does not trust the
/// configuration to catch) are taken as one: the service starts and
/// publishes.
#[tokio::test]
async fn a_queue_and_batch_of_zero_are_taken_as_one() {
    let svc = service(
        committing_store(),
        quiet_broadcaster(),
        Limits {
            max_queue_size: 0,
            max_batch: 0,
            ..Limits::default()
        },
    );
    publish(&svc, request(TICK)).await.expect("committed");
    publish(&svc, request(TICK)).await.expect("committed");
    svc.shutdown().await;
}

/// An envelope is all or none: one broken event refuses it whole, each
/// error under `["body", "data", <index>]`, and nothing is queued.
#[tokio::test]
async fn one_broken_event_refuses_a_group_whole_naming_its_index() {
    let mut store = MockEventStore::new();
    store.expect_append().never();
    store.expect_append_unless_held().never();
    let svc = service(store, quiet_broadcaster(), Limits::default());
    let bad = r#"{"event_type":"quiz_begun","source":"q"}"#;
    let refused = svc.publish_all(
        &caller(),
        vec![request(TICK), request(bad), request(TICK)],
        Operation::Publish,
    );
    let Err(PublishError::Invalid(errors)) = refused else {
        panic!("not refused as invalid");
    };
    let locs: Vec<&[String]> = errors.0.iter().map(|e| e.loc.as_slice()).collect();
    assert_eq!(locs, [["body", "data", "1", "event_type"]]);
    assert_eq!(svc.router().status().queue_size, 0);
}

#[tokio::test]
async fn shutdown_commits_everything_accepted_then_refuses_new_events() {
    let (store, gate) = GatedStore::new();
    let svc = Arc::new(service(store, quiet_broadcaster(), Limits::default()));
    let accepted: Vec<_> = (0..5)
        .map(|_| enqueue(&svc, request(TICK)).expect("room"))
        .collect();
    let stopping = tokio::spawn({
        let svc = Arc::clone(&svc);
        async move { svc.shutdown().await }
    });
    // Wait until shutdown has closed the intake, then let the writer go on.
    while enqueue(&svc, request(TICK)).is_ok() {
        tokio::task::yield_now().await;
    }
    gate.add_permits(100);
    stopping.await.expect("shutdown");
    for receipt in accepted {
        receipt.await.expect("committed before exit");
    }
    assert!(matches!(
        enqueue(&svc, request(TICK)),
        Err(PublishError::ShuttingDown)
    ));
}

#[tokio::test(start_paused = true)]
async fn readiness_reports_a_hung_store_as_not_ready_after_a_bounded_wait() {
    let (store, _gate) = GatedStore::new();
    let svc = service(store, quiet_broadcaster(), Limits::default());
    let started = tokio::time::Instant::now();
    let readiness = svc.readiness().await;
    assert!(!readiness.store_ok);
    assert!(started.elapsed() <= Duration::from_secs(3));
}

#[tokio::test]
async fn readiness_reports_a_failing_store() {
    let mut store = MockEventStore::new();
    store
        .expect_ping()
        .returning(|| Err(StoreError::Unavailable("gone".into())));
    let svc = service(store, quiet_broadcaster(), Limits::default());
    assert!(!svc.readiness().await.store_ok);
}

/// A store that answers pings but whose appends fail with `Full` until the
/// test frees space (`space` set), as on a full disk.
fn disk_full_store(space: Arc<std::sync::atomic::AtomicBool>) -> MockEventStore {
    use std::sync::atomic::Ordering;
    let mut store = MockEventStore::new();
    store.expect_ping().returning(|| Ok(()));
    let (room, mut number) = (Arc::clone(&space), numbering());
    store.expect_append().returning(move |batch| {
        if !room.load(Ordering::Acquire) {
            return Err(StoreError::Full("database or disk is full".into()));
        }
        Ok(number(batch))
    });
    store
}

#[tokio::test(start_paused = true)]
async fn readiness_is_not_ready_while_commits_fail_and_ready_after_the_next_commit() {
    let space = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut store = disk_full_store(Arc::clone(&space));
    // Probes fail too while the disk is full.
    store
        .expect_probe_write()
        .returning(|| Err(StoreError::Full("database or disk is full".into())));
    let svc = service(store, quiet_broadcaster(), Limits::default());
    assert!(svc.readiness().await.is_ready(), "ready before any failure");
    let err = publish(&svc, request(TICK)).await.expect_err("disk full");
    assert!(matches!(err, PublishError::Store(StoreError::Full(_))));
    let readiness = svc.readiness().await;
    assert!(readiness.store_ok, "the store still answers reads");
    assert!(!readiness.is_ready());
    assert!(matches!(
        readiness.commit_failure,
        Some(StoreError::Full(_))
    ));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(
        !svc.readiness().await.is_ready(),
        "a failed probe keeps it so"
    );
    space.store(true, std::sync::atomic::Ordering::Release);
    publish(&svc, request(TICK)).await.expect("space again");
    let readiness = svc.readiness().await;
    assert!(readiness.is_ready(), "{readiness:?}");
    assert_eq!(readiness.commit_failure, None);
    svc.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn with_no_publisher_left_a_write_probe_a_second_at_most_sees_the_store_recover() {
    let space = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut store = disk_full_store(Arc::clone(&space));
    let probes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (room, count) = (Arc::clone(&space), Arc::clone(&probes));
    store.expect_probe_write().returning(move || {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if room.load(std::sync::atomic::Ordering::Acquire) {
            Ok(())
        } else {
            Err(StoreError::Full("database or disk is full".into()))
        }
    });
    let svc = service(store, quiet_broadcaster(), Limits::default());
    publish(&svc, request(TICK)).await.expect_err("disk full");
    for _ in 0..10 {
        assert!(!svc.readiness().await.is_ready());
    }
    assert_eq!(
        probes.load(std::sync::atomic::Ordering::Acquire),
        1,
        "one probe within the second, however often readiness is asked"
    );
    space.store(true, std::sync::atomic::Ordering::Release);
    assert!(
        !svc.readiness().await.is_ready(),
        "not probed again within the second"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(svc.readiness().await.is_ready(), "the probe commits");
    assert_eq!(probes.load(std::sync::atomic::Ordering::Acquire), 2);
    // Once ready, readiness probes no more.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(svc.readiness().await.is_ready());
    }
    assert_eq!(probes.load(std::sync::atomic::Ordering::Acquire), 2);
    svc.shutdown().await;
}

#[tokio::test]
async fn a_batch_refused_for_a_duplicate_id_says_nothing_of_the_store() {
    let mut store = MockEventStore::new();
    store.expect_ping().returning(|| Ok(()));
    store.expect_probe_write().never();
    store
        .expect_append()
        .returning(|batch| Err(StoreError::DuplicateId(batch[0].id.clone())));
    let svc = service(store, quiet_broadcaster(), Limits::default());
    publish(&svc, request(TICK)).await.expect_err("duplicate");
    assert!(svc.readiness().await.is_ready());
    svc.shutdown().await;
}

#[tokio::test]
async fn the_writer_waits_a_few_yields_to_grow_a_batch_and_never_exceeds_the_cap() {
    let sizes = Arc::new(Mutex::new(Vec::<usize>::new()));
    let mut store = MockEventStore::new();
    let (seen, mut number) = (Arc::clone(&sizes), numbering());
    store.expect_append().returning(move |batch| {
        seen.lock().expect("lock").push(batch.len());
        Ok(number(batch))
    });
    let limits = Limits {
        max_batch: 3,
        ..Limits::default()
    };
    let svc = Arc::new(service(store, quiet_broadcaster(), limits));
    // One publisher queueing events each time it runs (one at a time, then
    // three at once while the writer lingers over a batch of one): on this
    // single-threaded runtime it runs exactly when the writer yields.
    let publisher = {
        let svc = Arc::clone(&svc);
        tokio::spawn(async move {
            let mut receipts = Vec::new();
            for per_run in [1, 1, 1, 1, 3] {
                for _ in 0..per_run {
                    receipts.push(enqueue(&svc, request(TICK)).expect("accepted"));
                }
                tokio::task::yield_now().await;
            }
            for receipt in receipts {
                receipt.await.expect("committed");
            }
        })
    };
    publisher.await.expect("publisher");
    svc.shutdown().await;
    let sizes = sizes.lock().expect("lock").clone();
    assert_eq!(sizes.iter().sum::<usize>(), 7);
    assert!(sizes.iter().all(|&n| n <= 3), "over the cap: {sizes:?}");
    assert!(
        sizes[0] > 1,
        "events that came while the writer lingered joined the first batch: {sizes:?}"
    );
}

#[tokio::test]
async fn readiness_reports_a_disconnected_broadcaster_while_publishing_still_commits() {
    let mut broadcaster = MockBroadcaster::new();
    broadcaster
        .expect_publish()
        .returning(|_| Err(ep_ports::BroadcastError::Unavailable("bus down".into())));
    broadcaster
        .expect_ping()
        .returning(|| Err(ep_ports::BroadcastError::Unavailable("bus down".into())));
    let mut store = committing_store();
    store.expect_ping().returning(|| Ok(()));
    let svc = service(store, broadcaster, Limits::default());
    let event = publish(&svc, request(TICK))
        .await
        .expect("committed without the bus");
    assert_eq!(event.seq, 1);
    let readiness = svc.readiness().await;
    assert!(readiness.store_ok);
    assert!(!readiness.is_ready());
    assert_eq!(
        readiness.broadcaster,
        Err(ep_ports::BroadcastError::Unavailable("bus down".into()))
    );
    svc.shutdown().await;
}

/// A bus that takes nothing and never answers (a paused server), counting
/// the batches offered to it.
#[derive(Default)]
struct FrozenBus {
    offered: Arc<AtomicUsize>,
}

#[async_trait]
impl Broadcaster for FrozenBus {
    async fn publish(&self, _: EventBatch) -> Result<(), BroadcastError> {
        self.offered.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }

    async fn subscribe(&self) -> Result<EventFeed, BroadcastError> {
        Err(BroadcastError::Unavailable("frozen".into()))
    }

    async fn ping(&self) -> Result<(), BroadcastError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_frozen_bus_holds_commits_for_a_moment_once_not_for_each_batch() {
    let bus = FrozenBus::default();
    let offered = Arc::clone(&bus.offered);
    let svc = service(committing_store(), bus, Limits::default());
    let started = tokio::time::Instant::now();
    // Without a bound on the wait, the second publish would wait for ever
    // behind the first batch's broadcast.
    tokio::time::timeout(Duration::from_secs(60), async {
        for n in 1..=20u64 {
            let event = publish(&svc, request(TICK)).await.expect("committed");
            assert_eq!(event.seq, n);
        }
    })
    .await
    .expect("every publish answered");
    // One wait of the bus's budget (200 ms) behind the first batch, then
    // the bus rests (1 s) and the rest go by the store only.
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    assert_eq!(offered.load(Ordering::SeqCst), 1);
    assert_eq!(svc.router().bus_skipped_events(), 20);
    // After its rest the bus is offered a batch again (and misses again).
    tokio::time::sleep(Duration::from_secs(1)).await;
    publish(&svc, request(TICK)).await.expect("committed");
    tokio::time::timeout(Duration::from_secs(60), async {
        while offered.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("offered again after the rest");
}

#[tokio::test]
async fn a_query_for_an_unregistered_type_or_a_bad_since_never_reaches_the_store() {
    let mut store = MockEventStore::new();
    store.expect_query().never();
    let svc = service(store, quiet_broadcaster(), Limits::default());
    let unknown = QueryParams {
        event_type: Some("quiz_begun".into()),
        ..QueryParams::default()
    };
    assert_eq!(svc.query(&caller(), unknown).await, Ok(Vec::new()));
    let bad_since = QueryParams {
        since: Some("last tuesday".into()),
        ..QueryParams::default()
    };
    assert_eq!(
        svc.query(&caller(), bad_since).await,
        Err(QueryError::BadTimestamp("since"))
    );
}

#[tokio::test]
async fn a_malformed_id_never_reaches_the_store() {
    let mut store = MockEventStore::new();
    store.expect_get().never();
    let svc = service(store, quiet_broadcaster(), Limits::default());
    for id in ["abc", "", &format!("evt_{}", "0".repeat(100))] {
        assert_eq!(svc.get(&caller(), id).await, Err(GetError::NotFound));
    }
}

#[tokio::test]
async fn a_query_reaches_the_store_with_parsed_filters() {
    let mut store = MockEventStore::new();
    store
        .expect_query()
        .withf(|q| {
            q.event_type == Some(ep_ports::EventType::TIMER_TICK)
                && q.session_id.as_deref() == Some("sess-7f3a")
                && q.limit == 5
                && q.since.map(|t| t.to_string()) == Some("2026-11-27T08:00:00.000000Z".into())
        })
        .times(1)
        .returning(|_| Ok(Vec::new()));
    let svc = service(store, quiet_broadcaster(), Limits::default());
    let params = QueryParams {
        event_type: Some("timer_tick".into()),
        session_id: Some("sess-7f3a".into()),
        limit: Some("5".into()),
        since: Some("2026-11-27T10:00:00+02:00".into()),
        ..QueryParams::default()
    };
    svc.query(&caller(), params).await.expect("query");
}

#[tokio::test]
async fn stats_count_the_last_sixty_minutes() {
    let mut store = MockEventStore::new();
    store
        .expect_stats()
        .withf(|since| {
            let age = Timestamp::now().as_micros() - since.as_micros();
            (3_599_000_000..=3_601_000_000).contains(&age)
        })
        .times(1)
        .returning(|_| {
            Ok(Stats {
                total_events: 7,
                events_since: 2,
                by_type: Vec::new(),
            })
        });
    let svc = service(store, quiet_broadcaster(), Limits::default());
    let stats = svc.stats(&caller()).await.expect("stats");
    assert_eq!((stats.total_events, stats.events_last_hour), (7, 2));
}

#[tokio::test]
async fn delete_passes_the_instant_of_an_offset_timestamp_and_stops_at_the_seq_it_started_at() {
    let mut store = MockEventStore::new();
    let instant = Timestamp::parse_canonical("2026-11-27T08:00:00Z").expect("instant");
    store.expect_last_seq().returning(|| Ok(40));
    store
        .expect_delete_some()
        .with(eq(Deletion::through(40).before(instant)), always())
        .times(1)
        .returning(|_, _| Ok(4));
    store
        .expect_delete_some()
        .with(eq(Deletion::through(40)), always())
        .times(1)
        .returning(|_, _| Ok(9));
    let svc = service(store, quiet_broadcaster(), Limits::default());
    assert_eq!(
        svc.delete(&caller(), Some("2026-11-27T10:00:00+02:00"))
            .await,
        Ok(4)
    );
    assert_eq!(svc.delete(&caller(), None).await, Ok(9));
    assert!(svc.delete(&caller(), Some("soon")).await.is_err());
}

#[tokio::test]
async fn an_erasure_deletes_the_students_events_up_to_the_seq_it_started_at() {
    let mut store = MockEventStore::new();
    store.expect_last_seq().returning(|| Ok(40));
    store
        .expect_delete_some()
        .with(eq(Deletion::through(40).of_user("u 1/é")), always())
        .times(2)
        .returning(|_, limit| Ok(if limit == 1_000 { 1_000 } else { 3 }));
    let svc = service(store, quiet_broadcaster(), Limits::default());
    assert_eq!(svc.erase(&caller(), "u 1/é").await, Ok(1_003));
}

#[tokio::test]
async fn an_erasure_outside_the_admins_students_or_of_no_student_touches_nothing() {
    // No expectation: any call to the store fails the test.
    let svc = service(
        MockEventStore::new(),
        quiet_broadcaster(),
        Limits::default(),
    );
    let school = Caller::new(
        ep_ports::Principal::new([ep_ports::Role::Admin]).with_scope(ep_ports::Scope {
            user_ids: Some(vec!["u1".to_owned()]),
            ..ep_ports::Scope::default()
        }),
        std::net::IpAddr::from([127, 0, 0, 1]),
    );
    assert!(matches!(
        svc.erase(&school, "u2").await,
        Err(DeleteError::Refused(_))
    ));
    let reader = Caller::new(
        ep_ports::Principal::new([ep_ports::Role::Read]),
        std::net::IpAddr::from([127, 0, 0, 1]),
    );
    assert!(matches!(
        svc.erase(&reader, "u1").await,
        Err(DeleteError::Refused(_))
    ));
    for bad in [String::new(), "x".repeat(201)] {
        match svc.erase(&caller(), &bad).await {
            Err(DeleteError::Invalid(errors)) => {
                assert_eq!(errors.0[0].loc, ["path", "user_id"]);
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

/// A fake store holding `left` selected events that deletes at most the
/// step's limit per call and records each limit.
fn stepping_store(left: u64, steps: Arc<Mutex<Vec<usize>>>) -> MockEventStore {
    let mut store = MockEventStore::new();
    store.expect_last_seq().returning(|| Ok(1_000_000));
    let left = Arc::new(Mutex::new(left));
    store.expect_delete_some().returning(move |_, limit| {
        steps.lock().expect("steps").push(limit);
        let mut left = left.lock().expect("left");
        let n = (*left).min(limit as u64);
        *left -= n;
        Ok(n)
    });
    store
}

#[tokio::test(start_paused = true)]
async fn a_large_delete_runs_in_bounded_steps_until_one_comes_back_short() {
    let steps = Arc::new(Mutex::new(Vec::new()));
    let svc = service(
        stepping_store(100_000, Arc::clone(&steps)),
        quiet_broadcaster(),
        Limits::default(),
    );
    assert_eq!(svc.delete(&caller(), None).await, Ok(100_000));
    let steps = steps.lock().expect("steps").clone();
    assert!(steps.len() > 5, "{steps:?}");
    assert_eq!(steps[0], 1_000, "the first step is small");
    assert!(
        steps.iter().all(|&s| (100..=20_000).contains(&s)),
        "every step within bounds: {steps:?}"
    );
}

#[tokio::test]
async fn a_delete_that_fails_part_way_reports_the_error() {
    let mut store = MockEventStore::new();
    store.expect_last_seq().returning(|| Ok(10));
    let mut calls = 0;
    store.expect_delete_some().returning(move |_, limit| {
        calls += 1;
        if calls == 1 {
            Ok(limit as u64)
        } else {
            Err(StoreError::Unavailable("gone".into()))
        }
    });
    let svc = service(store, quiet_broadcaster(), Limits::default());
    assert!(matches!(
        svc.delete(&caller(), None).await,
        Err(DeleteError::Store(StoreError::Unavailable(_)))
    ));
}

#[tokio::test]
async fn a_second_delete_waits_for_the_first_to_end() {
    let (store, _) = GatedStore::new();
    let (deletes, steps) = (Arc::clone(&store.deletes), Arc::clone(&store.delete_steps));
    let svc = Arc::new(service(store, quiet_broadcaster(), Limits::default()));
    let spawn_delete = |before: Option<&'static str>| {
        let svc = Arc::clone(&svc);
        tokio::spawn(async move { svc.delete(&caller(), before).await })
    };
    let first = spawn_delete(None);
    while steps.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let second = spawn_delete(Some("2026-01-01T00:00:00Z"));
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        steps.load(Ordering::SeqCst),
        1,
        "the second delete started a step while the first ran"
    );
    deletes.add_permits(1);
    assert_eq!(first.await.expect("first"), Ok(0));
    deletes.add_permits(1);
    assert_eq!(second.await.expect("second"), Ok(0));
    assert_eq!(steps.load(Ordering::SeqCst), 2);
}

/// A caller that may do everything, from one address.
fn caller() -> Caller {
    Caller::new(
        ep_ports::Principal::everything(),
        std::net::IpAddr::from([127, 0, 0, 1]),
    )
}

/// Queues an event as a REST publish by [`caller`]; the future resolves
/// once it is committed.
fn enqueue(
    svc: &EventService,
    request: PublishRequest,
) -> Result<
    impl std::future::Future<Output = Result<ep_domain::Published, PublishError>>,
    PublishError,
> {
    svc.publish(&caller(), request, Operation::Publish)
}

/// Publishes an event as [`caller`] and waits for its commit.
async fn publish(svc: &EventService, request: PublishRequest) -> Result<Arc<Event>, PublishError> {
    enqueue(svc, request)?.await.map(|p| p.event)
}

#[tokio::test]
async fn a_batch_is_committed_in_one_transaction_whatever_the_writer_s_batch_size() {
    // Groups are never split, even one larger than the writer's batch, and
    // a single event queued behind a full batch waits for the next one.
    let mut store = MockEventStore::new();
    let mut number = numbering();
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&sizes);
    store.expect_append().returning(move |batch| {
        seen.lock().expect("lock").push(batch.len());
        Ok(number(batch))
    });
    let limits = Limits {
        max_batch: 2,
        ..Limits::default()
    };
    let service = service(store, quiet_broadcaster(), limits);
    let caller = caller();
    let bad = r#"{"event_type":"quiz_begun","source":"q"}"#;
    let batch = service
        .publish_batch(
            &caller,
            vec![request(TICK), request(bad), request(TICK), request(TICK)],
            Operation::PublishBatch,
        )
        .expect("queued");
    let single = service
        .publish(&caller, request(TICK), Operation::Publish)
        .expect("queued");
    let outcomes = batch.await.expect("committed");
    assert_eq!(outcomes.len(), 4);
    assert!(matches!(outcomes[1], Err(PublishError::Invalid(_))));
    let seqs: Vec<u64> = [0, 2, 3]
        .iter()
        .map(|&i| outcomes[i].as_ref().expect("stored").seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(single.await.expect("stored").seq, 4);
    assert_eq!(*sizes.lock().expect("lock"), [3, 1]);
}

#[tokio::test]
async fn a_batch_over_max_batch_events_is_refused_whole() {
    let mut store = MockEventStore::new();
    store.expect_append().never();
    let limits = Limits {
        max_batch_events: 2,
        ..Limits::default()
    };
    let service = service(store, quiet_broadcaster(), limits);
    let refused = service.publish_batch(
        &caller(),
        vec![request(TICK), request(TICK), request(TICK)],
        Operation::PublishBatch,
    );
    assert!(matches!(refused, Err(PublishError::Invalid(_))));
}

#[tokio::test]
async fn a_repeat_answers_the_first_event_unbroadcast_and_other_content_is_a_conflict() {
    // A store that keeps keys as the port says: a held key returns its event.
    let mut store = MockEventStore::new();
    let mut number = numbering();
    let held: Arc<Mutex<Vec<(String, Event)>>> = Arc::default();
    store.expect_append().returning(move |batch| {
        let mut keys = held.lock().expect("lock");
        let mut out = Vec::new();
        for new in batch {
            let key = new.idempotency.as_ref().map(|k| k.key.clone());
            if let Some((_, first)) = keys.iter().find(|(k, _)| Some(k) == key.as_ref()) {
                out.push(first.clone());
                continue;
            }
            let event = number(vec![new]).remove(0);
            if let Some(key) = key {
                keys.push((key, event.clone()));
            }
            out.push(event);
        }
        Ok(out)
    });
    let broadcast = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&broadcast);
    let mut broadcaster = MockBroadcaster::new();
    broadcaster.expect_publish().returning(move |batch| {
        counted.fetch_add(batch.len(), Ordering::SeqCst);
        Ok(())
    });
    let service = service(store, broadcaster, Limits::default());
    let keyed = |key: &str, json: &str| {
        let mut r = request(json);
        r.set_idempotency_key(key.to_owned());
        r
    };
    let publish = |r| async {
        service
            .publish(&caller(), r, Operation::Publish)
            .expect("queued")
            .await
    };
    let first = publish(keyed("k", TICK)).await.expect("stored");
    assert!(!first.repeat);
    let again = publish(keyed("k", TICK)).await.expect("a repeat");
    assert!(again.repeat);
    assert_eq!(again.event, first.event);
    let other = TICK.replace("1799", "1798");
    match publish(keyed("k", &other)).await {
        Err(PublishError::Conflict(id)) => assert_eq!(id, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    publish(keyed("k2", TICK)).await.expect("another key");
    assert_eq!(
        broadcast.load(Ordering::SeqCst),
        2,
        "only what was stored is broadcast"
    );
}

fn type_stats(event_type: EventType) -> ep_ports::TypeStats {
    ep_ports::TypeStats {
        event_type,
        count: 10,
        last_seen: Timestamp::now(),
    }
}

/// Whether `before` is `age` before now, within a few seconds.
fn ago(before: Option<Timestamp>, age: Duration) -> bool {
    let Some(before) = before else { return false };
    let expected = Timestamp::now().as_micros() - age.as_micros() as i64;
    (before.as_micros() - expected).abs() < 5_000_000
}

#[tokio::test(start_paused = true)]
async fn retention_deletes_each_stored_type_older_than_its_age_while_holding_the_lease() {
    const DAY: Duration = Duration::from_secs(86_400);
    let hint = EventType::stored("hint_requested");
    let mut store = MockEventStore::new();
    store.expect_stats().returning(move |_| {
        Ok(Stats {
            total_events: 30,
            events_since: 0,
            by_type: vec![
                type_stats(EventType::QUIZ_STARTED),
                type_stats(EventType::TIMER_TICK),
                type_stats(hint),
            ],
        })
    });
    store.expect_last_seq().returning(|| Ok(50));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    store
        .expect_delete_some()
        .returning(move |what: Deletion, _| {
            assert_eq!((what.through_seq, &what.user_id), (50, &None));
            let t = what.event_type.expect("retention names a type");
            let age = if t == EventType::TIMER_TICK {
                7 * DAY
            } else {
                365 * DAY
            };
            assert!(ago(what.before, age), "{t:?}: {:?}", what.before);
            seen.lock().expect("asked").push(t);
            Ok(if t == EventType::TIMER_TICK { 3 } else { 0 })
        });
    let mut jobs = ep_ports::MockJobState::new();
    jobs.expect_try_lease()
        .withf(|job, holder, _| job == "retention" && holder == "node-a")
        .returning(|_, _, _| Ok(true));
    let svc = service(store, quiet_broadcaster(), Limits::default());
    let policy =
        ep_domain::RetentionPolicy::parse("timer_tick=7d,*=365d", EventType::known, String::new)
            .expect("policy");
    let task = svc
        .start_retention(
            policy,
            Arc::new(jobs),
            Duration::from_secs(60),
            "node-a".into(),
        )
        .expect("a policy that deletes starts a task");
    while svc.retention_report().passes == 0 {
        tokio::task::yield_now().await;
    }
    task.abort();
    let report = svc.retention_report();
    assert_eq!(report.deleted.get(&EventType::TIMER_TICK), Some(&3));
    assert_eq!(
        report.deleted.len(),
        1,
        "nothing counted where nothing went"
    );
    assert_eq!(report.failures, 0);
    let mut asked = asked.lock().expect("asked").clone();
    asked.sort();
    let mut expected = vec![EventType::TIMER_TICK, EventType::QUIZ_STARTED, hint];
    expected.sort();
    assert_eq!(
        asked, expected,
        "every stored type, a type no longer registered too"
    );
}

#[tokio::test(start_paused = true)]
async fn retention_without_the_lease_deletes_nothing_and_a_policy_that_keeps_everything_runs_nothing(
) {
    // No expectation on the store: any call fails the test.
    let svc = service(
        MockEventStore::new(),
        quiet_broadcaster(),
        Limits::default(),
    );
    let mut jobs = ep_ports::MockJobState::new();
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tries);
    jobs.expect_try_lease().returning(move |_, _, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(false)
    });
    let policy =
        ep_domain::RetentionPolicy::parse("*=1d", EventType::known, String::new).expect("policy");
    let task = svc
        .start_retention(
            policy,
            Arc::new(jobs),
            Duration::from_secs(60),
            "node-b".into(),
        )
        .expect("started");
    while tries.load(Ordering::SeqCst) < 3 {
        tokio::time::advance(Duration::from_secs(60)).await;
        tokio::task::yield_now().await;
    }
    task.abort();
    assert_eq!(svc.retention_report().passes, 0);
    let keep_all =
        ep_domain::RetentionPolicy::parse("", EventType::known, String::new).expect("empty");
    assert!(svc
        .start_retention(
            keep_all,
            Arc::new(ep_ports::MockJobState::new()),
            Duration::from_secs(60),
            "node-b".into()
        )
        .is_none());
}
