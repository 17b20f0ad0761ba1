//! Two service processes sharing one PostgreSQL schema and one bus (NATS or
//! Redis, on a prefix of their own), node B reaching the bus through a link
//! the test can cut; WebSocket subscribers and publishers for them.

use std::net::SocketAddr;
use std::time::Duration;

use ep_conformance::services::{server, unique_name, unreachable, Service};
use ep_conformance::Link;
use ep_ports::{Event, EventFilter, EventStore};
use ep_store_postgres::testing::TempSchema;
use ep_store_postgres::{PostgresOptions, PostgresStore};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::process::Process;

/// A guard against a hang; never what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Which bus the nodes share.
#[derive(Debug, Clone, Copy)]
pub enum Bus {
    /// NATS (a container, or the server `EP_TEST_NATS_URL` names).
    Nats,
    /// Redis (a container, or the server `EP_TEST_REDIS_URL` names).
    Redis,
}

impl Bus {
    /// The service, its URL scheme, and the service's variable naming it.
    fn parts(self) -> (Service, &'static str, &'static str) {
        match self {
            Bus::Nats => (Service::Nats, "nats", "NATS_URL"),
            Bus::Redis => (Service::Redis, "redis", "REDIS_URL"),
        }
    }
}

/// Runs `case` (an `async fn(Bus)` of the test file, where `Bus` is in
/// scope) once per bus: a module named after it, a test per bus.
#[allow(unused_macros)]
macro_rules! on_both_buses {
    ($case:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nats() {
                super::$case(super::Bus::Nats).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$case(super::Bus::Redis).await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_buses;

/// Two nodes on one store and one bus.
pub struct Cluster {
    pub a: Process,
    pub b: Process,
    /// B's connection to the bus goes through this.
    pub b_bus: Link,
    /// The shared store, read directly.
    pub store: PostgresStore,
    vars: Vec<(&'static str, String)>,
    _schema: TempSchema,
}

impl Cluster {
    /// Starts both nodes, or `None` (said loudly; a failure with `CI=true`)
    /// when PostgreSQL or the bus cannot be reached.
    pub async fn start(bus: Bus) -> Option<Self> {
        Self::start_with(bus, &[]).await
    }

    /// As [`Cluster::start`], both nodes also given `extra` variables (the
    /// same on each, as an operator deploys them).
    pub async fn start_with(bus: Bus, extra: &[(&'static str, String)]) -> Option<Self> {
        let bus_url = server(bus.parts().0).await?;
        let base = server(Service::Postgres).await?;
        Self::start_on(bus, &base, &bus_url, extra).await
    }

    /// As [`Cluster::start_with`], on the PostgreSQL server at `base` and
    /// the bus at `bus_url` (servers of a test's own, say).
    pub async fn start_on(
        bus: Bus,
        base: &str,
        bus_url: &str,
        extra: &[(&'static str, String)],
    ) -> Option<Self> {
        let (service, kind, url_var) = bus.parts();
        let bus_url = bus_url.to_owned();
        let scheme = format!("{kind}://");
        let bus_addr: SocketAddr = bus_url
            .trim_start_matches(&scheme)
            .trim_end_matches('/')
            .parse()
            .expect("the bus URL is scheme://IP:PORT");
        if let Err(e) = TcpStream::connect(bus_addr).await {
            unreachable(service, &bus_url, e);
            return None;
        }
        let schema = match TempSchema::create(base, unique_name("ep_nodes")).await {
            Ok(schema) => schema,
            Err(e) => {
                unreachable(Service::Postgres, base, e);
                return None;
            }
        };
        let store = PostgresStore::open(&schema.url(), PostgresOptions::default())
            .await
            .expect("the shared store opens");
        let b_bus = Link::to(bus_addr).await.expect("link");
        let vars = vec![
            ("EVENT_STORE", "postgres".to_owned()),
            ("DATABASE_URL", schema.url()),
            ("BROADCASTER", kind.to_owned()),
            ("BUS_PREFIX", unique_name("ep_nodes")),
            ("MAX_WS_CONNECTIONS_PER_IP", "1000".to_owned()),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .collect::<Vec<_>>();
        let with = |bus: String| {
            let mut v = vars.clone();
            v.push((url_var, bus));
            v
        };
        let a = Process::start_with(&with(bus_url.clone()));
        let b = Process::start_with(&with(format!("{scheme}{}", b_bus.addr())));
        Some(Self {
            a,
            b,
            b_bus,
            store,
            vars: with(bus_url),
            _schema: schema,
        })
    }

    /// Another node like A (after A was killed, say).
    pub fn another_node(&self) -> Process {
        Process::start_with(&self.vars)
    }

    /// Every event in the store, lowest seq first.
    pub async fn stored(&self) -> Vec<Event> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &Event| e.seq);
            let page = self
                .store
                .after(after, EventFilter::default(), 1_000)
                .await
                .expect("read the store");
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }
}

/// A WebSocket client.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Subscribes on `node` with `filter` and waits for the ack.
pub async fn subscribe(node: &Process, filter: &Value) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/subscribe", node.addr))
        .await
        .expect("handshake");
    ws.send(Message::text(filter.to_string()))
        .await
        .expect("filter");
    let ack = next_json(&mut ws).await;
    assert_eq!(ack["status"], "subscribed", "{ack}");
    ws
}

/// The next JSON text frame other than a keepalive.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value["type"] != "keepalive" {
                return value;
            }
        }
    }
}

/// The next `n` events a subscriber receives.
pub async fn events(ws: &mut Ws, n: usize) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.push(next_json(ws).await);
    }
    got
}

/// The seq of each event.
pub fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

/// Publishes over REST on `node`; the stored event.
pub async fn publish(client: &reqwest::Client, node: &Process, event: &Value) -> Value {
    let response = client
        .post(format!("{}/api/v1/events", node.base))
        .json(event)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    response.json().await.expect("JSON")
}

/// GET on `node`: status and JSON body.
pub async fn get(client: &reqwest::Client, node: &Process, path: &str) -> (u16, Value) {
    let response = client
        .get(format!("{}{path}", node.base))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}
