//! Headers every response carries.

use std::net::SocketAddr;

use warp::http::header::{HeaderName, HeaderValue};
use warp::reply::Response;

use crate::state::HttpConfig;

/// The security headers of the contract, on every response (errors and 404s
/// included).
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("x-xss-protection", "1; mode=block"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("content-security-policy", "default-src 'self'"),
];

/// Adds the security headers to `response`, and HSTS when the client
/// reached the service over HTTPS (as a trusted proxy says).
pub(crate) fn secure(mut response: Response, https: bool) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if https {
        headers.insert(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// What every answer gets on its way out: the security headers (and HSTS
/// when a trusted proxy says the client used HTTPS) and the CORS headers for
/// the request's `Origin`.
pub(crate) fn decorate(
    config: &HttpConfig,
    response: Response,
    origin: Option<&str>,
    forwarded_proto: Option<&str>,
    remote: Option<SocketAddr>,
) -> Response {
    let mut response = secure(
        response,
        config.trusted_proxies.is_https(remote, forwarded_proto),
    );
    config.cors.apply(&mut response, origin);
    response
}
