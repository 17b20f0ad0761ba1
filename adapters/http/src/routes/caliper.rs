//! `POST /caliper/v1p2` and `/caliper/v1p1` (one table entry,
//! `/caliper/{version}`): the IMS Caliper Sensor API endpoint. Each event
//! of an envelope becomes one pipeline event (the mapping is
//! `crate::caliper::mapping`), all committed together or none.

use bytes::Buf;
use ep_domain::Operation;
use futures_util::Stream;
use warp::http::header::CONTENT_TYPE;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::answer;
use crate::api_error::ApiError;
use crate::body::read_json_body;
use crate::caliper::{is_json, read_envelope, CaliperError};
use crate::metrics::{self, Outcome, Transport};
use crate::schemas::{Detail, ValidationError};
use crate::served::{admitted, Admitted, Segments};

/// The paths' versions: Caliper 1.2, and 1.1 (which Canvas sends).
const VERSIONS: [&str; 2] = ["v1p2", "v1p1"];

/// The Caliper route, matched and guarded from its table entry.
pub(super) fn routes(
    state: crate::state::AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    admitted(state, Operation::CaliperPublish)
        .and(warp::body::stream())
        .and_then(|segments: Segments, admitted, body| {
            answer(async move {
                // The table's path has one `{version}`.
                if !VERSIONS.contains(&segments.concat().as_str()) {
                    return Err(ApiError::NotFound);
                }
                receive(admitted, body).await
            })
        })
}

/// Receives a Caliper 1.2 (or 1.1) envelope from a sensor.
///
/// Each event of `data` is stored as one event: AssessmentEvent Started /
/// Submitted as `quiz_started` / `quiz_completed`; AssessmentItemEvent
/// Started / Completed / Skipped as `question_viewed` / `answer_submitted`
/// / `question_skipped`; SessionEvent LoggedIn / LoggedOut / TimedOut as
/// `session_created` / `session_ended`; GradeEvent Graded, and ToolUseEvent
/// Used with a mastery metric, as `mastery_updated`; anything else as
/// `caliper_event`. `user_id` is the actor (the assignee when a grader
/// grades), `session_id` the Caliper session or attempt, `source` the
/// sensor, `occurred_at` the `eventTime`; the Caliper event is kept under
/// `payload.caliper` (without the fields `CALIPER_STRIP_FIELDS` names). A
/// Caliper event id sent again is stored once. Entities described in
/// `data` are not stored.
#[utoipa::path(
    post,
    path = "/api/v1/caliper/{version}",
    operation_id = "caliper_envelope",
    tag = "standards",
    params(("version" = String, Path, pattern = "^v1p[12]$",
        description = "`v1p2` or `v1p1` (either reads both data versions)")),
    request_body(content = Object, content_type = "application/json",
        description = "A Caliper envelope: sensor, sendTime, dataVersion (http://purl.imsglobal.org/ctx/caliper/v1p2 or v1p1), data[]"),
    responses(
        (status = 200, description = "Every event of the envelope is committed (an empty body)"),
        (status = 400, description = "Not a Caliper envelope, or an event that cannot be stored: nothing was stored", body = ValidationError),
        (status = 404, description = "A version other than v1p2 or v1p1", body = Detail),
        (status = 409, description = "A Caliper event id sent before (or twice in the envelope) with other content: nothing of the envelope was stored", body = Detail),
        (status = 413, description = "The body is over the body limit (1 MiB by default)", body = Detail),
        (status = 415, description = "The body is not declared application/json", body = Detail),
        (status = 422, description = "A dataVersion this endpoint does not read", body = Detail),
        (status = 503, description = "The store is unavailable or the publish queue is full; nothing was stored", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn receive<S, B>(
    admitted: Result<Admitted, ApiError>,
    body: S,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let admitted = admitted?;
    let state = &admitted.state;
    let content_type = admitted
        .headers
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""));
    if !is_json(content_type) {
        return Err(ApiError::Caliper(CaliperError::ContentType));
    }
    let body = read_json_body(&admitted.headers, body, state.config.max_body_bytes).await?;
    let envelope: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::Caliper(CaliperError::Malformed(vec![ep_domain::FieldError::new(
            &["body"],
            format!("Not JSON: {e}"),
            "json_invalid",
        )]))
    })?;
    let requests =
        read_envelope(envelope, &state.config.caliper_stripped).map_err(ApiError::Caliper)?;
    let types: Vec<_> = requests
        .iter()
        .map(ep_domain::PublishRequest::event_type)
        .collect();
    let commit = state
        .service
        .publish_all(&admitted.caller, requests, admitted.action)
        .map_err(|e| admitted.failed(caliper_refusal(e)))?;
    let published = commit.await.map_err(caliper_refusal)?;
    for (event_type, one) in types.into_iter().zip(&published) {
        let outcome = if one.repeat {
            Outcome::Repeat
        } else {
            Outcome::Committed
        };
        metrics::event(event_type, Transport::Caliper, outcome);
    }
    tracing::debug!(events = published.len(), "Caliper envelope stored");
    // The Sensor API's answer: 200 with an empty body.
    let mut response = Response::new(bytes::Bytes::new().into());
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// A mapped event that breaks a rule makes the envelope malformed (400,
/// as the Caliper Sensor API answers); any other refusal is as for a
/// publish.
fn caliper_refusal(e: ep_domain::PublishError) -> ApiError {
    match e {
        ep_domain::PublishError::Invalid(errors) => {
            ApiError::Caliper(CaliperError::Malformed(errors.0))
        }
        other => ApiError::Publish(other),
    }
}
