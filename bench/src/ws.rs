//! WebSocket helpers shared by the scenarios.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The nodes subscribers are spread over, round robin.
#[derive(Debug, Clone)]
pub struct Nodes(Vec<String>);

impl Nodes {
    /// At least one base URL.
    pub fn new(urls: Vec<String>) -> Self {
        Self(urls)
    }

    /// The node the `n`th subscriber connects to.
    pub fn nth(&self, n: usize) -> &str {
        &self.0[n % self.0.len()]
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// `http://host:port` → `ws://host:port{path}`.
pub fn ws_url(base: &str, path: &str) -> String {
    let rest = base
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches('/');
    format!("ws://{rest}{path}")
}

/// Connects and subscribes with `filter`; returns once the ack arrived.
pub async fn subscribe(base: &str, filter: &str) -> Result<Ws, String> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(ws_url(base, "/ws/subscribe"), None, true)
            .await
            .map_err(|e| format!("subscribe handshake: {e}"))?;
    ws.send(Message::text(filter))
        .await
        .map_err(|e| format!("send filter: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => return Ok(ws),
            Some(Ok(Message::Text(t))) => return Err(format!("subscription refused: {t}")),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed while subscribing: {frame:?}"))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("subscribe: {e}")),
            None => return Err("closed while subscribing".into()),
        }
    }
}

/// Connects to `/ws/publish`.
pub async fn publisher(base: &str) -> Result<Ws, String> {
    tokio_tungstenite::connect_async_with_config(ws_url(base, "/ws/publish"), None, true)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| format!("publish handshake: {e}"))
}

/// What one subscriber received.
pub struct Seen {
    /// Publish-to-delivery latency of each delivery, in microseconds.
    pub latencies: Vec<u64>,
    /// The send time (`sent_us`) of each delivery's event, in the order of
    /// `latencies`: what names the event when deliveries are compared.
    pub sent: Vec<u64>,
    /// The connection ended before every expected delivery arrived.
    pub closed_early: bool,
}

/// Reads deliveries until `expected` of them (known once publishing ends)
/// arrived, counting only frames that contain `marker` when one is given.
/// Each delivery's latency comes from the `sent_us` its payload carries.
pub async fn read_deliveries(
    mut sub: Ws,
    mut expected: tokio::sync::watch::Receiver<u64>,
    marker: Option<String>,
) -> Seen {
    let mut seen = Seen {
        latencies: Vec::new(),
        sent: Vec::new(),
        closed_early: false,
    };
    loop {
        if seen.latencies.len() as u64 >= *expected.borrow() {
            return seen;
        }
        let frame = tokio::select! {
            frame = sub.next() => frame,
            _ = expected.changed() => continue,
        };
        match frame {
            Some(Ok(Message::Text(text))) if marker.as_deref().is_none_or(|m| text.contains(m)) => {
                if let Some(sent) = crate::report::find_u64(&text, "\"sent_us\":") {
                    seen.latencies
                        .push(crate::report::now_us().saturating_sub(sent));
                    seen.sent.push(sent);
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                seen.closed_early = true;
                return seen;
            }
            Some(Ok(_)) => {}
        }
    }
}
