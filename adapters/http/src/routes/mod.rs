//! The route tree: each resource's routes, served under `/api/v1` and at the
//! root, with JSON for every rejection, security headers and a log line.

mod auth;
mod event_types;
mod events;
mod health;
mod stats;

pub(crate) use auth::API_KEY_HEADER;

use std::convert::Infallible;

use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::api_error::ApiError;
use crate::headers::secure;
use crate::state::AppState;

/// Every REST route, ready for `warp::serve`.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    let api = health::routes(state.clone())
        .or(event_types::routes())
        .unify()
        .or(events::routes(state.clone()))
        .unify()
        .or(stats::routes(state.clone()))
        .unify()
        .or(crate::ws::routes(state))
        .unify();
    let versioned = warp::path("api").and(warp::path("v1")).and(api.clone());
    versioned
        .or(api)
        .unify()
        .recover(recover)
        .unify()
        .map(secure)
        .with(warp::log::custom(log_request))
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

fn log_request(info: warp::log::Info<'_>) {
    tracing::debug!(
        method = %info.method(),
        path = info.path(),
        status = info.status().as_u16(),
        elapsed_us = info.elapsed().as_micros() as u64,
        remote = ?info.remote_addr(),
        "request"
    );
}

/// Injects a clone of the state.
fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}
