//! `GET /stream`: live events as Server-Sent Events, for browsers and
//! networks where WebSockets do not pass. The filter is the query
//! (`event_types`, `session_id`, `user_id`), credentials as for a WebSocket
//! handshake (`X-API-Key`, `Authorization: Bearer`, `?api_key=`,
//! `?token=`), the scope applied as on `/ws/subscribe`; each event is
//! `id: <seq>`, `event: <type>`, `data: <the event JSON>`; `Last-Event-ID`
//! (or `?since_seq=`) resumes gap-free. A stream that falls behind, whose
//! credential expires, or that shutdown ends, ends with `event: error`
//! naming the seq to resume from.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use ep_domain::{
    authorize, Caller, GetError, Next, Operation, Refused, SubscribeRequest, Subscription,
};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use warp::http::HeaderMap;
use warp::reply::{Reply, Response};
use warp::sse::Event;
use warp::Filter;

use super::answer;
use crate::admission::{authenticate_handshake, client_ip};
use crate::api_error::ApiError;
use crate::metrics;
use crate::schemas::Detail;
use crate::served::{at, entry};
use crate::state::AppState;
use crate::ws::{Close, Lease};

type Pairs = Vec<(String, String)>;

/// How long a browser waits before reconnecting (the `retry:` hint).
const RETRY: Duration = Duration::from_secs(3);
/// Events waiting for the client to read them, beyond what the socket
/// holds.
const QUEUE: usize = 64;
/// How long an event may wait for a client that does not read before the
/// stream is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The route label of the stream's connections in the metrics.
const ROUTE: &str = "/api/v1/stream";

/// Live events as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    operation_id = "stream",
    tag = "websocket",
    description = "A `text/event-stream` that does not end: each matching committed event as \
        `id: <seq>`, `event: <event_type>`, `data: <the event JSON>`, in seq order, limited to \
        the credential's scope; a `: keepalive` comment every WS_KEEPALIVE_SECONDS of silence; \
        `retry: 3000` first. `Last-Event-ID` (sent by a browser that reconnects) or \
        `since_seq` resumes after that seq, `last_event_id` after that event id. The stream \
        ends with `event: error`, `data: {\"error\", \"message\", \"resume_from\"}` when it \
        falls behind (`slow_consumer`), its token expires (`token_expired`), its key is \
        revoked (`credential_revoked`) or the server shuts down (`shutting_down`): reconnect \
        with `Last-Event-ID: <resume_from>` to lose nothing. Credentials as for a WebSocket \
        handshake (`?api_key=` and `?token=` too, which `EventSource` needs).",
    params(
        ("event_types" = Option<String>, Query, description = "Types, comma-separated or repeated"),
        ("session_id" = Option<String>, Query, description = "One session"),
        ("user_id" = Option<String>, Query, description = "One user"),
        ("since_seq" = Option<u64>, Query, description = "Resume after this seq"),
        ("last_event_id" = Option<String>, Query, description = "Resume after this event id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this seq (a browser's reconnect)"),
    ),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 404, description = "`last_event_id` names no event the caller may see", body = Detail),
        (status = 422, description = "A filter the service cannot take", body = Detail),
        (status = 429, description = "MAX_WS_CONNECTIONS_PER_IP streams and WebSockets are open from this address", body = Detail),
        (status = 503, description = "MAX_SUBSCRIBERS reached, or shutting down", body = Detail),
    )
)]
pub(crate) fn stream_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    at(entry(Operation::Stream))
        .and(warp::header::headers_cloned())
        .and(warp::query::<Pairs>())
        .and(crate::client::peer())
        .and_then(move |_, headers, pairs, remote| {
            answer(open(state.clone(), headers, pairs, remote))
        })
}

/// Every value of `name`: repeated, or comma-separated.
fn values<'a>(pairs: &'a Pairs, name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// The subscribe filter the query asks for, as a `/ws/subscribe` filter
/// message would say it.
fn filter_message(
    pairs: &Pairs,
    last_event_id: Option<&str>,
) -> Result<Map<String, Value>, ApiError> {
    let mut filter = Map::new();
    let types = values(pairs, "event_types");
    if !types.is_empty() {
        filter.insert("event_types".into(), json!(types));
    }
    for key in ["session_id", "user_id"] {
        match values(pairs, key).as_slice() {
            [] => {}
            [one] => {
                filter.insert(key.into(), json!(one));
            }
            _ => {
                return Err(ApiError::BadMessage(format!(
                    "{key} takes one value on a stream (open one stream per {key})"
                )))
            }
        }
    }
    // `Last-Event-ID` (what a browser sends when it reconnects) wins; it
    // is the seq of the last event received.
    let since = last_event_id.or_else(|| values(pairs, "since_seq").last().copied());
    if let Some(since) = since {
        let seq: u64 = since.parse().map_err(|_| {
            ApiError::BadMessage(
                "Last-Event-ID and since_seq are a seq: a non-negative integer".into(),
            )
        })?;
        filter.insert("since_seq".into(), json!(seq));
    }
    if let Some(id) = values(pairs, "last_event_id").last() {
        filter.insert("last_event_id".into(), json!(id));
    }
    Ok(filter)
}

