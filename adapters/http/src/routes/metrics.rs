//! `GET /metrics`: every metric in the Prometheus text format, protected
//! like `/stats` (same key, same rate limit); 404 when metrics are off.

use ep_domain::Operation;
use warp::http::header::{HeaderValue, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::answer;
use crate::api_error::ApiError;
use crate::served::{admitted, Admitted};
use crate::state::AppState;

/// The Prometheus text format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics route.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let off = state.metrics.is_none();
    // Off, the path is no route at all: every method is a 404 that says why.
    let switched_off = warp::path("metrics")
        .and(warp::path::end())
        .and_then(move || {
            std::future::ready(if off {
                Ok(ApiError::MetricsOff.into_response())
            } else {
                Err(warp::reject::not_found())
            })
        });
    let on = admitted(state, Operation::Metrics)
        .and_then(|_, admitted| answer(std::future::ready(metrics(admitted))));
    switched_off.or(on).unify()
}

/// Every metric, in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/api/v1/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "The Prometheus text format (0.0.4)", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
pub(super) fn metrics(admitted: Result<Admitted, ApiError>) -> Result<Response, ApiError> {
    let admitted = admitted?;
    admitted
        .state
        .service
        .admit(&admitted.caller, admitted.action)
        .map_err(|e| admitted.failed(e))?;
    let state = &admitted.state;
    let Some(render) = &state.metrics else {
        return Err(ApiError::MetricsOff);
    };
    let router = state.service.router();
    let status = router.status();
    crate::metrics::live(status.queue_size, status.active_subscribers);
    crate::metrics::bus_skipped(router.bus_skipped_events());
    crate::metrics::schema_warnings(&state.service.event_types().schema_warnings());
    crate::metrics::retention(&state.service.retention_report());
    crate::metrics::export(&state.service.export_report());
    let mut response = Response::new(render().into());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    Ok(response)
}
