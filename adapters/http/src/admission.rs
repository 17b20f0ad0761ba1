//! Admission, one code path for REST and WebSocket alike: the caller's
//! credential (read from the request in one place, checked before anything
//! else of the request is read), the client's address, the guard of an
//! operation (credential, then the domain's decision on the operation's
//! role), and the publish path both transports share. Scopes and rate
//! limits are the domain's: its use cases are given the caller.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use ep_domain::{authorize, Caller, Operation, PublishError, PublishRequest, Published, Refused};
use ep_ports::{Credential, Identity, Principal};
use warp::http::header::AUTHORIZATION;
use warp::http::HeaderMap;

use crate::api_error::ApiError;
use crate::metrics::{self, Outcome, Transport};
use crate::state::AppState;

tokio::task_local! {
    /// Who the request being answered comes from, once its guard knows: the
    /// request's log line of a refusal names it.
    pub(crate) static CALLER: std::cell::RefCell<Option<std::borrow::Cow<'static, str>>>;
}

/// The header carrying the API key.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// The credential a request carries: the `X-API-Key` header (or else
/// `query_key`, the handshake's `?api_key=`), and the `Authorization:
/// Bearer` token (or else `query_token`, the handshake's `?token=`).
pub(crate) fn credential<'a>(
    headers: &'a HeaderMap,
    query_key: Option<&'a str>,
    query_token: Option<&'a str>,
) -> Credential<'a> {
    let api_key = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(query_key);
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .or(query_token);
    Credential { api_key, token }
}

/// The principal of the request's credential.
///
/// # Errors
/// `Auth` for a missing (where required) or failing credential.
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_key: Option<&str>,
    query_token: Option<&str>,
) -> Result<Principal, ApiError> {
    Ok(state
        .auth
        .authenticate(credential(headers, query_key, query_token))?)
}

/// The principal of a handshake's credential (a WebSocket or an event
/// stream), which may also come in the query as `api_key` or `token` (the
/// last of each): browsers cannot set headers on either.
///
/// # Errors
/// As [`authenticate`].
pub(crate) fn authenticate_handshake(
    state: &AppState,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Principal, ApiError> {
    let last = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    authenticate(state, headers, last("api_key"), last("token"))
}

/// What logs call a caller; no allocation but for a named key.
fn label(identity: &Identity) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow::{Borrowed, Owned};
    match identity {
        Identity::Anonymous => Borrowed("anonymous"),
        Identity::LegacyKey => Borrowed("api_key"),
        Identity::Key(name) => Owned(name.clone()),
        Identity::Token(_) => Borrowed("token"),
    }
}

/// The caller of a REST request to `operation`: authenticated, and allowed
/// the operation by the domain (its role). Scope and rate limit are
/// applied by the use case itself.
///
/// # Errors
/// `Auth` (401) or `Refused(Denied)` (403).
pub(crate) fn guard(
    state: &AppState,
    operation: Operation,
    headers: &HeaderMap,
    remote: Option<SocketAddr>,
) -> Result<Caller, ApiError> {
    let principal = authenticate(state, headers, None, None)?;
    let _ = CALLER.try_with(|c| *c.borrow_mut() = Some(label(&principal.identity)));
    authorize(&principal, operation).map_err(Refused::from)?;
    Ok(Caller::new(principal, client_ip(state, remote, headers)))
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

/// Parses a published event and hands it to the domain's publish use case
/// for `operation` (REST or WebSocket); the future resolves once it is
/// committed. Every outcome is counted, by event type and transport.
/// `idempotency_key` is the REST `Idempotency-Key` header, which wins over
/// the body's `idempotency_key`.
///
/// # Errors
/// `Publish(Invalid | Refused | QueueFull | ShuttingDown)`; nothing queued.
pub(crate) fn admit_publish(
    state: &AppState,
    caller: &Caller,
    body: &[u8],
    idempotency_key: Option<String>,
    operation: Operation,
) -> Result<impl Future<Output = Result<Published, PublishError>> + Send + 'static, ApiError> {
    let transport = match operation {
        Operation::WsPublish => Transport::WebSocket,
        _ => Transport::Rest,
    };
    let mut request = PublishRequest::from_json(body).map_err(|e| {
        metrics::event(None, transport, Outcome::Invalid);
        PublishError::Invalid(e)
    })?;
    if let Some(key) = idempotency_key {
        request.set_idempotency_key(key);
    }
    let event_type = request.event_type();
    let commit = state
        .service
        .publish(caller, request, operation)
        .map_err(|e| {
            let outcome = match &e {
                PublishError::Invalid(_) => Outcome::Invalid,
                PublishError::Refused(Refused::RateLimited(_)) => {
                    if let Some(class) = operation.rate_class() {
                        metrics::rate_limited(class, caller.principal.identity.label());
                    }
                    Outcome::RateLimited
                }
                PublishError::Refused(Refused::Denied(_)) => Outcome::Forbidden,
                PublishError::QueueFull => Outcome::QueueFull,
                PublishError::ShuttingDown => Outcome::ShuttingDown,
                PublishError::Store(_) => Outcome::StoreError,
                PublishError::Conflict(_) => Outcome::Conflict,
            };
            metrics::event(event_type, transport, outcome);
            ApiError::from(e)
        })?;
    Ok(async move {
        let committed = commit.await;
        let outcome = match &committed {
            Ok(published) if published.repeat => Outcome::Repeat,
            Ok(_) => Outcome::Committed,
            Err(PublishError::Conflict(_)) => Outcome::Conflict,
            Err(_) => Outcome::StoreError,
        };
        metrics::event(event_type, transport, outcome);
        committed
    })
}
