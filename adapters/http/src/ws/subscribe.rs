//! `/ws/subscribe`: the filter handshake, then events as bare JSON objects,
//! `ping`/`pong`, `update_filters`, keepalives, and resume from a `seq`.

use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;

use ep_domain::{
    AtCapacity, Caller, Denied, GetError, Next, Refused, SubscribeRequest, Subscription,
};
use ep_ports::Timestamp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::close::{Close, Ending};
use super::gate::Gate;
use super::lease::Lease;
use super::socket::Socket;
use super::{json_message, send, WRITE_TIMEOUT};
use crate::api_error::ApiError;
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
    std::future::poll_fn(|cx| poll_receive(socket, cx)).await
}

/// The client's next message, if one has come.
fn poll_receive(socket: &mut Socket, cx: &mut Context<'_>) -> Poll<Incoming> {
    socket.poll_next_unpin(cx).map(|message| match message {
        Some(Ok(Message::Text(text))) => Incoming::Data(text.as_bytes().to_vec()),
        Some(Ok(Message::Binary(data))) => Incoming::Data(data.to_vec()),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Incoming::Skip,
        Some(Ok(Message::Close(_))) => Incoming::Gone(Ending::PeerClosed),
        Some(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket subscriber read failed");
            Incoming::Gone(Ending::after_read_error(&e))
        }
        None => Incoming::Gone(Ending::Lost),
    })
}

/// What ends or interrupts the subscribed phase, apart from events and
/// client messages.
enum Signal {
    /// The server is shutting down.
    Closing,
    /// The credential's lease ended (expired or revoked).
    Ended(Close),
    /// Nothing was sent for a keepalive period.
    Quiet,
}

/// Refuses the subscription with an error reply; the connection then
/// closes with `close`.
async fn refuse(socket: &mut Socket, error: ApiError, close: Close) -> Ending {
    if send(socket, error_reply(error)).await {
        Ending::Close(close)
    } else {
        Ending::Lost
    }
}

/// Refuses a subscription outside the caller's scope (or role): the error
/// reply, then close 4003 with the same reason.
async fn forbid(socket: &mut Socket, denied: Denied) -> Ending {
    let reason = denied.to_string();
    refuse(
        socket,
        ApiError::Refused(Refused::Denied(denied)),
        Close::Forbidden(reason),
    )
    .await
}

/// The `{"status":"error",...}` reply for `error`, its text from the one table.
fn error_reply(error: ApiError) -> Message {
    json_message(&error.ws_reply())
}

/// Serves one subscriber until it leaves, falls behind, or the server
/// stops; returns the socket (unless it was lost) and how it ends.
///
/// One task owns the socket, reading and writing in turn: no split halves
/// behind a lock on every frame. Its future is what an idle subscriber
/// costs, so it holds no second copy of its arguments (a rebound socket,
/// a wrapper future keeping a moved caller).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn's future keeps its arguments twice"
)]
pub(super) fn run(
    mut socket: Socket,
    state: AppState,
    mut caller: Box<Caller>,
    mut closing: watch::Receiver<bool>,
) -> impl std::future::Future<Output = (Option<Socket>, Ending)> + Send {
    // An async block, not an async fn: an async fn's future keeps its
    // arguments twice (as passed, and moved into its body), and this one
    // lives as long as the connection.
    async move {
        let client = caller.address;
        let ending = 'served: {
            // The handshake's future is boxed (it is larger than the live
            // phase's and over in a moment), and its result is taken apart in
            // this statement, so that neither stays in this future beside the
            // live phase's state.
            let (mut subscription, mut live) =
                match Box::pin(handshake(&mut socket, &state, &mut caller, &mut closing)).await {
                    Ok(subscribed) => subscribed,
                    Err(ending) => break 'served ending,
                };
            serve(
                &mut socket,
                &mut subscription,
                &state,
                &mut live,
                &mut closing,
            )
            .await
        };
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
}

/// What a live subscriber has: who it is (its connection's one copy), the
/// filter as it asked it (a refreshed token narrows it again), and its
/// credential's lease.
struct Live<'c> {
    caller: &'c mut Caller,
    asked: SubscribeRequest,
    lease: Lease,
}

