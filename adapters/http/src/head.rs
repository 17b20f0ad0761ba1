//! Limits on a request's head, checked before routing: too many header
//! fields, or too many bytes of them, get the service's JSON 431 (with the
//! security and CORS headers every answer carries), not hyper's empty one.

use std::net::SocketAddr;

use hyper::Request;
use warp::http::HeaderMap;
use warp::reply::Response;

use crate::api_error::ApiError;
use crate::limits::{MAX_HEADERS, MAX_HEADER_BYTES};
use crate::state::AppState;

/// Whether the header fields of a request are within the limits.
pub(crate) fn within_limits(headers: &HeaderMap) -> bool {
    if headers.len() > MAX_HEADERS {
        return false;
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    bytes <= MAX_HEADER_BYTES
}

/// The answer to a request whose head is over the limits, if it is.
pub(crate) fn refusal<B>(
    state: &AppState,
    remote: SocketAddr,
    request: &Request<B>,
) -> Option<Response> {
    let headers = request.headers();
    if within_limits(headers) {
        return None;
    }
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    Some(crate::headers::decorate(
        &state.config,
        ApiError::HeadersTooLarge.into_response(),
        text("origin"),
        text("x-forwarded-proto"),
        Some(remote),
    ))
}

#[cfg(test)]
mod tests {
    use warp::http::HeaderValue;

    use super::*;

    #[test]
    fn counts_fields_and_bytes() {
        let mut headers = HeaderMap::new();
        for i in 0..MAX_HEADERS {
            headers.append("x-n", HeaderValue::from(i));
        }
        assert!(within_limits(&headers));
        headers.append("x-n", HeaderValue::from(0));
        assert!(!within_limits(&headers));

        let mut big = HeaderMap::new();
        let value = "v".repeat(MAX_HEADER_BYTES - "x-big".len() - 4);
        big.insert("x-big", value.parse().expect("value"));
        assert!(within_limits(&big));
        big.insert("x-a", HeaderValue::from_static(""));
        assert!(!within_limits(&big));
    }
}
