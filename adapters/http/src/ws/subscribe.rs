//! `/ws/subscribe`: the filter handshake, then events as bare JSON objects,
//! `ping`/`pong`, `update_filters`, keepalives, and resume from a `seq`.

use std::net::IpAddr;
use std::time::Duration;

use ep_domain::{GetError, Next, SubscribeRequest, Subscription};
use ep_ports::Timestamp;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::close::{Close, Ending};
use super::upgrade::Socket;
use super::{error_message, json_message, send, WRITE_TIMEOUT};
use crate::metrics;
use crate::refusals::Refusal;
use crate::state::AppState;

/// Events written before one flush, at most.
const WRITE_BATCH: usize = 256;

/// What a client message turned out to be.
enum Incoming {
    /// A text (or binary) message.
    Data(Vec<u8>),
    /// Nothing to act on (ping/pong frames).
    Skip,
    /// The client closed, broke the protocol, or the connection failed.
    Gone(Ending),
}

async fn receive(socket: &mut Socket) -> Incoming {
    match socket.next().await {
        Some(Ok(Message::Text(text))) => Incoming::Data(text.as_bytes().to_vec()),
        Some(Ok(Message::Binary(data))) => Incoming::Data(data.to_vec()),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Incoming::Skip,
        Some(Ok(Message::Close(_))) => Incoming::Gone(Ending::PeerClosed),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket subscriber read failed");
            Incoming::Gone(Ending::after_read_error(&e))
        }
        None => Incoming::Gone(Ending::Lost),
    }
}

/// Refuses the subscription with an error reply; the connection then
/// closes with `close`.
async fn refuse(socket: &mut Socket, text: &str, close: Close) -> Ending {
    if send(socket, error_message(text)).await {
        Ending::Close(close)
    } else {
        Ending::Lost
    }
}

/// Serves one subscriber until it leaves, falls behind, or the server
/// stops; returns the socket (unless it was lost) and how it ends.
pub(super) async fn run(
    socket: Socket,
    state: AppState,
    client: IpAddr,
    mut closing: watch::Receiver<bool>,
) -> (Option<Socket>, Ending) {
    // One task owns the socket, reading and writing in turn: no split
    // halves behind a lock on every frame.
    let mut socket = socket;
    let ending = subscribe(&mut socket, &state, &mut closing).await;
    if matches!(ending, Ending::Close(Close::SlowConsumer { .. })) {
        metrics::slow_subscriber_closed();
        state
            .refusals
            .note(Refusal::SlowSubscriber, client, "/ws/subscribe");
    }
    if ending == Ending::Lost {
        return (None, ending);
    }
    (Some(socket), ending)
}

/// The filter handshake, then the subscribed phase.
async fn subscribe(
    socket: &mut Socket,
    state: &AppState,
    closing: &mut watch::Receiver<bool>,
) -> Ending {
    let limits = &state.config;

    // 1. The filter message, within the time allowed.
    let first = loop {
        let incoming = tokio::select! {
            biased;
            _ = closing.changed() => return Ending::Close(Close::GoingAway),
            r = tokio::time::timeout(limits.ws_filter_timeout, receive(socket)) => r,
        };
        match incoming {
            Err(_) => return Ending::Close(Close::FilterTimeout),
            Ok(Incoming::Skip) => continue,
            Ok(Incoming::Gone(Ending::Close(Close::TooLarge))) => {
                return refuse(socket, "Message too large", Close::TooLarge).await;
            }
            Ok(Incoming::Gone(ending)) => return ending,
            Ok(Incoming::Data(data)) => break data,
        }
    };
    if first.len() > limits.max_ws_message_bytes {
        return refuse(socket, "Message too large", Close::TooLarge).await;
    }
    let Ok(value) = serde_json::from_slice::<Value>(&first) else {
        return refuse(socket, "Invalid JSON", Close::InvalidJson).await;
    };
    let Value::Object(filters) = value else {
        return refuse(socket, "The filter must be a JSON object", Close::BadFilter).await;
    };
    let request = match SubscribeRequest::from_object(&filters) {
        Ok(request) => request,
        Err(e) => return refuse(socket, &e.0, Close::BadFilter).await,
    };
    let resume_after = match &request.resume {
        None => None,
        Some(resume) => match state.service.resume_point(resume).await {
            Ok(seq) => Some(seq),
            Err(GetError::NotFound) => {
                return refuse(socket, "Unknown last_event_id", Close::BadFilter).await
            }
            Err(GetError::Store(e)) => {
                tracing::warn!(error = %e, "cannot resolve a resume point");
                return refuse(socket, "Event store unavailable", Close::ServerError).await;
            }
        },
    };
    let mut subscription = match state.hub.subscribe(request.filter, resume_after) {
        Ok(s) => s,
        Err(e) => return refuse(socket, &e.to_string(), Close::AtCapacity).await,
    };

    // 2. Live: the ack is sent after the subscription is registered.
    let ack = json!({"status": "subscribed", "subscriber_id": subscription.public_id(), "filters": Value::Object(filters)});
    if !send(socket, json_message(&ack)).await {
        return Ending::Lost;
    }
    tracing::debug!(subscriber = %subscription.public_id(), ?resume_after, "subscribed");
    serve(socket, &mut subscription, state, closing).await
}

