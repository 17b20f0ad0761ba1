//! `GET /stats`: totals, the last hour, per-type figures and the router's state.

use std::convert::Infallible;
use std::net::SocketAddr;

use ep_domain::RateClass;

use ep_domain::RouterStatus;
use ep_ports::Role;
use ep_ports::TypeStats;
use serde::Serialize;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::Filter;

use super::with_state;
use crate::admission::{authorize, rate_limit_request};
use crate::api_error::ApiError;
use crate::reply::json;
use crate::state::AppState;

/// The stats route.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path("stats")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(state))
        .and(warp::header::headers_cloned())
        .and(crate::client::peer())
        .and_then(|state, headers, remote| async move {
            Ok::<_, Infallible>(
                stats(state, headers, remote)
                    .await
                    .unwrap_or_else(ApiError::into_response),
            )
        })
}

async fn stats(
    state: AppState,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, None, Role::Read)?;
    rate_limit_request(&state, remote, &headers, RateClass::Query)?;
    let s = state.service.stats().await?;
    Ok(json(
        StatusCode::OK,
        &StatsBody {
            total_events: s.total_events,
            events_last_hour: s.events_last_hour,
            by_type: &s.by_type,
            router: s.router,
        },
    ))
}

#[derive(Serialize)]
struct StatsBody<'a> {
    total_events: u64,
    events_last_hour: u64,
    by_type: &'a [TypeStats],
    router: RouterStatus,
}