/// The filter message, its checks and its ack. Everything it parsed and
/// sent (the filter's JSON, the ack) is dropped when it returns, before
/// the subscriber's long wait: an idle subscriber keeps only its
/// subscription and [`Live`] (the ack and the filter object held
/// 1.2 KiB of each idle subscriber's memory before).
async fn handshake<'c>(
    socket: &mut Socket,
    state: &AppState,
    caller: &'c mut Caller,
    closing: &mut watch::Receiver<bool>,
) -> Result<(Subscription<Utf8Bytes>, Live<'c>), Ending> {
    let limits = &state.config;

    // 1. The filter message, within the time allowed.
    let first = loop {
        let incoming = tokio::select! {
            biased;
            _ = closing.changed() => return Err(Ending::Close(Close::GoingAway)),
            r = tokio::time::timeout(limits.ws_filter_timeout, receive(socket)) => r,
        };
        match incoming {
            Err(_) => return Err(Ending::Close(Close::FilterTimeout)),
            Ok(Incoming::Skip) => continue,
            Ok(Incoming::Gone(Ending::Close(Close::TooLarge))) => {
                return Err(refuse(socket, ApiError::MessageTooLarge, Close::TooLarge).await);
            }
            Ok(Incoming::Gone(ending)) => return Err(ending),
            Ok(Incoming::Data(data)) => break data,
        }
    };
    if first.len() > limits.max_ws_message_bytes {
        return Err(refuse(socket, ApiError::MessageTooLarge, Close::TooLarge).await);
    }
    let Ok(value) = serde_json::from_slice::<Value>(&first) else {
        return Err(refuse(socket, ApiError::InvalidJson, Close::InvalidJson).await);
    };
    let Value::Object(filters) = value else {
        return Err(refuse(
            socket,
            ApiError::BadMessage("The filter must be a JSON object".into()),
            Close::BadFilter,
        )
        .await);
    };
    let request = match SubscribeRequest::from_object(&filters) {
        Ok(request) => request,
        Err(e) => return Err(refuse(socket, ApiError::BadMessage(e.0), Close::BadFilter).await),
    };
    let filter =
        match state
            .service
            .subscription_filter(caller, &request.type_names, request.filter.clone())
        {
            Ok(filter) => filter,
            Err(denied) => {
                return Err(forbid(socket, denied).await);
            }
        };
    let resume_after = match &request.resume {
        None => None,
        Some(resume) => match state.service.resume_point(caller, resume).await {
            Ok(seq) => Some(seq),
            // Resuming takes no allowance: the only refusal is "not found".
            Err(GetError::NotFound | GetError::Refused(_)) => {
                return Err(refuse(socket, ApiError::UnknownResumePoint, Close::BadFilter).await)
            }
            Err(GetError::Store(e)) => {
                tracing::warn!(error = %e, "cannot resolve a resume point");
                return Err(refuse(
                    socket,
                    ApiError::Get(GetError::Store(e)),
                    Close::ServerError,
                )
                .await);
            }
        },
    };
    let subscription = match state.hub.subscribe(filter, resume_after) {
        Ok(s) => s,
        Err(AtCapacity) => {
            return Err(refuse(socket, ApiError::AtCapacity, Close::AtCapacity).await)
        }
    };

    // 2. Live: the ack is sent after the subscription is registered.
    let mut ack = json!({"status": "subscribed", "subscriber_id": subscription.public_id(), "filters": Value::Object(filters)});
    name_unknown_types(&mut ack, state, &request.type_names);
    if !send(socket, json_message(&ack)).await {
        return Err(Ending::Lost);
    }
    tracing::debug!(subscriber = %subscription.public_id(), ?resume_after, caller = caller.principal.identity.label(), "subscribed");
    let lease = Lease::new(state, &caller.principal);
    let live = Live {
        caller,
        asked: request,
        lease,
    };
    Ok((subscription, live))
}

