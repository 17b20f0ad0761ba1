//! Faults of the servers themselves, possible now that each test can have
//! its own in a container: two nodes with publishers on each and a
//! subscriber on each, then PostgreSQL stopped for 5 s under load, or shut
//! down fast mid-batch (each batch committed and acknowledged, or refused,
//! never half), the bus server killed and a new one started on its port,
//! the bus paused (publishing goes on meanwhile), a node killed during a PostgreSQL outage. Every
//! time: nothing acknowledged is lost, a publish is answered (201 stored,
//! or 503 with Retry-After; never a hang), and every subscriber ends with
//! every stored event once, in seq order.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ep_conformance::containers::Server;
use ep_conformance::services::{own, server, Service};
use futures_util::StreamExt;
use serde_json::{json, Value};
use support::cluster::{get, on_both_buses, subscribe, Bus, Cluster, Ws, PATIENCE};
use support::example;
use support::process::Process;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The service of a bus.
fn service_of(bus: Bus) -> Service {
    match bus {
        Bus::Nats => Service::Nats,
        Bus::Redis => Service::Redis,
    }
}

/// Waits until `done` holds (checked every 20 ms), or fails naming `what`.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one publisher saw.
#[derive(Debug, Default)]
struct Outcome {
    /// `(seq, id)` of every 201.
    acknowledged: Vec<(u64, String)>,
    /// 503s (each with Retry-After).
    refused: usize,
}

/// Publishers on each node, until stopped.
struct Load {
    stop: watch::Sender<bool>,
    acks: Arc<AtomicUsize>,
    /// The longest a 201 took, in ms, since [`Load::slowest_from_now`].
    slowest_ms: Arc<AtomicU64>,
    refusals: Vec<Arc<AtomicUsize>>,
    publishers: Vec<JoinHandle<Outcome>>,
}

/// How a publisher treats its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// It must answer every request.
    Stays,
    /// It may be killed: a request it cannot answer ends the publisher.
    MayDie,
}

impl Load {
    /// One publisher on each node.
    fn start(nodes: &[&Process]) -> Self {
        let nodes: Vec<_> = nodes.iter().map(|n| (*n, Node::Stays)).collect();
        Self::start_with(&nodes, 1)
    }

    /// `each` publishers at once on each node (so that batches form).
    fn start_with(nodes: &[(&Process, Node)], each: usize) -> Self {
        let (stop, stopped) = watch::channel(false);
        let acks = Arc::new(AtomicUsize::new(0));
        let slowest_ms = Arc::new(AtomicU64::new(0));
        let mut refusals = Vec::new();
        let mut publishers = Vec::new();
        for (i, (node, kind)) in nodes.iter().enumerate() {
            let refused = Arc::new(AtomicUsize::new(0));
            refusals.push(refused.clone());
            for p in 0..each {
                publishers.push(publish_until_stopped(
                    node.base.clone(),
                    format!("node-{i}-{p}"),
                    *kind,
                    stopped.clone(),
                    acks.clone(),
                    slowest_ms.clone(),
                    refused.clone(),
                ));
            }
        }
        Self {
            stop,
            acks,
            slowest_ms,
            refusals,
            publishers,
        }
    }

    fn acks(&self) -> usize {
        self.acks.load(Ordering::Relaxed)
    }

    /// Starts timing the slowest acknowledged publish afresh.
    fn slowest_from_now(&self) {
        self.slowest_ms.store(0, Ordering::Relaxed);
    }

    /// The slowest acknowledged publish since [`Load::slowest_from_now`].
    fn slowest(&self) -> Duration {
        Duration::from_millis(self.slowest_ms.load(Ordering::Relaxed))
    }

    async fn until_acks(&self, n: usize) {
        until(&format!("{n} acknowledged publishes"), async || {
            self.acks() >= n
        })
        .await;
    }

    async fn until_refused_on_every_node(&self) {
        until("a 503 from every node", async || {
            self.refusals.iter().all(|r| r.load(Ordering::Relaxed) > 0)
        })
        .await;
    }

    async fn stop(self) -> Vec<Outcome> {
        self.stop.send_replace(true);
        let mut outcomes = Vec::new();
        for p in self.publishers {
            outcomes.push(p.await.expect("publisher"));
        }
        outcomes
    }
}

