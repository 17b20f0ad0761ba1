//! The one place where every failure becomes a status code and a JSON
//! `detail`, and the text of its WebSocket reply. Matches are exhaustive: a
//! new error variant anywhere must be given its status here before the code
//! compiles.

use ep_domain::{
    DeleteError, Denied, GetError, PublishError, QueryError, RateLimited, Refused, StatsError,
    ValidationErrors,
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
    /// A Caliper envelope refused before any of it was stored.
    Caliper(crate::caliper::CaliperError),
    Auth(AuthError),
    /// Not allowed (403) or over a rate limit (429), as the domain decided.
    Refused(Refused),
    /// A WebSocket handshake from an `Origin` that `CORS_ORIGINS` does not allow.
    OriginNotAllowed,
    Body(BodyError),
    /// Shutdown has begun: every new request is refused.
    ShuttingDown,
    /// The query string is longer than [`crate::limits::MAX_QUERY_BYTES`].
    QueryTooLong,
    /// The request has more header fields ([`crate::limits::MAX_HEADERS`])
    /// or more bytes of them ([`crate::limits::MAX_HEADER_BYTES`]) than allowed.
    HeadersTooLarge,
    /// `/metrics` while metrics are off (`METRICS=false`).
    MetricsOff,
    /// A WebSocket message over `MAX_WS_MESSAGE_BYTES`.
    MessageTooLarge,
    /// A WebSocket message that must be JSON (a filter) is not.
    InvalidJson,
    /// A subscriber's filter (or `update_filters`, `refresh_token`
    /// message) is refused: why.
    BadMessage(String),
    /// A resume point (`last_event_id`) names no event the caller may see.
    UnknownResumePoint,
    /// `MAX_SUBSCRIBERS` subscriptions are live.
    AtCapacity,
    /// `MAX_WS_CONNECTIONS_PER_IP` streams and WebSockets are open from the
    /// client's address (an event stream; a WebSocket closes with 4002).
    TooManyConnections,
    /// A `refresh_token` whose token is for another `sub`.
    RefreshForOtherSub,
    /// No route has this path.
    NotFound,
    /// A route has this path but not this method.
    MethodNotAllowed,
    /// An `Origin` or `X-Forwarded-Proto` header that is not text.
    MalformedHeader,
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

    /// Whether this is a refusal by a rate limit.
    pub(crate) fn is_rate_limited(&self) -> bool {
        self.retry_hint().is_some()
    }

    /// For a refusal by a rate limit, the seconds to wait before retrying.
    pub(crate) fn retry_hint(&self) -> Option<u64> {
        let refused = match self {
            ApiError::Refused(r)
            | ApiError::Publish(PublishError::Refused(r))
            | ApiError::Query(QueryError::Refused(r))
            | ApiError::Get(GetError::Refused(r))
            | ApiError::Stats(StatsError::Refused(r))
            | ApiError::Delete(DeleteError::Refused(r)) => r,
            _ => return None,
        };
        match refused {
            Refused::RateLimited(limited) => Some(retry_secs(limited)),
            Refused::Denied(_) => None,
        }
    }

    /// The `{"status":"error","message":...}` reply a WebSocket message
    /// gets for this error; a refusal by a rate limit also says
    /// `"retry_after"` (seconds).
    pub(crate) fn ws_reply(self) -> serde_json::Value {
        let retry = self.retry_hint();
        let mut reply = serde_json::json!({"status": "error", "message": self.ws_text()});
        if let Some(secs) = retry {
            reply["retry_after"] = secs.into();
        }
        reply
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
        let refused = |r: Refused| match r {
            Refused::Denied(denied) => (StatusCode::FORBIDDEN, Text(denied.to_string()), None),
            Refused::RateLimited(e) => (
                StatusCode::TOO_MANY_REQUESTS,
                Text(e.to_string()),
                Some(retry_secs(&e)),
            ),
        };
        match self {
            ApiError::Refused(r) => refused(r),
            ApiError::Publish(e) => match e {
                PublishError::Refused(r) => refused(r),
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
                e @ PublishError::Conflict(_) => (StatusCode::CONFLICT, Text(e.to_string()), None),
            },
            ApiError::Query(e) => match e {
                QueryError::Refused(r) => refused(r),
                QueryError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), None)
                }
                e @ QueryError::BadTimestamp(_) => {
                    (StatusCode::BAD_REQUEST, Text(e.to_string()), None)
                }
                QueryError::Store(e) => unavailable(e),
            },
            ApiError::Get(e) => match e {
                GetError::Refused(r) => refused(r),
                e @ GetError::NotFound => (StatusCode::NOT_FOUND, Text(e.to_string()), None),
                GetError::Store(e) => unavailable(e),
            },
            ApiError::Stats(StatsError::Store(e)) => unavailable(e),
            ApiError::Stats(StatsError::Refused(r)) => refused(r),
            ApiError::Delete(e) => match e {
                DeleteError::Refused(r) => refused(r),
                DeleteError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), None)
                }
                e @ DeleteError::BadTimestamp(_) => {
                    (StatusCode::BAD_REQUEST, Text(e.to_string()), None)
                }
                e @ DeleteError::Interrupted { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Text(e.to_string()),
                    Some(RETRY_AFTER_SECS),
                ),
                DeleteError::Store(e) => unavailable(e),
            },
            ApiError::Caliper(e) => match e {
                crate::caliper::CaliperError::Malformed(errors) => (
                    StatusCode::BAD_REQUEST,
                    Fields(ValidationErrors(errors)),
                    None,
                ),
                e @ crate::caliper::CaliperError::UnsupportedVersion(_) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Text(e.to_string()), None)
                }
                e @ crate::caliper::CaliperError::ContentType => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    Text(e.to_string()),
                    None,
                ),
            },
            ApiError::Auth(
                e @ (AuthError::InvalidCredential
                | AuthError::InvalidToken(_)
                | AuthError::TokenExpired),
            ) => (StatusCode::UNAUTHORIZED, Text(e.to_string()), None),
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
            ApiError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                Text("Service is shutting down".into()),
                Some(RETRY_AFTER_SECS),
            ),
            ApiError::QueryTooLong => (
                StatusCode::URI_TOO_LONG,
                Text(format!(
                    "Query string longer than {} bytes",
                    crate::limits::MAX_QUERY_BYTES
                )),
                None,
            ),
            ApiError::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                Text(format!(
                    "Request header fields too large: at most {} fields and {} bytes",
                    crate::limits::MAX_HEADERS,
                    crate::limits::MAX_HEADER_BYTES
                )),
                None,
            ),
            ApiError::MetricsOff => (
                StatusCode::NOT_FOUND,
                Text("Metrics are off on this node (METRICS=false)".into()),
                None,
            ),
            ApiError::MessageTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Text("Message too large".into()),
                None,
            ),
            ApiError::InvalidJson => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Text("Invalid JSON".into()),
                None,
            ),
            ApiError::BadMessage(why) => (StatusCode::UNPROCESSABLE_ENTITY, Text(why), None),
            ApiError::UnknownResumePoint => (
                StatusCode::NOT_FOUND,
                Text("Unknown last_event_id".into()),
                None,
            ),
            ApiError::AtCapacity => (
                StatusCode::SERVICE_UNAVAILABLE,
                Text("Server at subscriber capacity".into()),
                Some(RETRY_AFTER_SECS),
            ),
            ApiError::TooManyConnections => (
                StatusCode::TOO_MANY_REQUESTS,
                Text("Too many connections from this address".into()),
                Some(RETRY_AFTER_SECS),
            ),
            ApiError::RefreshForOtherSub => (
                StatusCode::FORBIDDEN,
                Text("refresh_token must carry a token for the same sub".into()),
                None,
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, Text("Not Found".into()), None),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                Text("Method Not Allowed".into()),
                None,
            ),
            ApiError::MalformedHeader => (
                StatusCode::BAD_REQUEST,
                Text("Malformed request header".into()),
                None,
            ),
        }
    }
}

