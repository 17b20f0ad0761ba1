//! Checking the caller's key and role before anything else of a request is read.

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
