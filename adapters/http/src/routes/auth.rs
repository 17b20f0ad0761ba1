//! Admission of a request: the caller's key and role (checked before anything
//! else of the request is read), and its rate limit (checked once the
//! request is known to be valid, so refused requests cost nothing).

use std::net::SocketAddr;

use ep_domain::RateClass;
use ep_ports::{Credential, Principal, Role};
use warp::http::HeaderMap;

use crate::api_error::ApiError;
use crate::state::AppState;

/// The header carrying the API key.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// The caller's principal, if its key grants `role`.
pub(crate) fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
) -> Result<Principal, ApiError> {
    let api_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let principal = state.auth.authenticate(Credential { api_key })?;
    if principal.has(role) {
        Ok(principal)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Takes one request of `class` from the client's allowance.
pub(crate) fn rate_limit(
    state: &AppState,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
    class: RateClass,
) -> Result<(), ApiError> {
    let client = state.config.trusted_proxies.client_ip(remote, headers);
    Ok(state.rate_limits.check(client, class)?)
}
