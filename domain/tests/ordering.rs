//! Delivery across nodes, against fakes: the feed brings batches of several
//! nodes out of order, twice, or not at all, and every subscriber still gets
//! every committed event once, in seq order, within a bounded time, the
//! store (a mockall fake here) filling what the feed lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ep_domain::{Hub, HubConfig, Next, SubscriberGauge, Subscription};
use ep_ports::{
    Event, EventBatch, EventFilter, EventId, EventType, FeedItem, MockEventStore, Payload,
    StoreError, Timestamp,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

fn event(seq: u64) -> Event {
    Event {
        occurred_at: None,
        id: EventId::new(format!("evt_{seq:032x}")),
        event_type: EventType::TIMER_TICK,
        source: "quiz-engine".into(),
        session_id: Some("s".into()),
        user_id: Some("u".into()),
        payload: Payload::empty(),
        timestamp: Timestamp::from_micros(seq as i64),
        seq,
    }
}

fn batch(seqs: impl IntoIterator<Item = u64>) -> FeedItem {
    let events: EventBatch = seqs.into_iter().map(|s| Arc::new(event(s))).collect();
    FeedItem::Batch(events)
}

/// What the shared store holds, and how often it was read.
#[derive(Default)]
struct Shared {
    committed: Mutex<Vec<Event>>,
    reads: AtomicUsize,
    /// Reads that fail before they succeed again.
    failures_left: AtomicUsize,
}

impl Shared {
    fn commit(&self, seqs: impl IntoIterator<Item = u64>) {
        self.committed
            .lock()
            .expect("lock")
            .extend(seqs.into_iter().map(event));
    }
}

/// A mockall store answering `last_seq` with `start` and `after` from
/// `shared`.
fn store(shared: &Arc<Shared>, start: u64) -> MockEventStore {
    let mut store = MockEventStore::new();
    store.expect_last_seq().returning(move || Ok(start));
    let shared = Arc::clone(shared);
    store
        .expect_after()
        .returning(move |after, filter: EventFilter, limit| {
            shared.reads.fetch_add(1, Ordering::AcqRel);
            if shared
                .failures_left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(StoreError::Unavailable("store restarting".into()));
            }
            let committed = shared.committed.lock().expect("lock");
            Ok(committed
                .iter()
                .filter(|e| e.seq > after && filter.matches(e))
                .take(limit)
                .cloned()
                .collect())
        });
    store
}

/// A hub on `store` whose feed the test writes, with one subscriber.
fn node(store: MockEventStore) -> (mpsc::UnboundedSender<FeedItem>, Subscription<u64>, Hub<u64>) {
    let hub = Hub::new(
        Arc::new(store),
        SubscriberGauge::default(),
        HubConfig::default(),
        Box::new(|e: &Event| e.seq),
    );
    let subscriber = hub.subscribe(EventFilter::default(), None).expect("room");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let feed = Box::pin(futures_stream(move |cx| rx.poll_recv(cx)));
    tokio::spawn(hub.clone().run(feed));
    (tx, subscriber, hub)
}

/// A stream from a poll function.
fn futures_stream<T, F>(poll: F) -> impl futures_core::Stream<Item = T> + Send
where
    F: FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Option<T>> + Send + Unpin,
{
    struct PollStream<F>(F);
    impl<T, F> futures_core::Stream for PollStream<F>
    where
        F: FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Option<T>> + Unpin,
    {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            (self.0)(cx)
        }
    }
    PollStream(poll)
}

/// The seqs of the next `n` events the subscriber gets, and when the last
/// came. Time is paused: waiting costs nothing, and the deadline only
/// guards against a hang.
async fn receive(sub: &mut Subscription<u64>, n: usize) -> (Vec<u64>, Instant) {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Ok(Ok(Next::Event { seq, .. })) => got.push(seq),
            Ok(Ok(Next::Evicted { .. })) => panic!("evicted"),
            Ok(Err(e)) => panic!("store error: {e}"),
            Err(_) => panic!("only {got:?} arrived"),
        }
    }
    (got, Instant::now())
}

/// Nothing more arrives (within a minute of paused time).
async fn nothing_more(sub: &mut Subscription<u64>) {
    let more = tokio::time::timeout(Duration::from_secs(60), sub.next()).await;
    assert!(more.is_err(), "unexpected: {more:?}");
}

