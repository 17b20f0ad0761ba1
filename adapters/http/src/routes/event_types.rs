//! `GET /event-types`: the registry, each type mapped to its description.

use ep_ports::EventType;
use serde::ser::{Serialize, Serializer};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use crate::reply::json;

/// The registry as a JSON object, in the contract's order.
struct Registry;

impl Serialize for Registry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(EventType::ALL.iter().map(|t| (t.as_str(), t.description())))
    }
}

/// The event-types route (open: no key needed).
pub(super) fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path("event-types")
        .and(warp::path::end())
        .and(warp::get())
        .map(event_types)
}

/// The registry of event types.
#[utoipa::path(
    get,
    path = "/api/v1/event-types",
    operation_id = "event_types",
    tag = "events",
    responses((status = 200, description = "Each type mapped to its description", body = crate::schemas::Registry))
)]
pub(super) fn event_types() -> Response {
    json(StatusCode::OK, &Registry)
}
