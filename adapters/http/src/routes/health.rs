//! `GET /health` (the process answers) and `GET /readiness` (the store answers too).

use std::convert::Infallible;

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::with_state;
use crate::reply::json;
use crate::state::AppState;

/// The health and readiness routes.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let version = state.config.version;
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            json(
                StatusCode::OK,
                &json!({"status": "ok", "service": "event-pipeline", "version": version}),
            )
        });
    let readiness = warp::path("readiness")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(state))
        .and_then(readiness);
    health.or(readiness).unify()
}

async fn readiness(state: AppState) -> Result<Response, Infallible> {
    let r = state.service.readiness().await;
    Ok(if r.store_ok {
        json(
            StatusCode::OK,
            &json!({"ready": true, "database": "connected", "router": r.router}),
        )
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ready": false, "database": "disconnected", "router": r.router}),
        )
    })
}