#[tokio::test(start_paused = true)]
async fn batches_of_several_nodes_out_of_order_reach_subscribers_in_seq_order() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=9);
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    for b in [batch(4..=6), batch(1..=3), batch(7..=9)] {
        feed.send(b).expect("feed");
    }
    let (got, _) = receive(&mut sub, 9).await;
    assert_eq!(got, (1..=9).collect::<Vec<_>>());
    assert_eq!(
        shared.reads.load(Ordering::Acquire),
        0,
        "the hole filled from the feed: no read of the store"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_events_twice_are_delivered_once() {
    let shared = Arc::new(Shared::default());
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    for b in [batch(1..=3), batch(1..=3), batch(2..=5), batch([4])] {
        feed.send(b).expect("feed");
    }
    assert_eq!(receive(&mut sub, 5).await.0, [1, 2, 3, 4, 5]);
    nothing_more(&mut sub).await;
}

#[tokio::test(start_paused = true)]
async fn a_lost_batch_is_read_from_the_store_soon_and_what_followed_it_comes_after() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=9);
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    let started = Instant::now();
    // 4..=6 was published by a node but never reached this one.
    for b in [batch(1..=3), batch(7..=9)] {
        feed.send(b).expect("feed");
    }
    let (got, at) = receive(&mut sub, 9).await;
    assert_eq!(got, (1..=9).collect::<Vec<_>>());
    assert!(
        at - started <= Duration::from_millis(200),
        "took {:?}",
        at - started
    );
    // A late copy of the lost batch changes nothing.
    feed.send(batch(4..=6)).expect("feed");
    nothing_more(&mut sub).await;
}

/// A hole longer than one page of the store's answer (1,000 events) is
/// read page after page: a full page is never taken for the end of what
/// the store holds (which would deliver what waits behind the hole and
/// skip the rest of it for good).
#[tokio::test(start_paused = true)]
async fn a_hole_of_more_than_a_page_is_read_to_its_end() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=1_002);
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    feed.send(batch([1_002])).expect("feed");
    let (got, _) = receive(&mut sub, 1_002).await;
    assert_eq!(got, (1..=1_002).collect::<Vec<_>>());
    assert_eq!(shared.reads.load(Ordering::Acquire), 2, "two pages");
    nothing_more(&mut sub).await;
}

#[tokio::test(start_paused = true)]
async fn a_node_that_dies_between_its_commit_and_its_publish_leaves_no_hole_for_long() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=6);
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    // 4..=6 committed, never broadcast, and nothing is published after it.
    feed.send(batch(1..=3)).expect("feed");
    let started = Instant::now();
    let (got, at) = receive(&mut sub, 6).await;
    assert_eq!(got, (1..=6).collect::<Vec<_>>());
    assert!(
        at - started <= Duration::from_secs(1),
        "took {:?}",
        at - started
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_that_dies_mid_batch_while_others_publish_leaves_no_hole() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=9);
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    // Node A's batch 1..=6 went out in two pieces and A died after the
    // first; node B goes on with 7..=9.
    feed.send(batch(1..=3)).expect("feed");
    feed.send(batch(7..=9)).expect("feed");
    assert_eq!(receive(&mut sub, 9).await.0, (1..=9).collect::<Vec<_>>());
    nothing_more(&mut sub).await;
}

#[tokio::test(start_paused = true)]
async fn a_gap_the_feed_reports_is_filled_from_the_store_at_once() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=6);
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    feed.send(batch(1..=2)).expect("feed");
    assert_eq!(receive(&mut sub, 2).await.0, [1, 2]);
    let reported = Instant::now();
    // The feed reconnected: 3..=5 were lost without a trace.
    feed.send(FeedItem::Gap).expect("feed");
    let (got, at) = receive(&mut sub, 4).await;
    assert_eq!(got, [3, 4, 5, 6]);
    assert!(
        at - reported < Duration::from_millis(10),
        "no waiting for a grace"
    );
    feed.send(batch([6])).expect("feed");
    nothing_more(&mut sub).await;
}

#[tokio::test(start_paused = true)]
async fn a_store_that_fails_while_filling_is_retried_about_once_a_second() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=4);
    shared.failures_left.store(3, Ordering::Release);
    let (feed, mut sub, _hub) = node(store(&shared, 0));
    let started = Instant::now();
    feed.send(batch([1])).expect("feed");
    feed.send(batch([4])).expect("feed");
    let (got, at) = receive(&mut sub, 4).await;
    assert_eq!(got, [1, 2, 3, 4]);
    let waited = at - started;
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_secs(4),
        "three failed reads, then the fourth: {waited:?}"
    );
    assert_eq!(shared.reads.load(Ordering::Acquire), 4, "no busy retrying");
}

#[tokio::test(start_paused = true)]
async fn a_node_starts_after_the_stores_last_seq() {
    let shared = Arc::new(Shared::default());
    shared.commit(1..=100);
    let (feed, mut sub, _hub) = node(store(&shared, 100));
    // Committed before this node started: not live events for it.
    feed.send(batch(99..=100)).expect("feed");
    feed.send(batch(101..=102)).expect("feed");
    shared.commit(101..=102);
    assert_eq!(receive(&mut sub, 2).await.0, [101, 102]);
    nothing_more(&mut sub).await;
}

#[tokio::test(start_paused = true)]
async fn a_quiet_feed_costs_one_read_of_the_store_every_half_second() {
    let shared = Arc::new(Shared::default());
    let (_feed, mut sub, _hub) = node(store(&shared, 0));
    let _ = tokio::time::timeout(Duration::from_secs(10), sub.next()).await;
    let reads = shared.reads.load(Ordering::Acquire);
    assert!((18..=21).contains(&reads), "{reads} reads in 10 s");
}