/// The answers the OpenAPI document adds to operations, beside those each
/// handler declares: each is documented from an error of its kind, so its
/// status and `Retry-After` come from the table above and cannot drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Documented {
    /// No credential where one is needed, or one that fails (401).
    Unauthenticated,
    /// The domain's denial (403).
    Denied,
    /// A rate limit (429).
    RateLimited,
    /// A WebSocket handshake from an origin `CORS_ORIGINS` does not allow.
    OriginNotAllowed,
    /// [`ApiError::MalformedHeader`].
    MalformedHeader,
    /// [`ApiError::MethodNotAllowed`].
    MethodNotAllowed,
    /// [`ApiError::QueryTooLong`].
    QueryTooLong,
    /// [`ApiError::HeadersTooLarge`].
    HeadersTooLarge,
    /// [`ApiError::ShuttingDown`].
    ShuttingDown,
}

/// How the document describes one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnswerDoc {
    /// Its status code.
    pub status: u16,
    /// When it is given.
    pub why: String,
    /// It carries `Retry-After`.
    pub retry_after: bool,
}

impl Documented {
    /// The status, meaning and headers of this answer.
    pub(crate) fn doc(self) -> AnswerDoc {
        let (example, why) = match self {
            Documented::Unauthenticated => (
                ApiError::Auth(AuthError::InvalidCredential),
                "No credential where one is required, or a key or token that fails",
            ),
            Documented::Denied => (
                ApiError::Refused(Refused::Denied(Denied::Restricted)),
                "The credential lacks the role this needs, or the request names a value outside its scope",
            ),
            Documented::RateLimited => (
                ApiError::Refused(Refused::RateLimited(RateLimited {
                    retry_after: std::time::Duration::from_secs(1),
                })),
                "Over this client's rate limit; nothing was done",
            ),
            Documented::OriginNotAllowed => (
                ApiError::OriginNotAllowed,
                "The page's Origin is not in CORS_ORIGINS",
            ),
            Documented::MalformedHeader => (
                ApiError::MalformedHeader,
                "An `Origin` or `X-Forwarded-Proto` header that is not text",
            ),
            Documented::MethodNotAllowed => (
                ApiError::MethodNotAllowed,
                "Another method on this path; `Allow` lists the methods it serves",
            ),
            // These say their limits in their detail: the detail is the doc.
            Documented::QueryTooLong => (ApiError::QueryTooLong, ""),
            Documented::HeadersTooLarge => (ApiError::HeadersTooLarge, ""),
            Documented::ShuttingDown => (ApiError::ShuttingDown, ""),
        };
        let (status, detail, retry) = example.status_and_detail();
        let why = match (why, detail) {
            ("", Detail::Text(text)) => text,
            (why, _) => why.to_owned(),
        };
        AnswerDoc {
            status: status.as_u16(),
            why,
            retry_after: retry.is_some(),
        }
    }
}

/// Whole seconds to wait after a refusal by a rate limit (at least 1).
fn retry_secs(limited: &RateLimited) -> u64 {
    limited.retry_after.as_secs().max(1)
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
impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        ApiError::Refused(e)
    }
}
impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::Body(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_answers_have_the_status_and_retry_hint_they_are_answered_with() {
        let expected = [
            (Documented::Unauthenticated, 401, false),
            (Documented::Denied, 403, false),
            (Documented::RateLimited, 429, true),
            (Documented::OriginNotAllowed, 403, false),
            (Documented::MalformedHeader, 400, false),
            (Documented::MethodNotAllowed, 405, false),
            (Documented::QueryTooLong, 414, false),
            (Documented::HeadersTooLarge, 431, false),
            (Documented::ShuttingDown, 503, true),
        ];
        for (which, status, retry_after) in expected {
            let doc = which.doc();
            assert_eq!(
                (doc.status, doc.retry_after),
                (status, retry_after),
                "{which:?}"
            );
            assert!(!doc.why.is_empty(), "{which:?}");
        }
        assert_eq!(
            Documented::QueryTooLong.doc().why,
            format!(
                "Query string longer than {} bytes",
                crate::limits::MAX_QUERY_BYTES
            )
        );
    }
}
