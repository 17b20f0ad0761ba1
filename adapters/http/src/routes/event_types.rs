//! `GET /event-types`: the registry, each type mapped to its description (as
//! the old service answered: the 15 and the operator's types, without the
//! `caliper_event` the Caliper endpoint declares for itself); with
//! `?schemas=true`, every type mapped to its description and payload
//! schema (`null` for a type without one).

use ep_domain::EventTypes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use crate::api_error::ApiError;
use crate::reply::json;
use crate::state::AppState;
use ep_domain::{FieldError, QueryError, ValidationErrors};

type Pairs = Vec<(String, String)>;

/// The registry as a JSON object, in the registry's order.
struct Registry<'a> {
    types: &'a EventTypes,
    schemas: bool,
}

impl Serialize for Registry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let declarations = self.types.declarations();
        let mut map = serializer.serialize_map(None)?;
        // The old service's shape lists what it listed (and any type an
        // operator declared); with schemas, every type is there.
        for t in declarations.iter().filter(|t| self.schemas || t.listed) {
            if self.schemas {
                let schema = t.schema.as_ref().map(|s| s.document());
                map.serialize_entry(
                    t.event_type.as_str(),
                    &Described {
                        description: &t.description,
                        schema: schema.unwrap_or(&Value::Null),
                    },
                )?;
            } else {
                map.serialize_entry(t.event_type.as_str(), &t.description)?;
            }
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct Described<'a> {
    description: &'a str,
    schema: &'a Value,
}

/// The event-types route (open: no key needed).
pub(super) fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path("event-types")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<Pairs>())
        .map(move |pairs: Pairs| match schemas_asked(&pairs) {
            Ok(schemas) => event_types(&state, schemas),
            Err(e) => e.into_response(),
        })
}

/// `schemas`: `true`/`1` or `false`/`0` (the last one given); anything
/// else is 422.
fn schemas_asked(pairs: &Pairs) -> Result<bool, ApiError> {
    match pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "schemas")
        .map(|(_, v)| v.as_str())
    {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(_) => Err(ApiError::Query(QueryError::Invalid(ValidationErrors::one(
            FieldError::new(
                &["query", "schemas"],
                "Input should be a valid boolean (true or false)",
                "bool_parsing",
            ),
        )))),
    }
}

/// The registry of event types.
#[utoipa::path(
    get,
    path = "/api/v1/event-types",
    operation_id = "event_types",
    tag = "events",
    params(("schemas" = Option<bool>, Query, description = "With `true`, each type maps to `{\"description\", \"schema\"}` (its payload schema, or null)")),
    responses(
        (status = 200, description = "Each type mapped to its description (or, with `schemas=true`, to its description and payload schema)", body = crate::schemas::Registry),
        (status = 422, description = "`schemas` is not a boolean", body = crate::schemas::ValidationError),
    )
)]
pub(super) fn event_types(state: &AppState, schemas: bool) -> Response {
    json(
        StatusCode::OK,
        &Registry {
            types: state.service.event_types(),
            schemas,
        },
    )
}
