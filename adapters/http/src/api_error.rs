//! The one place where every failure becomes a status code and a JSON
//! `detail`, and the text of its WebSocket reply. Matches are exhaustive: a
//! new error variant anywhere must be given its status here before the code
//! compiles.

use ep_domain::{
    DeleteError, GetError, PublishError, QueryError, RateLimited, StatsError, ValidationErrors,
};
use ep_ports::{AuthError, StoreError};
use warp::http::header::{HeaderValue, RETRY_AFTER};
use warp::http::StatusCode;
use warp::reply::Response;

use crate::body::BodyError;
use crate::reply::detail;

/// Anything a handler can fail with.
#[derive(Debug)]
pub(crate) enum ApiError {
    Publish(PublishError),
    Query(QueryError),
    Get(GetError),
    Stats(StatsError),
    Delete(DeleteError),
    Auth(AuthError),
    /// Authenticated, but the key lacks the role the route needs.
    Forbidden,
    /// A WebSocket handshake from an `Origin` that `CORS_ORIGINS` does not allow.
    OriginNotAllowed,
    Body(BodyError),
    /// Over the client's rate limit.
    RateLimited(RateLimited),
    /// Shutdown has begun: every new request is refused.
    ShuttingDown,
    /// The query string is longer than [`crate::routes::MAX_QUERY_BYTES`].
    QueryTooLong,
    /// The request has more header fields, or more bytes of them, than
    /// [`crate::head`] allows.
    HeadersTooLarge,
    /// `/metrics` while metrics are off (`METRICS=false`).
    MetricsOff,
    /// No route has this path.
    NotFound,
    /// A route has this path but not this method.
    MethodNotAllowed,
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: u64 = 1;

impl ApiError {
    /// The response for this error.
    pub(crate) fn into_response(self) -> Response {
        let (status, body_detail, retry) = self.status_and_detail();
        let mut response = match body_detail {
            Detail::Text(text) => detail(status, text.as_str()),
            Detail::Fields(errors) => detail(status, &errors.0),
        };
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    /// The text of the `{"status":"error","message":...}` reply a WebSocket
    /// message gets for this error: the REST `detail`, except that a body
    /// that is not JSON is "Invalid JSON" and a list of field errors is one
    /// line.
    pub(crate) fn ws_text(self) -> String {
        match self.status_and_detail().1 {
            Detail::Text(text) => text,
            Detail::Fields(errors) => {
                let not_json = errors
                    .0
                    .iter()
                    .any(|e| e.kind == "json_invalid" || (e.kind == "missing" && e.loc.len() == 1));
                if not_json {
                    "Invalid JSON".to_owned()
                } else {
                    errors.to_string()
                }
            }
        }
    }

    /// The status, the `detail`, and the `Retry-After` seconds if any.
    fn status_and_detail(self) -> (StatusCode, Detail, Option<u64>) {
        use Detail::{Fields, Text};
        let unavailable = |e: StoreError| {
            tracing::warn!(error = %e, "request failed: event store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Text("Event store unavailable; try again shortly".into()),
                Some(RETRY_AFTER_SECS),
            )
        };
        match self {
            ApiError::Publish(e) => match e {
                PublishError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), None)
                }
                PublishError::QueueFull => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Text("Publish queue is full; try again shortly".into()),
                    Some(RETRY_AFTER_SECS),
                ),
                PublishError::ShuttingDown => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Text("Service is shutting down".into()),
                    Some(RETRY_AFTER_SECS),
                ),
                PublishError::Store(e) => unavailable(e),
            },
            ApiError::Query(e) => match e {
                QueryError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), None)
                }
                e @ QueryError::BadTimestamp(_) => {
                    (StatusCode::BAD_REQUEST, Text(e.to_string()), None)
                }
                QueryError::Store(e) => unavailable(e),
            },
            ApiError::Get(e) => match e {
                e @ GetError::NotFound => (StatusCode::NOT_FOUND, Text(e.to_string()), None),
                GetError::Store(e) => unavailable(e),
            },
            ApiError::Stats(StatsError::Store(e)) => unavailable(e),
            ApiError::Delete(e) => match e {
                DeleteError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), None)
                }
                e @ DeleteError::BadTimestamp(_) => {
                    (StatusCode::BAD_REQUEST, Text(e.to_string()), None)
                }
                DeleteError::Store(e) => unavailable(e),
            },
            ApiError::Auth(AuthError::InvalidCredential) => (
                StatusCode::UNAUTHORIZED,
                Text("Invalid or missing API key".into()),
                None,
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                Text("This API key may not perform this operation".into()),
                None,
            ),
            ApiError::OriginNotAllowed => (
                StatusCode::FORBIDDEN,
                Text("Origin not allowed".into()),
                None,
            ),
            ApiError::Body(e) => match e {
                BodyError::TooLarge { limit } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Text(format!("Request body exceeds the limit of {limit} bytes")),
                    None,
                ),
                BodyError::NotJson(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), None)
                }
                BodyError::Read(reason) => (
                    StatusCode::BAD_REQUEST,
                    Text(format!("Could not read the request body: {reason}")),
                    None,
                ),
            },
            ApiError::RateLimited(e) => (
                StatusCode::TOO_MANY_REQUESTS,
                Text(e.to_string()),
                Some(e.retry_after.as_secs().max(1)),
            ),
            ApiError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                Text("Service is shutting down".into()),
                Some(RETRY_AFTER_SECS),
            ),
            ApiError::QueryTooLong => (
                StatusCode::URI_TOO_LONG,
                Text(format!(
                    "Query string longer than {} bytes",
                    crate::routes::MAX_QUERY_BYTES
                )),
                None,
            ),
            ApiError::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                Text(format!(
                    "Request header fields too large: at most {} fields and {} bytes",
                    crate::head::MAX_HEADERS,
                    crate::head::MAX_HEADER_BYTES
                )),
                None,
            ),
            ApiError::MetricsOff => (
                StatusCode::NOT_FOUND,
                Text("Metrics are off on this node (METRICS=false)".into()),
                None,
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, Text("Not Found".into()), None),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                Text("Method Not Allowed".into()),
                None,
            ),
        }
    }
}

enum Detail {
    Text(String),
    Fields(ValidationErrors),
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        ApiError::Publish(e)
    }
}
impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::Query(e)
    }
}
impl From<GetError> for ApiError {
    fn from(e: GetError) -> Self {
        ApiError::Get(e)
    }
}
impl From<StatsError> for ApiError {
    fn from(e: StatsError) -> Self {
        ApiError::Stats(e)
    }
}
impl From<DeleteError> for ApiError {
    fn from(e: DeleteError) -> Self {
        ApiError::Delete(e)
    }
}
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}
impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        ApiError::RateLimited(e)
    }
}
impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::Body(e)
    }
}
