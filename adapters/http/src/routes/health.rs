//! `GET /health` (the process answers) and `GET /readiness` (the store
//! answers and commits too).

use std::borrow::Cow;
use std::convert::Infallible;

use ep_domain::RouterStatus;
use ep_ports::StoreError;
use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::with_state;
use crate::reply::json;
use crate::schemas::Router;
use crate::state::AppState;

/// The health and readiness routes.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let version = state.config.version;
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || health(version));
    let readiness = warp::path("readiness")
        .and(warp::path::end())
        .and(warp::get())
        .and(with_state(state))
        .and_then(readiness);
    health.or(readiness).unify()
}

/// The process answers.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "health",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub(super) fn health(version: &'static str) -> Response {
    json(
        StatusCode::OK,
        &Health {
            status: "ok",
            service: "event-pipeline",
            version,
        },
    )
}

/// What `/health` answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
    /// Always `event-pipeline`.
    #[schema(example = "event-pipeline")]
    service: &'static str,
    /// The service's version.
    version: &'static str,
}

/// What `/readiness` answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct Ready {
    /// Whether this node can take publishes now.
    ready: bool,
    /// `connected`, `disconnected` (no answer), or why commits fail.
    #[schema(value_type = String, example = "connected")]
    database: Cow<'static, str>,
    /// `connected` or why not; absent for the in-process broadcaster.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    broadcaster: Option<Cow<'static, str>>,
    #[schema(value_type = Router)]
    router: RouterStatus,
}

/// The store answers and commits, and the bus (if any) is connected.
#[utoipa::path(
    get,
    path = "/api/v1/readiness",
    operation_id = "readiness",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: take this node into rotation", body = Ready,
            headers(("X-Event-Pipeline-Node" = String, description = "Which node answered (host:port)"))),
        (status = 503, description = "Not ready: each dependency says why", body = Ready,
            headers(("X-Event-Pipeline-Node" = String, description = "Which node answered (host:port)"))),
    )
)]
pub(super) async fn readiness(state: AppState) -> Result<Response, Infallible> {
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
    let mut response = json(
        status,
        &Ready {
            ready,
            database,
            broadcaster,
            router: r.router,
        },
    );
    // Which node answered (behind a load balancer, the dashboard says).
    if let Ok(node) = warp::http::HeaderValue::from_str(&state.config.node) {
        response.headers_mut().insert(NODE_HEADER, node);
    }
    Ok(response)
}

/// The header naming the node that answered `/readiness`.
pub(crate) const NODE_HEADER: &str = "x-event-pipeline-node";
