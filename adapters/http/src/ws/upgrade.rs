//! The WebSocket handshake: checks the upgrade request and its `Origin`
//! (403 for a foreign one), answers 101, and refuses (with a close frame, as
//! clients expect) a wrong key or a client over its connection limit. The
//! key is checked by the same code as REST's, the client address is the
//! same as REST's (forwarded by a trusted proxy).

use std::net::SocketAddr;

use ep_domain::{authorize, Caller, Operation};
use ep_ports::AuthError;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::http::header::{
    HeaderValue, CONNECTION, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::Filter;

use super::close::{Close, Ending};
use super::half_close::HalfCloseAware;
use super::{closing, publish, subscribe};
use crate::admission::{authenticate_handshake, client_ip};
use crate::api_error::ApiError;
use crate::metrics;
use crate::refusals::Refusal;
use crate::reply::detail;
use crate::schemas::{Detail, Handshake};
use crate::served::{at, entry};
use crate::state::AppState;

type Pairs = Vec<(String, String)>;

/// Which endpoint.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Publish,
    Subscribe,
}

impl Endpoint {
    /// The operation it performs: its path, method and role are its entry
    /// in the route table.
    fn action(self) -> Operation {
        match self {
            Endpoint::Publish => Operation::WsPublish,
            Endpoint::Subscribe => Operation::Subscribe,
        }
    }

    /// Its path, as logs and metrics name it.
    fn route(self) -> &'static str {
        entry(self.action()).path
    }
}

/// `/ws/publish` and `/ws/subscribe`.
pub(crate) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    publish_route(state.clone())
        .or(subscribe_route(state))
        .unify()
}

/// Publishes events over one connection, each text message one event.
#[utoipa::path(
    get,
    path = "/api/v1/ws/publish",
    operation_id = "ws_publish",
    tag = "websocket",
    description = "A WebSocket: each text message is one event (the publish body); each is \
        answered, in order, `{\"status\":\"ok\",\"event_id\":\"evt_...\"}` or \
        `{\"status\":\"error\",\"message\":\"...\"}`, and errors never close the \
        connection. Messages may be pipelined. Each counts against the WebSocket publish \
        rate limit (a refusal says `retry_after` seconds). A missing or failing credential \
        is refused after the upgrade with close code 4001, one without the publish role \
        with 4003, too many connections from one client with 4002; a token that expires \
        while connected closes it with 4001 unless `{\"type\":\"refresh_token\",\"token\":...}` \
        brought a fresh one.",
    params(Handshake),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`Sec-WebSocket-Key` is not 16 bytes in base64", body = Detail),
        (status = 426, description = "Not a WebSocket handshake", body = Detail),
    )
)]
pub(crate) fn publish_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    endpoint(state, Endpoint::Publish)
}

/// Receives the events that match a filter, live, optionally resuming by seq.
#[utoipa::path(
    get,
    path = "/api/v1/ws/subscribe",
    operation_id = "ws_subscribe",
    tag = "websocket",
    description = "A WebSocket: the first text message (within 10 s by default) is the \
        filter (`event_types`, `session_id`, `user_id`, and `since_seq` or \
        `last_event_id` to resume), answered \
        `{\"status\":\"subscribed\",\"subscriber_id\":...,\"filters\":...}`; then \
        every matching committed event arrives \
        as a JSON text message, in seq order, limited to the credential's scope. A \
        missing or failing credential is refused after the upgrade with close code 4001, \
        too many connections with 4002, no filter in time or a filter outside the \
        credential's scope with 4003, a bad filter with 1008, a full node with 1013, and a subscriber that does \
        not keep up with 4008 (its reason says the seq to resume from).",
    params(Handshake),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`Sec-WebSocket-Key` is not 16 bytes in base64", body = Detail),
        (status = 426, description = "Not a WebSocket handshake", body = Detail),
    )
)]
pub(crate) fn subscribe_route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    endpoint(state, Endpoint::Subscribe)
}

fn endpoint(
    state: AppState,
    kind: Endpoint,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    at(entry(kind.action()))
        .and(warp::header::headers_cloned())
        .and(warp::query::<Pairs>())
        .and(crate::client::peer())
        .and(warp::ext::optional::<OnUpgrade>())
        .map(move |_, headers, pairs, remote, upgrade| {
            handshake(state.clone(), kind, headers, pairs, remote, upgrade)
        })
}

fn is_websocket_request(headers: &HeaderMap) -> bool {
    let has_token = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has_token(UPGRADE, "websocket")
        && has_token(CONNECTION, "upgrade")
        && headers
            .get(SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13")
        && headers.contains_key(SEC_WEBSOCKET_KEY)
}

/// A handshake key is 16 bytes in base64: 22 characters and `==`.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/'))
}

/// How much a publisher's connection reads per call: events of a few
/// hundred bytes arrive pipelined, many to a read.
const PUBLISH_READ_BUFFER: usize = 4 * 1024;

/// How much a subscriber's connection reads per call. A subscriber sends
/// only its filter, filter updates and pings, so its read buffer (allocated
/// for the connection's whole life, busy or idle) is small; a larger message
/// still arrives whole, in more reads. 4 KiB -> 512 bytes took an idle
/// subscriber from 10.9 to about 7.5 KiB of server memory.
const SUBSCRIBE_READ_BUFFER: usize = 512;