/// The subscribed phase, until the connection ends.
async fn serve(
    socket: &mut Socket,
    subscription: &mut Subscription<Utf8Bytes>,
    state: &AppState,
    live: &mut Live<'_>,
    closing: &mut watch::Receiver<bool>,
) -> Ending {
    let keepalive: Duration = state.config.ws_keepalive;
    // Made once, not on every turn of the loop: a fresh `changed()` and a
    // fresh timer per event register and unregister with tokio each time.
    let closed = closing.changed();
    tokio::pin!(closed);
    let quiet = tokio::time::sleep(keepalive);
    tokio::pin!(quiet);
    // The signals and the socket are polled only once they woke the task:
    // a wake-up for events polls the subscription alone.
    let signals = Gate::new();
    let reads = Gate::new();
    loop {
        // The lease's wait, made once until the client's next message (which
        // may renew the lease) rather than on every event: each one made
        // registers with the key reloads' watch, which every connection
        // shares, and unregisters when dropped.
        let data = {
            let ended = live.lease.ended(state, &live.caller.principal);
            tokio::pin!(ended);
            signals.open();
            loop {
                tokio::select! {
                    biased;
                    signal = std::future::poll_fn(|cx| signals.poll(cx, |cx| {
                        if closed.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Signal::Closing);
                        }
                        if let Poll::Ready(close) = ended.as_mut().poll(cx) {
                            return Poll::Ready(Signal::Ended(close));
                        }
                        quiet.as_mut().poll(cx).map(|()| Signal::Quiet)
                    })) => match signal {
                        Signal::Closing => return Ending::Close(Close::GoingAway),
                        Signal::Ended(close) => return Ending::Close(close),
                        Signal::Quiet => {
                            quiet.as_mut().reset(Instant::now() + keepalive);
                            signals.open();
                            if !send(socket, json_message(&json!({"type": "keepalive"}))).await {
                                return Ending::Lost;
                            }
                        }
                    },
                    incoming = std::future::poll_fn(|cx| reads.poll(cx, |cx| poll_receive(socket, cx))) => match incoming {
                        Incoming::Gone(ending) => return ending,
                        Incoming::Skip => {}
                        Incoming::Data(data) => break data,
                    },
                    next = subscription.next() => match next {
                        Ok(Next::Event { frame, seq, received, .. }) => {
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
                }
            }
        };
        quiet.as_mut().reset(Instant::now() + keepalive);
        signals.open();
        match on_message(&data, subscription, state, live) {
            Reply::None => {}
            Reply::Send(reply) => {
                if !send(socket, reply).await {
                    return Ending::Lost;
                }
            }
            Reply::Close(denied) => return forbid(socket, denied).await,
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
    let ok = {
        let write = async {
            socket.feed(Message::Text(first)).await?;
            // What the ring holds ready, read once for all (not once per
            // event) and each frame queued while the socket takes it at once.
            let mut failed = None;
            let taken = std::future::poll_fn(|cx| {
                Poll::Ready(subscription.try_take_frames(WRITE_BATCH - 1, |frame| {
                    queue_at_once(socket, cx, frame, &mut failed)
                }))
            })
            .await;
            if let Some(e) = failed {
                return Err(e);
            }
            written += taken;
            // Then one at a time: a replay's events, those carried over a
            // filter update, or what the socket could not take at once.
            for _ in 1 + taken..WRITE_BATCH {
                // Nothing ready (or an eviction to report): flush what we
                // have; the next call to `next` sees it.
                let Some(Next::Event { frame, .. }) = subscription.try_next() else {
                    break;
                };
                socket.feed(Message::Text(frame)).await?;
                written += 1;
            }
            socket.flush().await
        };
        tokio::pin!(write);
        // A write the socket takes at once (the usual case) needs no timer:
        // the timeout (and its reading of the clock) starts only if it must
        // wait.
        match std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(done) => done.is_ok(),
            Poll::Pending => matches!(tokio::time::timeout(WRITE_TIMEOUT, write).await, Ok(Ok(()))),
        }
    };
    if ok {
        metrics::delivered(written);
        if let Some((received, dequeued)) = dequeued {
            metrics::delivery_stages(received, dequeued);
        }
    }
    ok
}

/// Queues `frame` if the socket takes it without waiting (its buffer has
/// room): `false`, and the frame left for later, when it does not, or when
/// the socket failed (the error in `failed`).
fn queue_at_once(
    socket: &mut Socket,
    cx: &mut Context<'_>,
    frame: &Utf8Bytes,
    failed: &mut Option<tokio_tungstenite::tungstenite::Error>,
) -> bool {
    let result = match socket.poll_ready_unpin(cx) {
        Poll::Pending => return false,
        Poll::Ready(Ok(())) => socket.start_send_unpin(Message::Text(frame.clone())),
        Poll::Ready(Err(e)) => Err(e),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            *failed = Some(e);
            false
        }
    }
}

