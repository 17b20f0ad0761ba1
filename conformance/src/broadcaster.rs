//! The Broadcaster conformance cases: order, fan-out to every feed of every
//! node, what a feed sees of what was published before it opened, events
//! that cross intact whatever their size or text, and a gap reported after
//! the transport reconnects.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::containers::Service;
use ep_ports::{Broadcaster, Event, EventBatch, EventFeed, EventType, FeedItem, Payload};

use crate::link::Link;
use crate::store::new_event;

/// A guard against a case hanging forever; never what a case waits for.
const PATIENCE: Duration = Duration::from_secs(20);

/// One node of a harness: a broadcaster with a connection of its own.
pub struct Node {
    /// The broadcaster.
    pub broadcaster: Arc<dyn Broadcaster>,
    /// The link its transport goes through, when the harness can cut it.
    pub link: Option<Link>,
}

/// What the cases run against: nodes on a bus of their own (a subject or
/// key prefix no other test uses).
#[async_trait]
pub trait BroadcasterHarness: Send + Sync {
    /// Another node on this harness's bus. An in-process broadcaster has one
    /// node only and returns it each time.
    async fn node(&self) -> Node;
}

/// A harness for a broadcaster on a network server (NATS, Redis): each node
/// connects through a [`Link`] of its own, on a bus prefix no other test
/// uses. `connect(url, prefix)` opens a node's broadcaster at `url`
/// (`scheme://127.0.0.1:PORT`, the link's address).
pub struct LinkedHarness<F> {
    server: std::net::SocketAddr,
    scheme: &'static str,
    prefix: String,
    connect: F,
}

impl<F, Fut> LinkedHarness<F>
where
    F: Fn(String, String) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Arc<dyn Broadcaster>> + Send,
{
    /// The harness for `service` (its server at `scheme://IP:PORT`), or
    /// `None` when there is none (said loudly; a failure with `CI=true`).
    pub async fn new(service: Service, scheme: &'static str, connect: F) -> Option<Self> {
        let url = crate::services::server(service).await?;
        let server = url
            .trim_start_matches(scheme)
            .trim_start_matches("://")
            .trim_end_matches('/')
            .parse::<std::net::SocketAddr>()
            .unwrap_or_else(|_| {
                panic!(
                    "{} must be {scheme}://IP:PORT, not {url}",
                    service.url_var()
                )
            });
        if let Err(e) = tokio::net::TcpStream::connect(server).await {
            crate::services::unreachable(service, &url, e);
            return None;
        }
        Some(Self {
            server,
            scheme,
            prefix: crate::services::unique_name("ep_test"),
            connect,
        })
    }
}

#[async_trait]
impl<F, Fut> BroadcasterHarness for LinkedHarness<F>
where
    F: Fn(String, String) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Arc<dyn Broadcaster>> + Send,
{
    async fn node(&self) -> Node {
        let link = Link::to(self.server).await.expect("link");
        let url = format!("{}://{}", self.scheme, link.addr());
        Node {
            broadcaster: (self.connect)(url, self.prefix.clone()).await,
            link: Some(link),
        }
    }
}

