//! Building JSON responses.

use serde::Serialize;
use warp::http::header::{HeaderValue, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::reply::Response;

/// A response with `status` and `body` already serialized as JSON.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A response with `status` and `value` serialized as JSON.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body),
        // Our own types always serialize; should one not, say so in JSON.
        Err(e) => {
            tracing::error!(error = %e, "a response could not be serialized");
            json_bytes(
                StatusCode::INTERNAL_SERVER_ERROR,
                br#"{"detail":"Internal server error"}"#.to_vec(),
            )
        }
    }
}

/// `{"detail": detail}` with `status`.
pub(crate) fn detail<T: Serialize + ?Sized>(status: StatusCode, detail: &T) -> Response {
    #[derive(Serialize)]
    struct Detail<'a, T: ?Sized> {
        detail: &'a T,
    }
    json(status, &Detail { detail })
}
