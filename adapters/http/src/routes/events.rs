//! `/events`: publish (POST), list (GET), delete (DELETE), and `/events/{id}`.

use bytes::Buf;
use ep_domain::{Operation, QueryParams};
use futures_util::Stream;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::answer;
use crate::admission::admit_publish;
use crate::api_error::ApiError;
use crate::body::read_json_body;
use crate::reply::json;
use crate::schemas::{DeleteQuery, Deleted, Detail, Event, ListQuery, NewEvent, ValidationError};
use crate::served::{admitted, Admitted, Segments};
use crate::state::AppState;

type Pairs = Vec<(String, String)>;

/// The REST header carrying a client's idempotency key.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The events routes, each matched and guarded from its table entry.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let publish = admitted(state.clone(), Operation::Publish)
        .and(warp::body::stream())
        .and_then(|_, admitted, body| answer(publish(admitted, body)));
    let list = admitted(state.clone(), Operation::Query)
        .and(warp::query::<Pairs>())
        .and_then(|_, admitted, pairs| answer(list(admitted, pairs)));
    let delete = admitted(state.clone(), Operation::Delete)
        .and(warp::query::<Pairs>())
        .and_then(|_, admitted, pairs| answer(delete(admitted, pairs)));
    let one = admitted(state, Operation::Get)
        .and_then(|segments, admitted| answer(get_one(admitted, segments)));
    publish.or(list).unify().or(delete).unify().or(one).unify()
}

/// Publishes an event: validated, stored durably, then pushed to subscribers.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    operation_id = "publish_event",
    tag = "events",
    request_body(content = NewEvent, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200,
        description = "A key of the client's: a repeat with the same content within IDEMPOTENCY_WINDOW_SECONDS answers the first event (200); other content is 409")),
    responses(
        (status = 201, description = "Stored (committed): the event as stored", body = Event),
        (status = 200, description = "A repeat: an event with this idempotency key (header `Idempotency-Key` or body `idempotency_key`) and the same content was stored within IDEMPOTENCY_WINDOW_SECONDS; that event, nothing new stored", body = Event),
        (status = 409, description = "The idempotency key was used within the window for an event of other content; nothing stored", body = Detail),
        (status = 400, description = "The body could not be read", body = Detail),
        (status = 413, description = "The body is over the body limit (1 MiB by default)", body = Detail),
        (status = 422, description = "Not JSON, or the event breaks the rules: every violation", body = ValidationError),
        (status = 503, description = "The store is unavailable or the publish queue is full; nothing was stored", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn publish<S, B>(
    admitted: Result<Admitted, ApiError>,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    // Auth first: an unauthenticated or unauthorized client's body is never read.
    let Admitted {
        state,
        headers,
        action,
        caller,
    } = admitted?;
    let body = read_json_body(&headers, body, state.config.max_body_bytes).await?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let published = admit_publish(&state, &caller, &body, key, action)?.await?;
    // A repeat of an earlier publish (same idempotency key and content)
    // answers that event; nothing new was stored.
    let status = if published.repeat {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &*published.event))
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
    admitted: Result<Admitted, ApiError>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let admitted = admitted?;
    let events = admitted
        .state
        .service
        .query(&admitted.caller, QueryParams::from_pairs(pairs))
        .await
        .map_err(|e| admitted.failed(e))?;
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
        (status = 404, description = "No event has this id (or none inside the credential's scope)", body = Detail),
        (status = 503, description = "The store is unavailable", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn get_one(
    admitted: Result<Admitted, ApiError>,
    segments: Segments,
) -> Result<Response, ApiError> {
    let admitted = admitted?;
    // The table's path has one `{id}`: the one segment extracted.
    let id = segments.concat();
    let event = admitted
        .state
        .service
        .get(&admitted.caller, &id)
        .await
        .map_err(|e| admitted.failed(e))?;
    Ok(json(StatusCode::OK, &event))
}

/// Deletes stored events: those before an instant, or all.
///
/// The events are deleted in steps of a few milliseconds each, so that
/// publishing goes on meanwhile; the answer comes when the last step is
/// committed (a large delete takes seconds). Events published while it
/// runs are never deleted by it. One delete runs at a time per node: a
/// second one waits for the first. A delete that the client stops waiting
/// for still runs to its end.
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
    admitted: Result<Admitted, ApiError>,
    pairs: Pairs,
) -> Result<Response, ApiError> {
    let admitted = admitted?;
    let before = pairs
        .into_iter()
        .rev()
        .find(|(k, _)| k == "before")
        .map(|(_, v)| v);
    let deleted = admitted
        .state
        .service
        .delete(&admitted.caller, before.as_deref())
        .await
        .map_err(|e| admitted.failed(e))?;
    tracing::info!(
        deleted,
        before = before.as_deref(),
        caller = admitted.caller.principal.identity.label(),
        "events deleted"
    );
    Ok(json(StatusCode::OK, &json!({ "deleted": deleted })))
}
