//! `/users/{user_id}/events`: erasure of one student's events (DELETE).

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::answer;
use crate::api_error::ApiError;
use crate::reply::json;
use crate::schemas::{Deleted, Detail, ValidationError};
use crate::served::{admitted, Admitted, Segments};
use crate::state::AppState;
use ep_domain::{DeleteError, FieldError, Operation, ValidationErrors};

/// The users routes, matched and guarded from their table entries.
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    admitted(state, Operation::Erase)
        .and_then(|segments, admitted| answer(erase(admitted, segments)))
}

/// Erases every stored event of one student (a request under FERPA or the
/// GDPR), of every type, in every store the node writes to.
///
/// In steps of a few milliseconds each, as `DELETE /events` is: publishing
/// goes on meanwhile, and the answer comes when the last step is committed.
/// Idempotent: a repeat answers `{"deleted": 0}`. Events published for the
/// student after the erasure started are kept. Events already delivered
/// live to subscribers (or to an LRS) cannot be recalled. Each erasure
/// writes an audit log line (who asked, whose events, how many; never a
/// payload).
#[utoipa::path(
    delete,
    path = "/api/v1/users/{user_id}/events",
    operation_id = "erase_user_events",
    tag = "events",
    params(("user_id" = String, Path, min_length = 1, max_length = 200,
        description = "The student's id as events carry it (percent-encoded in the path)")),
    responses(
        (status = 200, description = "How many events were erased", body = Deleted),
        (status = 422, description = "The user id is empty, too long or not UTF-8", body = ValidationError),
        (status = 503, description = "The store is unavailable; the events reported deleted before it failed are gone, a retry erases the rest", body = Detail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(super) async fn erase(
    admitted: Result<Admitted, ApiError>,
    segments: Segments,
) -> Result<Response, ApiError> {
    let admitted = admitted?;
    // The table's path has one `{user_id}`: the one segment extracted.
    let raw = segments.concat();
    let user_id = percent_encoding::percent_decode_str(&raw)
        .decode_utf8()
        .map_err(|_| {
            ApiError::Delete(DeleteError::Invalid(ValidationErrors::one(
                FieldError::new(
                    &["path", "user_id"],
                    "user_id is not UTF-8 once percent-decoded",
                    "string_type",
                ),
            )))
        })?;
    let deleted = admitted
        .state
        .service
        .erase(&admitted.caller, &user_id)
        .await
        .map_err(|e| admitted.failed(e))?;
    let identity = &admitted.caller.principal.identity;
    // Who, as precisely as the credential says: `key:<name>`, `sub:<sub>`,
    // or `api_key` / `anonymous` with the address.
    let who = identity
        .rate_key()
        .unwrap_or_else(|| identity.label().to_owned());
    tracing::info!(
        target: "audit",
        action = "erase_user_events",
        caller = %who,
        address = %admitted.caller.address,
        user_id = %user_id,
        deleted,
        "a student's events were erased"
    );
    Ok(json(StatusCode::OK, &json!({ "deleted": deleted })))
}