fn publish_until_stopped(
    base: String,
    session: String,
    node: Node,
    stop: watch::Receiver<bool>,
    acks: Arc<AtomicUsize>,
    slowest_ms: Arc<AtomicU64>,
    refused: Arc<AtomicUsize>,
) -> JoinHandle<Outcome> {
    tokio::spawn(async move {
        // A publish that takes longer than this hangs: that is a failure.
        let client = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .expect("client");
        let mut outcome = Outcome::default();
        let mut n = 0;
        while !*stop.borrow() {
            let mut event = example("answer_submitted");
            event["session_id"] = json!(session);
            event["payload"] = json!({ "question_id": "q1", "n": n });
            n += 1;
            let sent = Instant::now();
            let r = match client
                .post(format!("{base}/api/v1/events"))
                .json(&event)
                .send()
                .await
            {
                Ok(r) => r,
                Err(_) if node == Node::MayDie => return outcome,
                Err(e) => panic!("a publish was not answered: {e}"),
            };
            match r.status().as_u16() {
                201 => {
                    let Ok(stored) = r.json::<Value>().await else {
                        assert_eq!(node, Node::MayDie, "a 201 without its event");
                        return outcome;
                    };
                    outcome.acknowledged.push((
                        stored["seq"].as_u64().expect("seq"),
                        stored["id"].as_str().expect("id").to_owned(),
                    ));
                    let took = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
                    slowest_ms.fetch_max(took, Ordering::Relaxed);
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                503 => {
                    assert!(
                        r.headers().contains_key("retry-after"),
                        "503 without Retry-After"
                    );
                    outcome.refused += 1;
                    refused.fetch_add(1, Ordering::Relaxed);
                    // As a client told to retry later would: not in a hot loop.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!(
                    "publish answered {other}: {}",
                    r.text().await.unwrap_or_default()
                ),
            }
        }
        outcome
    })
}

/// Collects the seqs a subscriber receives until it has `target`'s value.
/// No timeout while events are not due (an outage may last); the caller
/// bounds the wait once `target` is set.
fn collect(mut ws: Ws, mut target: watch::Receiver<u64>) -> JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut seqs: Vec<u64> = Vec::new();
        loop {
            let goal = *target.borrow_and_update();
            if goal > 0 && seqs.last().is_some_and(|&s| s >= goal) {
                return seqs;
            }
            tokio::select! {
                frame = ws.next() => {
                    let frame = frame.expect("the subscription stays open").expect("a frame");
                    let Message::Text(text) = frame else {
                        assert!(!frame.is_close(), "the subscription was closed: {frame:?}");
                        continue;
                    };
                    let event: Value = serde_json::from_str(&text).expect("JSON");
                    if event["type"] == "keepalive" {
                        continue;
                    }
                    seqs.push(event["seq"].as_u64().unwrap_or_else(|| panic!("an event: {event}")));
                }
                _ = target.changed() => {}
            }
        }
    })
}

/// `/readiness` of `node`: (status, body).
async fn readiness(node: &Process) -> (u16, Value) {
    get(&reqwest::Client::new(), node, "/readiness").await
}

/// Whether a publish may have been committed without being acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commits {
    /// A server was killed: a commit whose answer it never sent may exist.
    MayBeUnanswered,
    /// Every stored event was acknowledged: nothing committed was refused.
    AllAcknowledged,
}

/// The checks every fault ends with: what was acknowledged is stored, and
/// each subscriber received exactly the stored events, in seq order.
async fn nothing_lost(
    c: &Cluster,
    load: Load,
    commits: Commits,
    target: watch::Sender<u64>,
    subscribers: Vec<JoinHandle<Vec<u64>>>,
) {
    let outcomes = load.stop().await;
    let stored = c.stored().await;
    let by_seq: std::collections::HashMap<u64, String> =
        stored.iter().map(|e| (e.seq, e.id.to_string())).collect();
    for outcome in &outcomes {
        for (seq, id) in &outcome.acknowledged {
            assert_eq!(
                by_seq.get(seq),
                Some(id),
                "acknowledged seq {seq} is stored"
            );
        }
    }
    if commits == Commits::AllAcknowledged {
        let acknowledged: std::collections::HashSet<&str> = outcomes
            .iter()
            .flat_map(|o| o.acknowledged.iter().map(|(_, id)| id.as_str()))
            .collect();
        for e in &stored {
            assert!(
                acknowledged.contains(e.id.to_string().as_str()),
                "seq {} is stored but its publish was refused",
                e.seq
            );
        }
    }
    let want: Vec<u64> = stored.iter().map(|e| e.seq).collect();
    target.send_replace(*want.last().expect("something stored"));
    for (i, subscriber) in subscribers.into_iter().enumerate() {
        let got = tokio::time::timeout(PATIENCE, subscriber)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "subscriber {i} never reached seq {}",
                    want.last().copied().unwrap_or(0)
                )
            })
            .expect("subscriber");
        assert_eq!(
            got, want,
            "subscriber {i}: every stored event once, in seq order"
        );
    }
}