/// What a subscribed client's message calls for.
enum Reply {
    /// Nothing.
    None,
    /// This reply.
    Send(Message),
    /// An error reply for this refusal, then close 4003 (a refreshed token
    /// whose scope no longer covers the filter).
    Close(Denied),
}

/// The reply to a message of a subscribed client. Invalid JSON,
/// non-objects and unknown types are ignored; none ends the subscription.
fn on_message(
    data: &[u8],
    subscription: &mut Subscription<Utf8Bytes>,
    state: &AppState,
    live: &mut Live<'_>,
) -> Reply {
    if data.len() > state.config.max_ws_message_bytes {
        return Reply::Send(error_reply(ApiError::MessageTooLarge));
    }
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(data) else {
        return Reply::None;
    };
    match message.get("type").and_then(Value::as_str) {
        Some("ping") => Reply::Send(json_message(&json!({"type": "pong"}))),
        Some("update_filters") => Reply::Send(update_filters(&message, subscription, state, live)),
        Some("refresh_token") => refresh_token(&message, subscription, state, live),
        _ => Reply::None,
    }
}

/// A fresh token for the same `sub`: the filter as asked is narrowed to
/// the new scope (outside it: close 4003) and the lease renewed.
fn refresh_token(
    message: &Map<String, Value>,
    subscription: &mut Subscription<Utf8Bytes>,
    state: &AppState,
    live: &mut Live<'_>,
) -> Reply {
    let mut caller = (*live.caller).clone();
    let reply = match live.lease.refresh(state, &mut caller, message) {
        Ok(reply) => reply,
        Err(e) => return Reply::Send(error_reply(e)),
    };
    match state.service.subscription_filter(
        &caller,
        &live.asked.type_names,
        live.asked.filter.clone(),
    ) {
        Ok(filter) => {
            subscription.update_filter(filter);
            *live.caller = caller;
            Reply::Send(json_message(&reply))
        }
        Err(denied) => Reply::Close(denied),
    }
}

fn update_filters(
    message: &Map<String, Value>,
    subscription: &mut Subscription<Utf8Bytes>,
    state: &AppState,
    live: &mut Live<'_>,
) -> Message {
    let filters = match message.get("filters") {
        Some(Value::Object(filters)) => filters,
        None | Some(Value::Null) => {
            return error_reply(ApiError::BadMessage(
                "update_filters needs a filters object".into(),
            ))
        }
        Some(_) => {
            return error_reply(ApiError::BadMessage("filters must be a JSON object".into()))
        }
    };
    let request = match SubscribeRequest::from_object(filters) {
        Ok(request) => request,
        Err(e) => return error_reply(ApiError::BadMessage(e.0)),
    };
    match state.service.subscription_filter(
        live.caller,
        &request.type_names,
        request.filter.clone(),
    ) {
        Ok(filter) => {
            subscription.update_filter(filter);
            let mut ack =
                json!({"status": "filters_updated", "filters": Value::Object(filters.clone())});
            name_unknown_types(&mut ack, state, &request.type_names);
            live.asked = request;
            json_message(&ack)
        }
        // Outside the scope: the old filter stays.
        Err(denied) => error_reply(ApiError::Refused(Refused::Denied(denied))),
    }
}

/// Names, in an ack, the filter's types that no registered type has (the
/// filter is kept, as the old service kept it, and matches none of them):
/// a typo such as `quiz_start` is otherwise a subscription that never
/// receives anything.
fn name_unknown_types(ack: &mut Value, state: &AppState, names: &[String]) {
    let types = state.service.event_types();
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| types.get(n).is_none())
        .collect();
    if unknown.is_empty() {
        return;
    }
    tracing::info!(unknown_event_types = ?unknown, "a subscription filter names types that are not registered");
    ack["unknown_event_types"] = json!(unknown);
}
