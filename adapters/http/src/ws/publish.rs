//! `/ws/publish`: one event per text message, one reply per message, in
//! order. Publishing goes through the same admission as REST (validation,
//! the client's publish rate limit, queue, commit). Clients may pipeline:
//! up to [`IN_FLIGHT`] messages are accepted before their replies are
//! written; beyond that, reading pauses.

use std::future::Future;
use std::pin::Pin;

use ep_domain::{Caller, Operation};

use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use super::close::{Close, Ending};
use super::lease::Lease;
use super::socket::Socket;
use super::{json_message, WRITE_TIMEOUT};
use crate::admission::admit_publish;
use crate::api_error::ApiError;
use crate::refusals::Refusal;
use crate::state::AppState;

/// Messages read but not yet answered, per connection.
const IN_FLIGHT: usize = 4_096;

type ReplyFuture = Pin<Box<dyn Future<Output = Message> + Send>>;
type Sink = SplitSink<Socket, Message>;

/// `{"status":"ok","event_id":...}`, written directly: this is the reply to
/// every published event, and ids are `evt_` and hex digits, which need no
/// escaping.
fn ok_message(event_id: &str) -> Message {
    let mut text = String::with_capacity(40 + event_id.len());
    text.push_str(r#"{"status":"ok","event_id":""#);
    text.push_str(event_id);
    text.push_str(r#""}"#);
    Message::Text(text.into())
}

fn ready(message: Message) -> ReplyFuture {
    Box::pin(std::future::ready(message))
}

/// A `{"type":"refresh_token",...}` message, if this is one. Only messages
/// that mention it are parsed for it: events are not parsed twice.
fn refresh_request(data: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    const MARK: &[u8] = b"refresh_token";
    if !data.windows(MARK.len()).any(|w| w == MARK) {
        return None;
    }
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(m))
            if m.get("type").and_then(serde_json::Value::as_str) == Some("refresh_token") =>
        {
            Some(m)
        }
        _ => None,
    }
}

/// The reply to one message: ready now (refused, or a token refreshed) or
/// once committed.
fn handle(state: &AppState, caller: &mut Caller, lease: &mut Lease, data: &[u8]) -> ReplyFuture {
    if data.len() > state.config.max_ws_message_bytes {
        return ready(json_message(&ApiError::MessageTooLarge.ws_reply()));
    }
    if let Some(message) = refresh_request(data) {
        return ready(match lease.refresh(state, caller, &message) {
            Ok(reply) => json_message(&reply),
            Err(e) => json_message(&e.ws_reply()),
        });
    }
    match admit_publish(state, caller, data, None, Operation::WsPublish) {
        Ok(commit) => Box::pin(commit.map(|outcome| match outcome {
            Ok(event) => ok_message(event.id.as_str()),
            Err(e) => json_message(&ApiError::from(e).ws_reply()),
        })),
        Err(e) => {
            if e.is_rate_limited() {
                state.refusals.note_by(
                    Refusal::RateLimited,
                    caller.address,
                    "/ws/publish",
                    Some(caller.principal.identity.label()),
                );
            }
            ready(json_message(&e.ws_reply()))
        }
    }
}

/// Serves one publishing connection until it closes or the server shuts
/// down; returns the socket (unless it was lost) and how it ends.
pub(super) async fn run(
    socket: Socket,
    state: AppState,
    mut caller: Caller,
    mut closing: watch::Receiver<bool>,
) -> (Option<Socket>, Ending) {
    let mut lease = Lease::new(&state, &caller.principal);
    let (sink, mut stream) = socket.split();
    let (replies_tx, replies_rx) = mpsc::channel::<ReplyFuture>(IN_FLIGHT);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let writer = tokio::spawn(write_replies(sink, replies_rx, stop_rx));

    let ending = loop {
        let message = tokio::select! {
            biased;
            _ = closing.changed() => break Ending::Close(Close::GoingAway),
            close = lease.ended(&state, &caller.principal) => break Ending::Close(close),
            message = stream.next() => message,
        };
        let reply = match message {
            Some(Ok(Message::Text(text))) => {
                handle(&state, &mut caller, &mut lease, text.as_bytes())
            }
            Some(Ok(Message::Binary(data))) => handle(&state, &mut caller, &mut lease, &data),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) => break Ending::PeerClosed,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "WebSocket publisher read failed");
                break Ending::after_read_error(&e);
            }
            None => break Ending::Lost,
        };
        if replies_tx.send(reply).await.is_err() {
            break Ending::Lost; // the writer gave up on this client
        }
    };
    // Every message read gets its reply (their events are committed or
    // refused), then the close frame; unless the client closed first, when
    // replies may no longer be sent: its close frame is answered at once.
    drop(replies_tx);
    if matches!(ending, Ending::PeerClosed | Ending::Lost) {
        let _ = stop_tx.send(());
    }
    let (sink, written) = match writer.await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "WebSocket reply writer failed");
            return (None, Ending::Lost);
        }
    };
    let ending = match (written, ending) {
        (Err(Ending::Lost), _) | (_, Ending::Lost) => return (None, Ending::Lost),
        (Err(failed), _) => failed,
        (Ok(()), ending) => ending,
    };
    match sink.reunite(stream) {
        Ok(socket) => (Some(socket), ending),
        Err(_) => (None, Ending::Lost),
    }
}

/// Writes replies in order, batching those already available into one
/// flush, until the reader is done (every reply written) or tells it to
/// stop. Returns the sink, and how the connection ends if a write failed
/// ([`Ending::PeerClosed`] or [`Ending::Lost`]).
async fn write_replies(
    mut sink: Sink,
    mut replies: mpsc::Receiver<ReplyFuture>,
    mut stop: oneshot::Receiver<()>,
) -> (Sink, Result<(), Ending>) {
    let mut waiting: Option<ReplyFuture> = None;
    let outcome = loop {
        let reply = match waiting.take() {
            Some(reply) => reply,
            None => match replies.recv().await {
                Some(reply) => reply,
                None => break Ok(()),
            },
        };
        let mut message = tokio::select! {
            biased;
            _ = &mut stop => break Ok(()),
            message = reply => message,
        };
        let written = async {
            loop {
                sink.feed(message).await?;
                let Ok(mut next) = replies.try_recv() else {
                    break;
                };
                match next.as_mut().now_or_never() {
                    Some(ready) => message = ready,
                    None => {
                        // Not committed yet: flush what is written, then wait for it.
                        waiting = Some(next);
                        break;
                    }
                }
            }
            sink.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, written).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break Err(Ending::after_write_error(&e)),
            Err(_) => break Err(Ending::Lost),
        }
    };
    (sink, outcome)
}
