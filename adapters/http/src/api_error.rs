//! The one place where every failure becomes a status code and a JSON
//! `detail`. Matches are exhaustive: a new error variant anywhere must be
//! given its status here before the code compiles.

use ep_domain::{DeleteError, GetError, PublishError, QueryError, StatsError, ValidationErrors};
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
    Body(BodyError),
    /// No route has this path.
    NotFound,
    /// A route has this path but not this method.
    MethodNotAllowed,
}

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "1";

impl ApiError {
    /// The response for this error.
    pub(crate) fn into_response(self) -> Response {
        let (status, body_detail, retry) = self.status_and_detail();
        let mut response = match body_detail {
            Detail::Text(text) => detail(status, text.as_str()),
            Detail::Fields(errors) => detail(status, &errors.0),
        };
        if retry {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }

    fn status_and_detail(self) -> (StatusCode, Detail, bool) {
        use Detail::{Fields, Text};
        let unavailable = |e: StoreError| {
            tracing::warn!(error = %e, "request failed: event store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Text("Event store unavailable; try again shortly".into()),
                true,
            )
        };
        match self {
            ApiError::Publish(e) => match e {
                PublishError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), false)
                }
                PublishError::QueueFull => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Text("Publish queue is full; try again shortly".into()),
                    true,
                ),
                PublishError::ShuttingDown => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Text("Service is shutting down".into()),
                    true,
                ),
                PublishError::Store(e) => unavailable(e),
            },
            ApiError::Query(e) => match e {
                QueryError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), false)
                }
                e @ QueryError::BadTimestamp(_) => {
                    (StatusCode::BAD_REQUEST, Text(e.to_string()), false)
                }
                QueryError::Store(e) => unavailable(e),
            },
            ApiError::Get(e) => match e {
                e @ GetError::NotFound => (StatusCode::NOT_FOUND, Text(e.to_string()), false),
                GetError::Store(e) => unavailable(e),
            },
            ApiError::Stats(StatsError::Store(e)) => unavailable(e),
            ApiError::Delete(e) => match e {
                e @ DeleteError::BadTimestamp(_) => {
                    (StatusCode::BAD_REQUEST, Text(e.to_string()), false)
                }
                DeleteError::Store(e) => unavailable(e),
            },
            ApiError::Auth(AuthError::InvalidCredential) => (
                StatusCode::UNAUTHORIZED,
                Text("Invalid or missing API key".into()),
                false,
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                Text("This API key may not perform this operation".into()),
                false,
            ),
            ApiError::Body(e) => match e {
                BodyError::TooLarge { limit } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Text(format!("Request body exceeds the limit of {limit} bytes")),
                    false,
                ),
                BodyError::NotJson(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, Fields(errors), false)
                }
                BodyError::Read(reason) => (
                    StatusCode::BAD_REQUEST,
                    Text(format!("Could not read the request body: {reason}")),
                    false,
                ),
            },
            ApiError::NotFound => (StatusCode::NOT_FOUND, Text("Not Found".into()), false),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                Text("Method Not Allowed".into()),
                false,
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
impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::Body(e)
    }
}