/// Which server a test has a container of its own of (the other is shared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owned {
    Postgres,
    Bus,
}

/// Two nodes on a server of the test's own, and subscribers collecting.
struct Scene {
    /// Dropped first: its nodes and schema need the servers.
    c: Cluster,
    /// The test's own server.
    owned: Server,
    /// Where each subscriber stops: set by [`nothing_lost`].
    target: watch::Sender<u64>,
    subscribers: Vec<JoinHandle<Vec<u64>>>,
}

impl Scene {
    /// The cluster on `owned`'s own server, a subscriber (`{}`) on each of
    /// `subscribed` (`"a"`, `"b"`), or `None` when a server is missing.
    async fn start(bus: Bus, owned: Owned, subscribed: &[&str]) -> Option<Self> {
        let (own_service, shared_service) = match owned {
            Owned::Postgres => (Service::Postgres, service_of(bus)),
            Owned::Bus => (service_of(bus), Service::Postgres),
        };
        let mine = own(own_service).await?;
        let theirs = server(shared_service).await?;
        let (base, bus_url) = match owned {
            Owned::Postgres => (mine.url.clone(), theirs),
            Owned::Bus => (theirs, mine.url.clone()),
        };
        let c = Cluster::start_on(bus, &base, &bus_url, &[]).await?;
        let (target, targets) = watch::channel(0);
        let mut subscribers = Vec::new();
        for name in subscribed {
            let node = if *name == "a" { &c.a } else { &c.b };
            subscribers.push(collect(subscribe(node, &json!({})).await, targets.clone()));
        }
        Some(Self {
            c,
            owned: mine,
            target,
            subscribers,
        })
    }

    /// A subscriber on `node` replaying from `since_seq` 0.
    async fn replaying_on(&mut self, node: &Process) {
        let targets = self.target.subscribe();
        self.subscribers.push(collect(
            subscribe(node, &json!({"since_seq": 0})).await,
            targets,
        ));
    }

    async fn nothing_lost(self, load: Load, commits: Commits) {
        nothing_lost(&self.c, load, commits, self.target, self.subscribers).await;
    }
}

async fn a_postgres_outage_under_load_is_503_then_nothing_is_lost(bus: Bus) {
    let Some(scene) = Scene::start(bus, Owned::Postgres, &["a", "b"]).await else {
        return;
    };
    let (c, postgres) = (&scene.c, &scene.owned);
    let load = Load::start(&[&c.a, &c.b]);
    load.until_acks(40).await;

    let stopped = Instant::now();
    postgres.docker(&["stop", "--time", "1"]).await;
    for node in [&c.a, &c.b] {
        until("readiness 503 naming the database", async || {
            let (status, body) = readiness(node).await;
            status == 503 && body["database"] != "connected"
        })
        .await;
    }
    load.until_refused_on_every_node().await;
    // The outage lasts 5 s, whatever the checks above took.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed())).await;
    postgres.docker(&["start"]).await;
    for node in [&c.a, &c.b] {
        until("readiness 200", async || readiness(node).await.0 == 200).await;
    }
    let after = load.acks();
    load.until_acks(after + 40).await;
    scene.nothing_lost(load, Commits::MayBeUnanswered).await;
}
on_both_buses!(a_postgres_outage_under_load_is_503_then_nothing_is_lost);

async fn a_bus_server_killed_and_replaced_on_its_port_loses_nothing(bus: Bus) {
    let Some(scene) = Scene::start(bus, Owned::Bus, &["a", "b"]).await else {
        return;
    };
    let (c, bus_server) = (&scene.c, &scene.owned);
    let service = service_of(bus);
    let load = Load::start(&[&c.a, &c.b]);
    load.until_acks(40).await;

    bus_server.docker(&["kill"]).await;
    for node in [&c.a, &c.b] {
        until("readiness naming the bus", async || {
            let (_, body) = readiness(node).await;
            body["broadcaster"]
                .as_str()
                .is_some_and(|s| s != "connected")
        })
        .await;
    }
    // Publishing goes on meanwhile: the store has it.
    let during = load.acks();
    load.until_acks(during + 20).await;
    let replacement = Server::start_async(service, Some(bus_server.port))
        .await
        .expect("a new bus server on the same port");
    for node in [&c.a, &c.b] {
        until("readiness 200", async || readiness(node).await.0 == 200).await;
    }
    let after = load.acks();
    load.until_acks(after + 40).await;
    scene.nothing_lost(load, Commits::MayBeUnanswered).await;
    drop(replacement);
}
on_both_buses!(a_bus_server_killed_and_replaced_on_its_port_loses_nothing);

