//! `POST /events/batch`: a JSON array of events, each as for a single
//! publish, validated one by one; the valid ones are committed in one
//! transaction, and the answer (200) holds one result per item, in order.

use bytes::Buf;
use ep_domain::{FieldError, Operation, PublishError, PublishRequest, Refused};
use futures_util::Stream;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::answer;
use crate::api_error::ApiError;
use crate::body::read_json_body;
use crate::metrics::{self, Outcome, Transport};
use crate::reply::json;
use crate::schemas::{BatchResult, Detail, NewEvent, ValidationError};
use crate::served::{admitted, Admitted};

/// The batch route, matched and guarded from its table entry.
pub(super) fn routes(
    state: crate::state::AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    admitted(state, Operation::PublishBatch)
        .and(warp::body::stream())
        .and_then(|_, admitted, body| answer(publish_batch(admitted, body)))
}

/// Publishes several events in one request.
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    operation_id = "publish_batch",
    tag = "events",
    request_body(content = Vec<NewEvent>, content_type = "application/json",
        description = "At most MAX_BATCH_EVENTS (1000) events, each as for POST /events"),
    responses(
        (status = 200, description = "One result per item, in order: the stored event, or why that one was refused. The stored ones were committed in one transaction", body = Vec<BatchResult>),
        (status = 400, description = "The body could not be read", body = Detail),
        (status = 413, description = "The body is over the body limit (1 MiB by default)", body = Detail),
        (status = 422, description = "Not a JSON array, or more than MAX_BATCH_EVENTS items: nothing was stored", body = ValidationError),
        (status = 503, description = "The store is unavailable or the publish queue is full; nothing was stored", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn publish_batch<S, B>(
    admitted: Result<Admitted, ApiError>,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let admitted = admitted?;
    let state = &admitted.state;
    let body = read_json_body(&admitted.headers, body, state.config.max_body_bytes).await?;
    let items: Vec<&RawValue> = serde_json::from_slice(&body).map_err(|_| {
        PublishError::Invalid(ep_domain::ValidationErrors::one(FieldError::new(
            &["body"],
            "Input should be a JSON array of events",
            "list_type",
        )))
    })?;
    // Items that are not even an event object are refused here; the others
    // go to the domain, which answers for each, in order.
    let mut unreadable = Vec::with_capacity(items.len());
    let mut requests = Vec::with_capacity(items.len());
    for raw in &items {
        match PublishRequest::from_json(raw.get().as_bytes()) {
            Ok(request) => {
                requests.push(request);
                unreadable.push(None);
            }
            Err(errors) => unreadable.push(Some(errors)),
        }
    }
    let types: Vec<_> = requests.iter().map(PublishRequest::event_type).collect();
    let commit = state
        .service
        .publish_batch(&admitted.caller, requests, admitted.action)
        .map_err(|e| admitted.failed(e))?;
    let outcomes = commit.await.map_err(ApiError::from)?;
    let mut handed = outcomes.into_iter().zip(types);
    let mut results = Vec::with_capacity(unreadable.len());
    for item in unreadable {
        let (outcome, event_type) = match item {
            Some(errors) => (Err(PublishError::Invalid(errors)), None),
            // The domain gives one outcome per request it was handed.
            None => match handed.next() {
                Some(pair) => pair,
                None => break,
            },
        };
        results.push(result(outcome, event_type, &admitted));
    }
    Ok(json(StatusCode::OK, &Value::Array(results)))
}

/// One item's result, counted in the metrics.
fn result(
    outcome: Result<ep_domain::Published, PublishError>,
    event_type: Option<ep_ports::EventType>,
    admitted: &Admitted,
) -> Value {
    let (counted, value) = match outcome {
        Ok(published) if published.repeat => (
            Outcome::Repeat,
            json!({"status": "ok", "repeat": true, "event": &*published.event}),
        ),
        Err(e @ PublishError::Conflict(_)) => (
            Outcome::Conflict,
            json!({"status": "error", "detail": [{"loc": ["body", "idempotency_key"], "msg": e.to_string(), "type": "conflict"}]}),
        ),
        Ok(published) => (
            Outcome::Committed,
            json!({"status": "ok", "event": &*published.event}),
        ),
        Err(PublishError::Invalid(errors)) => (
            Outcome::Invalid,
            json!({"status": "error", "detail": errors.0}),
        ),
        Err(PublishError::Refused(Refused::RateLimited(limited))) => {
            let _ = admitted.failed(PublishError::Refused(Refused::RateLimited(limited)));
            (
                Outcome::RateLimited,
                json!({"status": "error", "retry_after": limited.retry_after.as_secs().max(1),
                       "detail": [{"loc": ["body"], "msg": "Rate limit exceeded", "type": "rate_limited"}]}),
            )
        }
        Err(PublishError::Refused(Refused::Denied(denied))) => (
            Outcome::Forbidden,
            json!({"status": "error", "detail": [{"loc": ["body"], "msg": denied.to_string(), "type": "forbidden"}]}),
        ),
        Err(e) => (
            Outcome::StoreError,
            json!({"status": "error", "detail": [{"loc": ["body"], "msg": e.to_string(), "type": "unavailable"}]}),
        ),
    };
    metrics::event(event_type, Transport::Rest, counted);
    value
}
