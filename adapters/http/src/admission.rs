//! Admission, one code path for REST and WebSocket alike: the caller's key
//! and role (read from the request in one place, checked before anything
//! else of the request is read), the client's address, its rate limit
//! (taken once a request is known to be valid, so refused requests cost
//! nothing), and the publish path both transports share.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ep_domain::{PublishError, PublishRequest, RateClass};
use ep_ports::{Credential, Event, Principal, Role};
use warp::http::HeaderMap;

use crate::api_error::ApiError;
use crate::metrics::{self, Outcome, Transport};
use crate::state::AppState;

/// The header carrying the API key.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// The caller's principal, if its key grants `role`. The key is the
/// `X-API-Key` header, or else `query_key` (WebSocket handshakes take
/// `?api_key=`; REST requests pass `None`).
///
/// # Errors
/// `Auth` for a missing or unknown key, `Forbidden` for a key without `role`.
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    query_key: Option<&str>,
    role: Role,
) -> Result<Principal, ApiError> {
    let api_key = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(query_key);
    let principal = state.auth.authenticate(Credential { api_key })?;
    if principal.has(role) {
        Ok(principal)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The client's address: the TCP peer, or behind a trusted proxy the
/// nearest untrusted `X-Forwarded-For` hop.
pub(crate) fn client_ip(
    state: &AppState,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
) -> IpAddr {
    state.config.trusted_proxies.client_ip(remote, headers)
}

/// Takes one request of `class` from `client`'s allowance.
///
/// # Errors
/// `RateLimited` when it is used up.
pub(crate) fn rate_limit(
    state: &AppState,
    client: IpAddr,
    class: RateClass,
) -> Result<(), ApiError> {
    state.rate_limits.check(client, class).map_err(|e| {
        metrics::rate_limited(class);
        ApiError::from(e)
    })
}

/// Takes one request of `class` from the allowance of the client that sent
/// a request from `remote` with `headers`.
///
/// # Errors
/// `RateLimited` when it is used up.
pub(crate) fn rate_limit_request(
    state: &AppState,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
    class: RateClass,
) -> Result<(), ApiError> {
    rate_limit(state, client_ip(state, remote, headers), class)
}

/// Parses and validates a published event, takes it from `client`'s publish
/// allowance, and queues it; the future resolves once it is committed. The
/// caller has authorized the publisher. Every outcome is counted, by event
/// type and `transport`.
///
/// # Errors
/// `Publish(Invalid)` (not counted against the limit), `RateLimited` (nothing
/// queued), `Publish(QueueFull | ShuttingDown)`.
pub(crate) fn admit_publish(
    state: &AppState,
    client: IpAddr,
    body: &[u8],
    transport: Transport,
) -> Result<impl Future<Output = Result<Arc<Event>, PublishError>> + Send + 'static, ApiError> {
    let request = PublishRequest::from_json(body).map_err(|e| {
        metrics::event(None, transport, Outcome::Invalid);
        PublishError::Invalid(e)
    })?;
    let event_type = request.event_type();
    let valid = state
        .service
        .validate(request)
        .inspect_err(|_| metrics::event(event_type, transport, Outcome::Invalid))?;
    let event_type = Some(valid.event_type());
    rate_limit(state, client, RateClass::Publish)
        .inspect_err(|_| metrics::event(event_type, transport, Outcome::RateLimited))?;
    let commit = state.service.enqueue_valid(valid).inspect_err(|e| {
        let outcome = match e {
            PublishError::QueueFull => Outcome::QueueFull,
            PublishError::ShuttingDown => Outcome::ShuttingDown,
            PublishError::Invalid(_) | PublishError::Store(_) => Outcome::StoreError,
        };
        metrics::event(event_type, transport, outcome);
    })?;
    Ok(async move {
        let committed = commit.await;
        let outcome = match committed {
            Ok(_) => Outcome::Committed,
            Err(_) => Outcome::StoreError,
        };
        metrics::event(event_type, transport, outcome);
        committed
    })
}