/// Authenticates, checks the filter against the scope, takes a connection
/// slot and a subscription, and answers the stream; every refusal before
/// it is a JSON error with its status.
async fn open(
    state: AppState,
    headers: HeaderMap,
    pairs: Pairs,
    remote: Option<SocketAddr>,
) -> Result<Response, ApiError> {
    let principal = authenticate_handshake(&state, &headers, &pairs)?;
    authorize(&principal, Operation::Stream).map_err(Refused::from)?;
    let client = client_ip(&state, remote, &headers);
    let caller = Caller::new(principal, client);
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let message = filter_message(&pairs, last_event_id)?;
    let request = SubscribeRequest::from_object(&message).map_err(|e| ApiError::BadMessage(e.0))?;
    let filter = state
        .service
        .subscription_filter(&caller, &request.type_names, request.filter.clone())
        .map_err(|denied| ApiError::Refused(Refused::Denied(denied)))?;
    let resume_after = match &request.resume {
        None => None,
        Some(resume) => Some(state.service.resume_point(&caller, resume).await.map_err(
            |e| match e {
                GetError::NotFound | GetError::Refused(_) => ApiError::UnknownResumePoint,
                other => ApiError::Get(other),
            },
        )?),
    };
    let slot = state
        .ws
        .limiter
        .try_acquire(client)
        .ok_or(ApiError::TooManyConnections)?;
    let (ticket, closing) = state.ws.sessions.open().ok_or(ApiError::ShuttingDown)?;
    let subscription = state
        .hub
        .subscribe(filter, resume_after)
        .map_err(|_| ApiError::AtCapacity)?;
    tracing::debug!(subscriber = %subscription.public_id(), ?resume_after, %client, "event stream open");
    metrics::websocket(ROUTE, 1.0);
    let hello = Event::default()
        .retry(RETRY)
        .comment(format!("subscribed {}", subscription.public_id()));
    let live = Live {
        lease: Lease::new(&state, &caller.principal),
        caller,
        state: state.clone(),
        subscription,
        closing,
        open: Some(Open {
            _slot: slot,
            _ticket: ticket,
        }),
    };
    // The subscription is served by a task of its own, through a short
    // queue: the response's body must be `Sync`, a subscription's future
    // is not. A client that stops reading fills the queue; after
    // WRITE_TIMEOUT the task gives up, as for a WebSocket.
    // The final `error` event comes apart, after every queued one.
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(QUEUE);
    let (end_tx, end_rx) = tokio::sync::oneshot::channel::<Event>();
    let _ = tx.try_send(hello);
    tokio::spawn(live.serve(tx, end_tx));
    let events = queued_then_last(rx, end_rx);
    let keepalive = warp::sse::keep_alive()
        .interval(state.config.ws_keepalive)
        .text("keepalive");
    let mut response = warp::sse::reply(keepalive.stream(events)).into_response();
    // Proxies (nginx) that buffer responses would hold the events back.
    response.headers_mut().insert(
        "x-accel-buffering",
        warp::http::HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// The events of `queue` until it closes, then the one of `last` (if it
/// is sent).
fn queued_then_last(
    queue: tokio::sync::mpsc::Receiver<Event>,
    last: tokio::sync::oneshot::Receiver<Event>,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> + Send + Sync + 'static {
    use std::future::Future;
    use std::task::Poll;
    let (mut queue, mut last) = (Some(queue), Some(last));
    futures_util::stream::poll_fn(move |cx| {
        if let Some(q) = queue.as_mut() {
            match q.poll_recv(cx) {
                Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(event))),
                Poll::Ready(None) => queue = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        if let Some(l) = last.as_mut() {
            let polled = std::pin::Pin::new(l).poll(cx);
            if polled.is_ready() {
                last = None;
            }
            return match polled {
                Poll::Ready(Ok(event)) => Poll::Ready(Some(Ok(event))),
                Poll::Ready(Err(_)) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
        Poll::Ready(None)
    })
}

/// What a stream holds while open: its connection slot and its session
/// (shutdown waits for it); both go when the stream ends.
struct Open {
    _slot: crate::ws::Slot,
    _ticket: crate::ws::SessionTicket,
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::websocket(ROUTE, -1.0);
    }
}

/// A live stream's state.
struct Live {
    caller: Caller,
    lease: Lease,
    state: AppState,
    subscription: Subscription<Utf8Bytes>,
    closing: watch::Receiver<bool>,
    /// `None` once the stream has ended.
    open: Option<Open>,
}

/// What a live stream sends next.
enum Step {
    /// An event and its seq.
    Event(Event, u64),
    /// The final `error` event.
    End(Event),
}

/// How a stream ended, as its final `event: error` says.
fn ending(error: &str, message: &str, resume_from: u64) -> Event {
    Event::default()
        .event("error")
        .data(json!({"error": error, "message": message, "resume_from": resume_from}).to_string())
}

impl Live {
    /// Sends events into `queue` until the stream ends, the client goes,
    /// or it stops reading; then the final `error` event into `last`.
    async fn serve(
        mut self,
        queue: tokio::sync::mpsc::Sender<Event>,
        last: tokio::sync::oneshot::Sender<Event>,
    ) {
        // The seq of the last event the client will get (queued).
        let mut sent = self.subscription.last_seq();
        let end = {
            let Live {
                caller,
                lease,
                state,
                subscription,
                closing,
                ..
            } = &mut self;
            // Made once for the stream, not once per event: each one made
            // registers with a watch that every connection shares (the
            // shutdown's, the key reloads'), and unregisters when dropped.
            // A stream takes no messages, so its lease never changes.
            let closed = closing.changed();
            let ended = lease.ended(state, &caller.principal);
            tokio::pin!(closed, ended);
            loop {
                let step = tokio::select! {
                    biased;
                    // The client went away: the server dropped the response
                    // (and its end of the queue) at once, not at the next write.
                    () = queue.closed() => return,
                    _ = &mut closed => Step::End(ending(
                        "shutting_down",
                        "The server is shutting down; reconnect to resume",
                        subscription.last_seq(),
                    )),
                    close = &mut ended => {
                        let (error, message) = match close {
                            Close::TokenExpired => ("token_expired", "Token expired"),
                            _ => ("credential_revoked", "The credential was revoked"),
                        };
                        Step::End(ending(error, message, subscription.last_seq()))
                    }
                    next = subscription.next() => step_for(next, subscription, state, caller),
                };
                match step {
                    Step::End(event) => break event,
                    Step::Event(event, seq) => {
                        match tokio::time::timeout(WRITE_TIMEOUT, queue.send(event)).await {
                            Ok(Ok(())) => sent = seq,
                            // The client went away.
                            Ok(Err(_)) => return,
                            Err(_) => {
                                metrics::slow_subscriber_closed();
                                break ending(
                                    "slow_consumer",
                                    "The stream fell too far behind; reconnect to resume",
                                    sent,
                                );
                            }
                        }
                    }
                }
            }
        };
        drop(queue);
        self.open = None;
        let _ = last.send(end);
        tracing::debug!(subscriber = %self.subscription.public_id(), "event stream closed");
    }
}

/// What the subscription's `next` calls for: an event to send, or the
/// `error` event that ends the stream.
fn step_for(
    next: Result<Next<Utf8Bytes>, ep_ports::StoreError>,
    subscription: &Subscription<Utf8Bytes>,
    state: &AppState,
    caller: &Caller,
) -> Step {
    match next {
        Ok(Next::Event {
            frame,
            seq,
            event_type,
            ..
        }) => {
            metrics::delivered(1);
            Step::Event(
                Event::default()
                    .id(seq.to_string())
                    .event(event_type.as_str())
                    .data(frame.as_str()),
                seq,
            )
        }
        Ok(Next::Evicted { last_seq }) => {
            metrics::slow_subscriber_closed();
            state.refusals.note(
                crate::refusals::Refusal::SlowSubscriber,
                caller.address,
                ROUTE,
            );
            Step::End(ending(
                "slow_consumer",
                "The stream fell too far behind; reconnect to resume",
                last_seq,
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "replay for a resuming event stream failed");
            Step::End(ending(
                "server_error",
                "Replay from the store failed; reconnect to resume",
                subscription.last_seq(),
            ))
        }
    }
}
