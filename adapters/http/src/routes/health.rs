//! `GET /health` (the process answers) and `GET /readiness` (the store
//! answers and commits too).

use std::borrow::Cow;
use std::convert::Infallible;

use ep_domain::RouterStatus;
use ep_ports::StoreError;
use serde::Serialize;
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
                &Health {
                    status: "ok",
                    service: "event-pipeline",
                    version,
                },
            )
        });
    let readiness = warp::path("readiness")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(state))
        .and_then(readiness);
    health.or(readiness).unify()
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Ready {
    ready: bool,
    /// `connected`, `disconnected` (no answer), or why commits fail.
    database: Cow<'static, str>,
    /// `connected` or why not; absent for the in-process broadcaster.
    #[serde(skip_serializing_if = "Option::is_none")]
    broadcaster: Option<Cow<'static, str>>,
    router: RouterStatus,
}

async fn readiness(state: AppState) -> Result<Response, Infallible> {
    let r = state.service.readiness().await;
    let database: Cow<'static, str> = match (&r.store_ok, &r.commit_failure) {
        (false, _) => "disconnected".into(),
        (true, None) => "connected".into(),
        (true, Some(StoreError::Full(_))) => "disk full".into(),
        (true, Some(e)) => e.to_string().into(),
    };
    let (status, ready) = if r.is_ready() {
        (StatusCode::OK, true)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, false)
    };
    let broadcaster = state.config.broadcaster.map(|kind| match &r.broadcaster {
        Ok(()) => Cow::Borrowed("connected"),
        Err(e) => Cow::Owned(format!("{kind}: {e}")),
    });
    Ok(json(
        status,
        &Ready {
            ready,
            database,
            broadcaster,
            router: r.router,
        },
    ))
}
