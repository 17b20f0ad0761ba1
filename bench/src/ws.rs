//! WebSocket helpers shared by the scenarios.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
