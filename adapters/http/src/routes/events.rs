//! `/events`: publish (POST), list (GET), delete (DELETE), and `/events/{id}`.

use std::net::SocketAddr;

use bytes::Buf;
use ep_domain::{EventService, QueryParams, RateClass};
use ep_ports::Role;
use futures_util::Stream;
use serde_json::json;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::Filter;

use super::{answer, with_state};
use crate::admission::{admit_publish, authorize, client_ip, rate_limit_request};
use crate::api_error::ApiError;
use crate::body::read_json_body;
use crate::metrics::Transport;
use crate::reply::json;
use crate::schemas::{DeleteQuery, Deleted, Detail, Event, ListQuery, NewEvent, ValidationError};
use crate::state::AppState;

type Pairs = Vec<(String, String)>;

/// The events routes.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let collection = warp::path("events").and(warp::path::end());
    let publish = warp::post()
        .and(with_state(state.clone()))
        .and(warp::header::headers_cloned())
        .and(crate::client::peer())
        .and(warp::body::stream())
        .and_then(|state, headers, remote, body| answer(publish(state, headers, remote, body)));
    let list = warp::get()
        .and(with_state(state.clone()))
        .and(warp::header::headers_cloned())
        .and(crate::client::peer())
        .and(warp::query::<Pairs>())
        .and_then(|state, headers, remote, pairs| answer(list(state, headers, remote, pairs)));
    let delete = warp::delete()
        .and(with_state(state.clone()))
        .and(warp::header::headers_cloned())
        .and(crate::client::peer())
        .and(warp::query::<Pairs>())
        .and_then(|state, headers, remote, pairs| answer(delete(state, headers, remote, pairs)));
    let one = warp::path!("events" / String)
        .and(warp::get())
        .and(with_state(state))
        .and(warp::header::headers_cloned())
        .and(crate::client::peer())
        .and_then(|id, state, headers, remote| answer(get_one(state, headers, remote, id)));
    collection
        .and(publish.or(list).unify().or(delete).unify())
        .or(one)
        .unify()
}

/// Publishes an event: validated, stored durably, then pushed to subscribers.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    operation_id = "publish_event",
    tag = "events",
    request_body(content = NewEvent, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored (committed): the event as stored", body = Event),
        (status = 400, description = "The body could not be read", body = Detail),
        (status = 413, description = "The body is over the body limit (1 MiB by default)", body = Detail),
        (status = 422, description = "Not JSON, or the event breaks the rules: every violation", body = ValidationError),
        (status = 503, description = "The store is unavailable or the publish queue is full; nothing was stored", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn publish<S, B>(
    state: AppState,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    // Auth first: an unauthenticated client's body is never read.
    authorize(&state, &headers, None, Role::Publish)?;
    let body = read_json_body(&headers, body, state.config.max_body_bytes).await?;
    let client = client_ip(&state, remote, &headers);
    let event = admit_publish(&state, client, &body, Transport::Rest)?.await?;
    Ok(json(StatusCode::CREATED, &*event))
}

/// Lists stored events, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "list_events",
    tag = "events",
    params(ListQuery),
    responses(
        (status = 200, description = "The matching events, newest first", body = Vec<Event>),
        (status = 400, description = "`since` is not an ISO 8601 instant", body = Detail),
        (status = 422, description = "A filter is too long, `limit` is out of 1..=1000, or `since` is outside years 0000-9999", body = ValidationError),
        (status = 503, description = "The store is unavailable", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn list(
    state: AppState,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, None, Role::Read)?;
    let query = EventService::check_query(QueryParams::from_pairs(pairs))?;
    rate_limit_request(&state, remote, &headers, RateClass::Query)?;
    let events = state.service.run_query(query).await?;
    Ok(json(StatusCode::OK, &events))
}

/// One event by id.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    operation_id = "get_event",
    tag = "events",
    params(("id" = String, Path, description = "The event's id (`evt_...`)")),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "No event has this id", body = Detail),
        (status = 503, description = "The store is unavailable", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn get_one(
    state: AppState,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    id: String,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, None, Role::Read)?;
    rate_limit_request(&state, remote, &headers, RateClass::Query)?;
    let event = state.service.get(&id).await?;
    Ok(json(StatusCode::OK, &event))
}

/// Deletes stored events: those before an instant, or all.
#[utoipa::path(
    delete,
    path = "/api/v1/events",
    operation_id = "delete_events",
    tag = "events",
    params(DeleteQuery),
    responses(
        (status = 200, description = "How many events were deleted", body = Deleted),
        (status = 400, description = "`before` is not an ISO 8601 instant", body = Detail),
        (status = 422, description = "`before` is outside years 0000-9999", body = ValidationError),
        (status = 503, description = "The store is unavailable", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn delete(
    state: AppState,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, None, Role::Admin)?;
    let before = pairs
        .into_iter()
        .rev()
        .find(|(k, _)| k == "before")
        .map(|(_, v)| v);
    let instant = EventService::parse_before(before.as_deref())?;
    rate_limit_request(&state, remote, &headers, RateClass::Admin)?;
    let deleted = state.service.delete_before(instant).await?;
    tracing::info!(deleted, before = before.as_deref(), "events deleted");
    Ok(json(StatusCode::OK, &json!({ "deleted": deleted })))
}
