//! `/ws/publish`: one event per text message, one reply per message, in
//! order. Publishing goes through the same domain path as REST (validation,
//! queue, commit). Clients may pipeline: up to [`IN_FLIGHT`] messages are
//! accepted before their replies are written; beyond that, reading pauses.

use std::future::Future;
use std::pin::Pin;

use ep_domain::{PublishError, PublishRequest};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::close::Close;
use super::upgrade::Socket;
use super::{error_message, send, WRITE_TIMEOUT};
use crate::state::AppState;

/// Messages read but not yet answered, per connection.
const IN_FLIGHT: usize = 4_096;

type ReplyFuture = Pin<Box<dyn Future<Output = Message> + Send>>;

/// The text for a publish that failed.
fn failure_text(error: &PublishError) -> String {
    match error {
        PublishError::Invalid(errors) => {
            if errors
                .0
                .iter()
                .any(|e| e.kind == "json_invalid" || (e.kind == "missing" && e.loc.len() == 1))
            {
                "Invalid JSON".to_owned()
            } else {
                errors.to_string()
            }
        }
        PublishError::QueueFull => "Publish queue is full; try again shortly".to_owned(),
        PublishError::ShuttingDown => "Service is shutting down".to_owned(),
        PublishError::Store(_) => "Event store unavailable; try again shortly".to_owned(),
    }
}

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

/// The reply to one message: ready now (refused) or once committed.
fn handle(state: &AppState, data: &[u8]) -> ReplyFuture {
    if data.len() > state.config.max_ws_message_bytes {
        return Box::pin(std::future::ready(error_message("Message too large")));
    }
    let queued = PublishRequest::from_json(data)
        .map_err(PublishError::Invalid)
        .and_then(|request| state.service.enqueue(request));
    match queued {
        Ok(commit) => Box::pin(commit.map(|outcome| match outcome {
            Ok(event) => ok_message(event.id.as_str()),
            Err(e) => error_message(&failure_text(&e)),
        })),
        Err(e) => Box::pin(std::future::ready(error_message(&failure_text(&e)))),
    }
}

/// Serves one publishing connection until it closes or the server shuts down.
pub(super) async fn run(socket: Socket, state: AppState, mut closing: watch::Receiver<bool>) {
    let (mut sink, mut stream) = socket.split();
    let (replies_tx, mut replies_rx) = mpsc::channel::<ReplyFuture>(IN_FLIGHT);

    // Writes replies in order; batches those already available into one flush.
    let writer = tokio::spawn(async move {
        let mut waiting: Option<ReplyFuture> = None;
        loop {
            let reply = match waiting.take() {
                Some(reply) => reply,
                None => match replies_rx.recv().await {
                    Some(reply) => reply,
                    None => break,
                },
            };
            let mut message = reply.await;
            loop {
                if tokio::time::timeout(WRITE_TIMEOUT, sink.feed(message))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    return None;
                }
                let Ok(mut next) = replies_rx.try_recv() else {
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
            if tokio::time::timeout(WRITE_TIMEOUT, sink.flush())
                .await
                .map_or(true, |r| r.is_err())
            {
                return None;
            }
        }
        Some(sink)
    });

    let mut close = Close::Normal;
    loop {
        let message = tokio::select! {
            biased;
            _ = closing.changed() => { close = Close::GoingAway; break; }
            message = stream.next() => message,
        };
        let reply = match message {
            Some(Ok(Message::Text(text))) => handle(&state, text.as_bytes()),
            Some(Ok(Message::Binary(data))) => handle(&state, &data),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "WebSocket publisher read failed");
                if matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
                    close = Close::TooLarge;
                }
                break;
            }
        };
        if replies_tx.send(reply).await.is_err() {
            break; // the writer gave up on this client
        }
    }
    // Every message read gets its reply (their events are committed or
    // refused), then the close frame.
    drop(replies_tx);
    if let Ok(Some(mut sink)) = writer.await {
        send(&mut sink, close.message()).await;
    }
}