/// `event_pipeline_bus_skipped_events_total` of `node`.
async fn bus_skipped(node: &Process) -> f64 {
    let text = reqwest::get(format!("{}/metrics", node.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("event_pipeline_bus_skipped_events_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the bus skip counter")
}

async fn a_paused_bus_holds_up_no_publish_and_loses_nothing(bus: Bus) {
    let Some(scene) = Scene::start(bus, Owned::Bus, &["a", "b"]).await else {
        return;
    };
    let (c, bus_server) = (&scene.c, &scene.owned);
    let load = Load::start(&[&c.a, &c.b]);
    load.until_acks(40).await;

    // Frozen, not gone: connections stay open and unanswered. Publishing
    // goes on meanwhile: a node hands its batches to the bus client's
    // queue, or (once that is full, or a publish misses the bus's budget)
    // commits without the bus for a while; every node reads what it
    // missed from the store.
    bus_server.docker(&["pause"]).await;
    load.slowest_from_now();
    let paused = load.acks();
    load.until_acks(paused + 100).await;
    // The bus's budget (200 ms) and a commit, with room for a slow machine;
    // a publish that waited for a Redis answer took its 5 s response
    // timeout.
    let slowest = load.slowest();
    assert!(
        slowest < Duration::from_secs(2),
        "a publish waited {slowest:?} for the frozen bus"
    );
    if matches!(bus, Bus::Redis) {
        // The Redis adapter queues batches for a task of its own, and its
        // queue holds more than these: no node had to go without the bus
        // (before it did, every publish waiting for Redis's answer).
        let mut skipped = 0.0;
        for node in [&c.a, &c.b] {
            skipped += bus_skipped(node).await;
        }
        assert_eq!(skipped, 0.0, "the nodes skipped the bus");
    }
    bus_server.docker(&["unpause"]).await;
    let after = load.acks();
    load.until_acks(after + 40).await;
    scene.nothing_lost(load, Commits::MayBeUnanswered).await;
}
on_both_buses!(a_paused_bus_holds_up_no_publish_and_loses_nothing);

async fn a_postgres_fast_shutdown_mid_batch_commits_or_refuses_each_batch_whole(bus: Bus) {
    let Some(scene) = Scene::start(bus, Owned::Postgres, &["a", "b"]).await else {
        return;
    };
    let (c, postgres) = (&scene.c, &scene.owned);
    // Sixteen publishers at once on each node: commits go in batches.
    let load = Load::start_with(&[(&c.a, Node::Stays), (&c.b, Node::Stays)], 16);
    load.until_acks(200).await;
    // Fast shutdown (SIGINT): transactions in flight are aborted, the
    // server stops; then it starts again.
    postgres.docker(&["kill", "--signal", "INT"]).await;
    postgres.docker(&["wait"]).await;
    load.until_refused_on_every_node().await;
    postgres.docker(&["start"]).await;
    for node in [&c.a, &c.b] {
        until("readiness 200", async || readiness(node).await.0 == 200).await;
    }
    let after = load.acks();
    load.until_acks(after + 200).await;
    scene.nothing_lost(load, Commits::AllAcknowledged).await;
}
on_both_buses!(a_postgres_fast_shutdown_mid_batch_commits_or_refuses_each_batch_whole);

async fn a_node_killed_during_a_postgres_outage_loses_nothing_acknowledged(bus: Bus) {
    let Some(mut scene) = Scene::start(bus, Owned::Postgres, &["b"]).await else {
        return;
    };
    let (c, postgres) = (&scene.c, &scene.owned);
    let load = Load::start_with(&[(&c.a, Node::MayDie), (&c.b, Node::Stays)], 4);
    load.until_acks(100).await;

    postgres.docker(&["stop", "--time", "1"]).await;
    load.until_refused_on_every_node().await;
    c.a.signal("KILL");
    postgres.docker(&["start"]).await;
    until("readiness 200 on B", async || {
        readiness(&c.b).await.0 == 200
    })
    .await;
    // A comes back as a new process; a subscriber there replays from the start.
    let a_again = c.another_node();
    until("readiness 200 on the new A", async || {
        readiness(&a_again).await.0 == 200
    })
    .await;
    scene.replaying_on(&a_again).await;
    let after = load.acks();
    load.until_acks(after + 100).await;
    scene.nothing_lost(load, Commits::MayBeUnanswered).await;
}
on_both_buses!(a_node_killed_during_a_postgres_outage_loses_nothing_acknowledged);
