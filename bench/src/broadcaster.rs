//! The fan-out ceiling: a bare WebSocket broadcaster speaking just enough of
//! the service's protocol for the `fanout` and `idle` scenarios
//! (`/ws/publish`, `/ws/subscribe` with a filter message it ignores). No
//! storage, auth, limits or filtering: each event is serialized once (with
//! the fields the service sends) into a shared frame, a tokio broadcast
//! channel hands it to every subscriber task, and each task writes what is
//! queued with `feed` and one `flush`. The upgrade is done by hand with the
//! service's buffer sizes (4 KiB read, 16 KiB write), so the two differ in
//! what the service does per event, not in socket set-up. The same design
//! as `../shared/yardstick`'s `fanout_limit`, which this was checked against.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use warp::http::StatusCode;
use warp::hyper::upgrade::OnUpgrade;
use warp::{Filter, Reply};

#[derive(clap::Args)]
pub struct Args {
    /// Port to serve on (127.0.0.1).
    #[arg(long, default_value_t = 18201)]
    port: u16,
}

/// Frames queued for subscribers at most (a subscriber further behind skips).
const CAPACITY: usize = 65_536;
/// Frames written before one flush, at most (the service's `WRITE_BATCH`).
const WRITE_BATCH: usize = 256;

struct Hub {
    frames: broadcast::Sender<Utf8Bytes>,
    seq: AtomicU64,
    subscribers: AtomicU64,
    lagged: AtomicU64,
}

type Socket = WebSocketStream<hyper_util::rt::TokioIo<warp::hyper::upgrade::Upgraded>>;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
}

/// Serves until killed.
pub async fn serve(args: Args) -> Result<(), String> {
    let hub = Arc::new(Hub {
        frames: broadcast::channel(CAPACITY).0,
        seq: AtomicU64::new(0),
        subscribers: AtomicU64::new(0),
        lagged: AtomicU64::new(0),
    });
    let with_hub = {
        let hub = Arc::clone(&hub);
        warp::any().map(move || Arc::clone(&hub))
    };
    let endpoint = |name: &'static str, publish: bool| {
        warp::path("ws")
            .and(warp::path(name))
            .and(warp::path::end())
            .and(warp::header::<String>("sec-websocket-key"))
            .and(warp::ext::get::<OnUpgrade>())
            .and(with_hub.clone())
            .map(move |key: String, upgrade: OnUpgrade, hub: Arc<Hub>| {
                tokio::spawn(async move {
                    let Ok(io) = upgrade.await else { return };
                    let io = hyper_util::rt::TokioIo::new(io);
                    let ws =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
                    if publish {
                        publisher(ws, hub).await;
                    } else {
                        subscriber(ws, hub).await;
                    }
                });
                warp::http::Response::builder()
                    .status(StatusCode::SWITCHING_PROTOCOLS)
                    .header("connection", "upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
                    .body(warp::hyper::body::Bytes::new())
                    .map(warp::Reply::into_response)
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            })
    };
    let health = warp::path("health").map(|| warp::reply::json(&json!({"status": "ok"})));
    let report = Arc::clone(&hub);
    tokio::spawn(async move {
        let mut last = (0, 0, 0);
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let now = (
                report.subscribers.load(Relaxed),
                report.seq.load(Relaxed),
                report.lagged.load(Relaxed),
            );
            if now != last {
                eprintln!("subscribers={} published={} lagged={}", now.0, now.1, now.2);
                last = now;
            }
        }
    });
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    socket
        .bind(([127, 0, 0, 1], args.port).into())
        .map_err(|e| format!("bind 127.0.0.1:{}: {e}", args.port))?;
    let listener = socket.listen(4096).map_err(|e| e.to_string())?;
    eprintln!(
        "fan-out ceiling (bare broadcaster) on 127.0.0.1:{}",
        args.port
    );
    let routes = endpoint("publish", true)
        .or(endpoint("subscribe", false))
        .or(health);
    warp::serve(routes).incoming(listener).run().await;
    Ok(())
}

/// The event as the service would send it, serialized once.
fn event(hub: &Hub, body: &Value) -> (u64, Utf8Bytes) {
    let seq = hub.seq.fetch_add(1, Relaxed) + 1;
    let text = json!({
        "id": format!("evt_{seq:032x}"),
        "event_type": body["event_type"],
        "source": body["source"],
        "session_id": body["session_id"],
        "user_id": body["user_id"],
        "payload": body["payload"],
        "timestamp": "2026-12-01T00:00:00.000000Z",
        "seq": seq,
    })
    .to_string();
    (seq, Utf8Bytes::from(text))
}

async fn publisher(mut ws: Socket, hub: Arc<Hub>) {
    loop {
        // Flush the replies only when no further message is waiting.
        let message = match ws.next().now_or_never() {
            Some(m) => m,
            None => {
                if ws.flush().await.is_err() {
                    return;
                }
                ws.next().await
            }
        };
        let Some(Ok(message)) = message else { return };
        let Message::Text(text) = message else {
            if message.is_close() {
                return;
            }
            continue;
        };
        let reply = match serde_json::from_str::<Value>(text.as_str()) {
            Ok(body) => {
                let (seq, frame) = event(&hub, &body);
                // Err only when nobody is subscribed.
                let _ = hub.frames.send(frame);
                format!(r#"{{"status":"ok","event_id":"evt_{seq:032x}"}}"#)
            }
            Err(e) => json!({"status": "error", "message": e.to_string()}).to_string(),
        };
        if ws.feed(Message::text(reply)).await.is_err() {
            return;
        }
    }
}

async fn subscriber(mut ws: Socket, hub: Arc<Hub>) {
    let filters = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                break serde_json::from_str::<Value>(t.as_str()).unwrap_or(Value::Null)
            }
            Some(Ok(m)) if m.is_close() => return,
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    // Before the ack: everything published after it is delivered.
    let mut rx = hub.frames.subscribe();
    let n = hub.subscribers.fetch_add(1, Relaxed);
    let ack =
        json!({"status": "subscribed", "subscriber_id": format!("sub_{n}"), "filters": filters});
    if ws.send(Message::text(ack.to_string())).await.is_ok() {
        run(&mut ws, &mut rx, &hub).await;
    }
    hub.subscribers.fetch_sub(1, Relaxed);
}

async fn run(ws: &mut Socket, rx: &mut broadcast::Receiver<Utf8Bytes>, hub: &Hub) {
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(frame) => {
                    if ws.feed(Message::Text(frame)).await.is_err() {
                        return;
                    }
                    for _ in 1..WRITE_BATCH {
                        match rx.try_recv() {
                            Ok(frame) => {
                                if ws.feed(Message::Text(frame)).await.is_err() {
                                    return;
                                }
                            }
                            Err(TryRecvError::Lagged(n)) => {
                                hub.lagged.fetch_add(n, Relaxed);
                            }
                            Err(_) => break,
                        }
                    }
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    hub.lagged.fetch_add(n, Relaxed);
                }
                Err(RecvError::Closed) => return,
            },
            message = ws.next() => match message {
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"ping\"") => {
                    if ws.send(Message::text(r#"{"type":"pong"}"#)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(m)) if m.is_close() => return,
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}