/// The subscribed phase, until the connection ends.
async fn serve(
    socket: &mut Socket,
    subscription: &mut Subscription<Utf8Bytes>,
    state: &AppState,
    closing: &mut watch::Receiver<bool>,
) -> Ending {
    let keepalive: Duration = state.config.ws_keepalive;
    // Made once, not on every turn of the loop: a fresh `changed()` and a
    // fresh timer per event register and unregister with tokio each time.
    let closed = closing.changed();
    tokio::pin!(closed);
    let quiet = tokio::time::sleep(keepalive);
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            biased;
            _ = &mut closed => return Ending::Close(Close::GoingAway),
            incoming = receive(socket) => match incoming {
                Incoming::Gone(ending) => return ending,
                Incoming::Skip => {}
                Incoming::Data(data) => {
                    quiet.as_mut().reset(Instant::now() + keepalive);
                    if let Some(reply) = on_message(&data, subscription, state) {
                        if !send(socket, reply).await {
                            return Ending::Lost;
                        }
                    }
                }
            },
            next = subscription.next() => match next {
                Ok(Next::Event { frame, seq, received }) => {
                    let timed = received.filter(|_| metrics::stage_sampled(seq));
                    if !write_batch(socket, frame, timed, subscription).await {
                        return Ending::Lost;
                    }
                }
                Ok(Next::Evicted { last_seq }) => {
                    tracing::debug!(subscriber = %subscription.public_id(), last_seq, "closing a slow subscriber");
                    return Ending::Close(Close::SlowConsumer { last_seq });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replay for a resuming subscriber failed");
                    return Ending::Close(Close::ServerError);
                }
            },
            () = &mut quiet => {
                quiet.as_mut().reset(Instant::now() + keepalive);
                if !send(socket, json_message(&json!({"type": "keepalive"}))).await {
                    return Ending::Lost;
                }
            }
        }
    }
}

/// Writes `first` and whatever else is ready (up to [`WRITE_BATCH`]) with
/// one flush, and measures the stages of `first` when `received` (its
/// receipt time) is given. `false` when the client is gone or does not read.
async fn write_batch(
    socket: &mut Socket,
    first: Utf8Bytes,
    received: Option<Timestamp>,
    subscription: &mut Subscription<Utf8Bytes>,
) -> bool {
    let dequeued = received.map(|r| (r, Timestamp::now()));
    let mut written = 1;
    let write = async {
        socket.feed(Message::Text(first)).await?;
        for _ in 1..WRITE_BATCH {
            match subscription.next().now_or_never() {
                Some(Ok(Next::Event { frame, .. })) => {
                    socket.feed(Message::Text(frame)).await?;
                    written += 1;
                }
                // Eviction or an error: flush what we have; the next call sees it again.
                _ => break,
            }
        }
        socket.flush().await
    };
    let ok = matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(Ok(())));
    if ok {
        metrics::delivered(written);
        if let Some((received, dequeued)) = dequeued {
            metrics::delivery_stages(received, dequeued);
        }
    }
    ok
}

/// The reply to a message of a subscribed client, if it needs one. Invalid
/// JSON, non-objects and unknown types are ignored; none ends the subscription.
fn on_message(
    data: &[u8],
    subscription: &mut Subscription<Utf8Bytes>,
    state: &AppState,
) -> Option<Message> {
    if data.len() > state.config.max_ws_message_bytes {
        return Some(error_message("Message too large"));
    }
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(data) else {
        return None;
    };
    match message.get("type").and_then(Value::as_str) {
        Some("ping") => Some(json_message(&json!({"type": "pong"}))),
        Some("update_filters") => Some(update_filters(&message, subscription)),
        _ => None,
    }
}

fn update_filters(
    message: &Map<String, Value>,
    subscription: &mut Subscription<Utf8Bytes>,
) -> Message {
    let filters = match message.get("filters") {
        Some(Value::Object(filters)) => filters,
        None | Some(Value::Null) => return error_message("update_filters needs a filters object"),
        Some(_) => return error_message("filters must be a JSON object"),
    };
    match SubscribeRequest::from_object(filters) {
        Ok(request) => {
            subscription.update_filter(request.filter);
            json_message(
                &json!({"status": "filters_updated", "filters": Value::Object(filters.clone())}),
            )
        }
        Err(e) => error_message(&e.0),
    }
}