/// Sizes of the connection's buffers and the largest message tungstenite
/// accepts. Messages between `max_ws_message_bytes` and this are answered
/// "Message too large" and the connection stays open; beyond it the
/// connection is closed with 1009.
fn socket_config(endpoint: Endpoint, max_ws_message_bytes: usize) -> WebSocketConfig {
    let hard_cap = max_ws_message_bytes
        .saturating_mul(2)
        .max(max_ws_message_bytes + 64 * 1024);
    let read_buffer = match endpoint {
        Endpoint::Publish => PUBLISH_READ_BUFFER,
        Endpoint::Subscribe => SUBSCRIBE_READ_BUFFER,
    };
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(hard_cap + 64 * 1024)
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap))
}

fn handshake(
    state: AppState,
    endpoint: Endpoint,
    headers: HeaderMap,
    pairs: Pairs,
    remote: Option<SocketAddr>,
    upgrade: Option<OnUpgrade>,
) -> Response {
    let (Some(upgrade), true) = (upgrade, is_websocket_request(&headers)) else {
        let mut response = detail(
            StatusCode::UPGRADE_REQUIRED,
            "This endpoint speaks WebSocket only",
        );
        response
            .headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    };
    let Some(key) = headers
        .get(SEC_WEBSOCKET_KEY)
        .filter(|k| is_valid_key(k.as_bytes()))
    else {
        return detail(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455)",
        );
    };
    let accept = derive_accept_key(key.as_bytes());

    // A browser page from a foreign origin may not use the visitor's
    // credentials here (cross-site WebSocket hijacking): refused before the
    // upgrade. Clients that send no Origin (servers, scripts) pass.
    if let Some(origin) = headers.get(ORIGIN) {
        if !origin.to_str().is_ok_and(|o| state.config.cors.allows(o)) {
            tracing::debug!(?origin, "WebSocket handshake from a foreign origin refused");
            return ApiError::OriginNotAllowed.into_response();
        }
    }

    // Other refusals are decided now, at the handshake, and sent as the
    // first frame: clients expect a close code, not an HTTP status.
    let operation = endpoint.action();
    let client = client_ip(&state, remote, &headers);
    // Boxed: the connection's task keeps it for the connection's life, and
    // moving a 240-byte value from future to future leaves a dead copy of
    // it in each (every byte of that task is memory an idle subscriber costs).
    let admitted = match authenticate_handshake(&state, &headers, &pairs) {
        Ok(principal) => match authorize(&principal, operation) {
            Ok(()) => Ok(Box::new(Caller::new(principal, client))),
            Err(denied) => Err(Close::Forbidden(denied.to_string())),
        },
        Err(ApiError::Auth(AuthError::TokenExpired)) => Err(Close::TokenExpired),
        Err(_) => Err(Close::Unauthorized),
    };
    let slot = match admitted {
        Ok(_) => state.ws.limiter.try_acquire(client),
        Err(_) => None,
    };
    let ticket = state.ws.sessions.open();

    let config = socket_config(endpoint, state.config.max_ws_message_bytes);
    // A subscriber's connection runs where the service asked (its own
    // runtime: see `WsShared::with_subscribers_on`).
    let runtime = match endpoint {
        Endpoint::Subscribe => state.ws.subscribers_on().cloned(),
        Endpoint::Publish => None,
    };
    let connection = async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let io = HalfCloseAware(TokioIo::new(upgraded));
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let route = endpoint.route();
        let admitted = match (admitted, &slot, &ticket) {
            (Ok(caller), Some(_), Some((_, closing))) => Ok((caller, closing.clone())),
            (Err(close), _, _) => Err(close),
            (Ok(_), None, _) => Err(Close::TooManyConnections),
            (Ok(_), Some(_), None) => Err(Close::GoingAway),
        };
        let (socket, ending) = match admitted {
            Ok((caller, closing)) => {
                tracing::debug!(%client, route, caller = caller.principal.identity.label(), "WebSocket open");
                metrics::websocket(route, 1.0);
                let ended = match endpoint {
                    Endpoint::Publish => publish::run(socket, state, *caller, closing).await,
                    Endpoint::Subscribe => subscribe::run(socket, state, caller, closing).await,
                };
                metrics::websocket(route, -1.0);
                ended
            }
            Err(close) => {
                let logged = match close {
                    Close::Unauthorized | Close::TokenExpired => Some(Refusal::Credential),
                    Close::Forbidden(_) => Some(Refusal::Forbidden),
                    Close::TooManyConnections => Some(Refusal::TooManyConnections),
                    _ => None,
                };
                if let Some(kind) = logged {
                    state.refusals.note(kind, client, route);
                }
                (Some(socket), Ending::Close(close))
            }
        };
        tracing::debug!(%client, route, ending = %ending, "WebSocket closed");
        let Some(mut socket) = socket else {
            return;
        };
        closing::send_close(&mut socket, &ending).await;
        // The connection is over for the client once its close frame is
        // out: its slot is free for a new one, and shutdown need not wait.
        drop(slot);
        drop(ticket);
        closing::linger(socket).await;
    };
    match runtime {
        Some(runtime) => drop(runtime.spawn(connection)),
        None => drop(tokio::spawn(connection)),
    }

    let mut response = Response::new(warp::hyper::body::Bytes::new().into());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}
