//! `GET /stats`: totals, the last hour, per-type figures and the router's state.

use ep_domain::{Operation, RouterStatus};
use ep_ports::TypeStats;
use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::answer;
use crate::api_error::ApiError;
use crate::reply::json;
use crate::schemas::Detail;
use crate::served::{admitted, Admitted};
use crate::state::AppState;

/// The stats route.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    admitted(state, Operation::Stats).and_then(|_, admitted| answer(stats(admitted)))
}

/// Totals, the last hour, per-type figures and the router's state.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    operation_id = "stats",
    tag = "events",
    responses(
        (status = 200, description = "The figures", body = StatsBody),
        (status = 503, description = "The store is unavailable", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn stats(admitted: Result<Admitted, ApiError>) -> Result<Response, ApiError> {
    let admitted = admitted?;
    let s = admitted
        .state
        .service
        .stats(&admitted.caller)
        .await
        .map_err(|e| admitted.failed(e))?;
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

/// What `/stats` answers.
#[derive(Serialize, ToSchema)]
#[schema(as = Stats)]
pub(crate) struct StatsBody<'a> {
    /// Events stored.
    total_events: u64,
    /// Events stored in the last 60 minutes.
    events_last_hour: u64,
    /// Per type, most frequent first; empty when nothing is stored.
    #[schema(value_type = Vec<crate::schemas::TypeStats>)]
    by_type: &'a [TypeStats],
    #[schema(value_type = crate::schemas::Router)]
    router: RouterStatus,
}