/// A batch of `n` events from seq `first`, with payloads of `pad` bytes.
pub fn batch(first: u64, n: u64, pad: usize) -> EventBatch {
    (first..first + n)
        .map(|seq| {
            let mut e = new_event(
                seq as i64,
                EventType::TIMER_TICK,
                Some("sess-1"),
                Some("u-1"),
            );
            e.payload = Payload::from_json(format!(r#"{{"n":{seq},"pad":"{}"}}"#, "p".repeat(pad)))
                .unwrap_or_else(|_| Payload::empty());
            Arc::new(e.into_event(seq))
        })
        .collect()
}

fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

async fn subscribe(node: &Node) -> EventFeed {
    node.broadcaster.subscribe().await.expect("a feed opens")
}

async fn next_item(feed: &mut EventFeed) -> FeedItem {
    tokio::time::timeout(
        PATIENCE,
        std::future::poll_fn(|cx| feed.as_mut().poll_next(cx)),
    )
    .await
    .expect("the feed yields in time")
    .expect("the feed is open")
}

/// The events of the next batches, until `n` events have come; panics on a
/// gap (nothing here gives the feed a reason to lose anything).
async fn next_events(feed: &mut EventFeed, n: usize) -> Vec<Arc<Event>> {
    let mut events = Vec::new();
    while events.len() < n {
        match next_item(feed).await {
            FeedItem::Batch(batch) => events.extend(batch.iter().cloned()),
            FeedItem::Gap => panic!("a gap with nothing lost"),
        }
    }
    events
}

/// Every feed, on the publishing node and on another, sees every batch of
/// a node in the order it published them.
pub async fn every_feed_of_every_node_sees_every_batch_in_publish_order(
    h: &dyn BroadcasterHarness,
) {
    let a = h.node().await;
    let b = h.node().await;
    let mut feeds = vec![
        subscribe(&a).await,
        subscribe(&a).await,
        subscribe(&b).await,
    ];
    for i in 0..20 {
        a.broadcaster
            .publish(batch(1 + i * 3, 3, 10))
            .await
            .expect("publish");
    }
    for feed in &mut feeds {
        assert_eq!(
            seqs(&next_events(feed, 60).await),
            (1..=60).collect::<Vec<_>>()
        );
    }
}

/// Batches of two nodes reach the feeds of both, each node's in its order.
pub async fn batches_of_several_nodes_reach_every_node(h: &dyn BroadcasterHarness) {
    let a = h.node().await;
    let b = h.node().await;
    let mut on_a = subscribe(&a).await;
    let mut on_b = subscribe(&b).await;
    for i in 0..10 {
        a.broadcaster
            .publish(batch(1 + i, 1, 10))
            .await
            .expect("publish");
        b.broadcaster
            .publish(batch(101 + i, 1, 10))
            .await
            .expect("publish");
    }
    for feed in [&mut on_a, &mut on_b] {
        let got = seqs(&next_events(feed, 20).await);
        let from_a: Vec<u64> = got.iter().copied().filter(|s| *s < 100).collect();
        let from_b: Vec<u64> = got.iter().copied().filter(|s| *s > 100).collect();
        assert_eq!(from_a, (1..=10).collect::<Vec<_>>());
        assert_eq!(from_b, (101..=110).collect::<Vec<_>>());
    }
}

/// A feed sees what is published once `subscribe` has returned, and
/// nothing from before; publishing while no feed is open succeeds.
pub async fn a_feed_sees_only_what_is_published_after_it_opened(h: &dyn BroadcasterHarness) {
    let a = h.node().await;
    a.broadcaster
        .publish(batch(1, 2, 10))
        .await
        .expect("publishing with no feed open succeeds");
    let mut feed = subscribe(&a).await;
    a.broadcaster
        .publish(batch(3, 2, 10))
        .await
        .expect("publish");
    assert_eq!(seqs(&next_events(&mut feed, 2).await), [3, 4]);
}

/// A feed that is dropped does not stop publishing, nor the other feeds.
pub async fn a_dropped_feed_stops_nothing(h: &dyn BroadcasterHarness) {
    let a = h.node().await;
    let dropped = subscribe(&a).await;
    let mut kept = subscribe(&a).await;
    drop(dropped);
    for i in 0..5 {
        a.broadcaster
            .publish(batch(1 + i, 1, 10))
            .await
            .expect("publish");
    }
    assert_eq!(seqs(&next_events(&mut kept, 5).await), [1, 2, 3, 4, 5]);
}

/// Every field of every event arrives as it was published: text that JSON
/// must escape, non-ASCII text, absent fields, a large payload.
pub async fn events_cross_intact(h: &dyn BroadcasterHarness) {
    let a = h.node().await;
    let b = h.node().await;
    let mut feed = subscribe(&b).await;
    let mut odd = new_event(
        1,
        EventType::ANSWER_SUBMITTED,
        Some("s\"1\\\n\u{2028}"),
        None,
    );
    odd.source = "quiz-engine.v2".into();
    odd.payload = Payload::from_json(
        r#"{"answer":"<script>\"x\"</script>","emoji":"🦀","nested":{"a":[1,2.5,null,true]},"big":1e300}"#
            .to_owned(),
    )
    .expect("payload");
    let mut big = new_event(2, EventType::ERROR_OCCURRED, None, Some("ü-ser"));
    big.payload =
        Payload::from_json(format!(r#"{{"pad":"{}"}}"#, "x".repeat(60_000))).expect("payload");
    let sent: EventBatch = vec![Arc::new(odd.into_event(1)), Arc::new(big.into_event(2))].into();
    a.broadcaster
        .publish(Arc::clone(&sent))
        .await
        .expect("publish");
    let got = next_events(&mut feed, 2).await;
    let got: Vec<&Event> = got.iter().map(|e| &**e).collect();
    let sent: Vec<&Event> = sent.iter().map(|e| &**e).collect();
    assert_eq!(got, sent);
}

/// A batch too large for one message of the transport (1,000 events of 2
/// KB) arrives whole or as pieces, in order, nothing missing.
pub async fn a_large_batch_arrives_in_order(h: &dyn BroadcasterHarness) {
    let a = h.node().await;
    let b = h.node().await;
    let mut feed = subscribe(&b).await;
    a.broadcaster
        .publish(batch(1, 1_000, 2_000))
        .await
        .expect("publish");
    a.broadcaster
        .publish(batch(1_001, 1, 10))
        .await
        .expect("publish");
    assert_eq!(
        seqs(&next_events(&mut feed, 1_001).await),
        (1..=1_001).collect::<Vec<_>>()
    );
}

/// While a node's transport is cut its ping fails; once it is back, its
/// feed says it lost batches before it yields any published after the cut.
/// Skipped for broadcasters whose harness has no link to cut (in-process).
pub async fn a_feed_reports_a_gap_after_its_connection_comes_back(h: &dyn BroadcasterHarness) {
    let a = h.node().await;
    let b = h.node().await;
    let Some(link) = &b.link else {
        eprintln!("no transport to cut for this broadcaster: case skipped");
        return;
    };
    let mut feed = subscribe(&b).await;
    a.broadcaster
        .publish(batch(1, 1, 10))
        .await
        .expect("publish");
    assert_eq!(seqs(&next_events(&mut feed, 1).await), [1]);
    b.broadcaster.ping().await.expect("connected");

    link.cut();
    until(
        || async { b.broadcaster.ping().await.is_err() },
        "ping fails while cut",
    )
    .await;
    a.broadcaster
        .publish(batch(2, 1, 10))
        .await
        .expect("the other node still publishes");
    link.restore();
    until(
        || async { b.broadcaster.ping().await.is_ok() },
        "ping answers once restored",
    )
    .await;

    // Publish until something reaches b: a gap must come first.
    let mut seq = 3;
    let mut saw_gap = false;
    loop {
        a.broadcaster
            .publish(batch(seq, 1, 10))
            .await
            .expect("publish");
        seq += 1;
        let item = tokio::time::timeout(
            Duration::from_millis(200),
            std::future::poll_fn(|cx| feed.as_mut().poll_next(cx)),
        )
        .await;
        match item {
            Err(_) => {
                assert!(
                    seq < 200,
                    "nothing reached the node after its link came back"
                );
            }
            Ok(None) => panic!("the feed ended instead of reconnecting"),
            Ok(Some(FeedItem::Gap)) => saw_gap = true,
            Ok(Some(FeedItem::Batch(got))) => {
                if got.iter().any(|e| e.seq >= 2) {
                    assert!(saw_gap, "a batch after the cut came with no gap before it");
                    return;
                }
            }
        }
    }
}

/// A connected broadcaster answers its ping.
pub async fn ping_answers(h: &dyn BroadcasterHarness) {
    h.node().await.broadcaster.ping().await.expect("ping");
}

/// Waits until `check` holds, asking every 50 ms, within [`PATIENCE`].
async fn until<F, Fut>(check: F, what: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut every = tokio::time::interval(Duration::from_millis(50));
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            every.tick().await;
            if check().await {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "{what}: not within {PATIENCE:?}");
}
