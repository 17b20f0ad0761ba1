//! The route tree: each resource's routes, served under `/api/v1` and at the
//! root, with JSON for every rejection, security headers and a log line.

mod batch;
mod caliper;
mod dashboard;
mod docs;
mod document;
mod event_types;
mod events;
mod health;
mod metrics;
mod stats;
mod stream;
mod tailor;
mod users;
#[cfg(test)]
mod walk;

use std::convert::Infallible;
use std::future::Future;

use warp::http::header::{HeaderValue, ALLOW};
use warp::http::{Method, StatusCode};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::api_error::ApiError;
use crate::headers::{decorate, secure};
use crate::limits::MAX_QUERY_BYTES;
use crate::state::AppState;

/// Every REST and WebSocket route, as [`crate::serve`] serves them: CORS preflights,
/// the query-length guard, the API under `/api/v1` and at the root, JSON for
/// every rejection, and the CORS, security and HSTS headers on every response.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    let api = health::routes(state.clone())
        .or(event_types::routes(state.clone()))
        .unify()
        .or(batch::routes(state.clone()))
        .unify()
        .or(caliper::routes(state.clone()))
        .unify()
        .or(events::routes(state.clone()))
        .unify()
        .or(users::routes(state.clone()))
        .unify()
        .or(stats::routes(state.clone()))
        .unify()
        .or(metrics::routes(state.clone()))
        .unify()
        .or(crate::ws::routes(state.clone()))
        .unify()
        .or(stream::stream_route(state.clone()))
        .unify()
        .or(docs::routes(document::render(&state)))
        .unify()
        .or(dashboard::routes())
        .unify();
    let versioned = warp::path("api").and(warp::path("v1")).and(api.clone());
    let served = drain_guard(state.clone())
        .or(preflight(state.clone()))
        .unify()
        .or(query_guard())
        .unify()
        .or(versioned)
        .unify()
        .or(api)
        .unify()
        .recover(recover)
        .unify();
    warp::header::optional::<String>("origin")
        .and(warp::header::optional::<String>("x-forwarded-proto"))
        .and(crate::client::peer())
        .and(warp::path::full())
        .and(served)
        .map(
            move |origin: Option<String>,
                  proto: Option<String>,
                  remote,
                  path: FullPath,
                  response: Response| {
                decorate(
                    &state.config,
                    with_allow(response, path.as_str()),
                    origin.as_deref(),
                    proto.as_deref(),
                    remote,
                )
            },
        )
        // Only an `Origin` or `X-Forwarded-Proto` that is not text gets here.
        .recover(|_| async {
            Ok::<_, Infallible>(secure(ApiError::MalformedHeader.into_response(), false))
        })
        .unify()
}

/// A 405 says which methods the path does serve (RFC 9110 requires `Allow`).
fn with_allow(mut response: Response, path: &str) -> Response {
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        match crate::table::allow(path).map(HeaderValue::try_from) {
            Some(Ok(methods)) => {
                response.headers_mut().insert(ALLOW, methods);
            }
            // A path the table does not know is no route of ours.
            _ => return ApiError::NotFound.into_response(),
        }
    }
    response
}

/// Answers CORS preflights (OPTIONS with `Origin` and
/// `Access-Control-Request-Method`) on every path; anything else falls
/// through as "not found" so that it never masks a real route's answer.
fn preflight(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>(
            "access-control-request-method",
        ))
        .and_then(
            move |method: Method, origin: Option<String>, requested: Option<String>| {
                let answer = match (method == Method::OPTIONS, origin, requested) {
                    (true, Some(origin), Some(_)) => Ok(state.config.cors.preflight(&origin)),
                    _ => Err(warp::reject::not_found()),
                };
                std::future::ready(answer)
            },
        )
}

/// Once shutdown has begun, answers every request 503 with `Connection:
/// close` (a clear refusal, never a hang or a silently dropped request);
/// otherwise falls through as "not found".
fn drain_guard(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::any().and_then(move || {
        let draining = state.ws.is_draining();
        async move {
            if draining {
                let mut response = ApiError::ShuttingDown.into_response();
                response.headers_mut().insert(
                    warp::http::header::CONNECTION,
                    warp::http::HeaderValue::from_static("close"),
                );
                Ok(response)
            } else {
                Err(warp::reject::not_found())
            }
        }
    })
}

/// Answers 414 for a query string over [`MAX_QUERY_BYTES`]; anything else
/// falls through as "not found".
fn query_guard() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|query: String| async move {
            if query.len() > MAX_QUERY_BYTES {
                Ok(ApiError::QueryTooLong.into_response())
            } else {
                Err(warp::reject::not_found())
            }
        })
}

/// Turns warp's routing rejections into JSON. Handlers never reject (they
/// answer their own errors), so only routing failures arrive here.
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else {
        if !rejection.is_not_found() {
            tracing::debug!(?rejection, "unexpected rejection answered as 404");
        }
        ApiError::NotFound
    };
    Ok(error.into_response())
}

/// Handlers answer their own errors; warp never sees a rejection from them.
async fn answer(
    handler: impl Future<Output = Result<Response, ApiError>>,
) -> Result<Response, Infallible> {
    Ok(handler.await.unwrap_or_else(ApiError::into_response))
}

/// Injects a clone of the state.
fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}
