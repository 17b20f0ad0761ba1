//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the schemas, then fitted to this node's configuration
//! (see `tailor`): it describes the service as it runs, not as it might.

use ep_ports::{Credential, Role};
use utoipa::OpenApi;

use super::tailor::{tailor, Settings};
use super::{event_types, events, health, metrics, stats};
use crate::schemas;
use crate::state::AppState;

/// Every operation and schema, as the code defines them.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "event-pipeline",
        description = "Real-time event pub/sub for educational platforms: publish events over \
            REST or WebSocket, query them, and receive them live over WebSocket. Every \
            `/api/v1/X` path is also served as `/X`, and a trailing slash is ignored. Every \
            error answers JSON with a `detail`."
    ),
    paths(
        health::health,
        health::readiness,
        events::publish,
        super::batch::publish_batch,
        events::list,
        events::delete,
        events::get_one,
        super::users::erase,
        super::caliper::receive,
        stats::stats,
        event_types::event_types,
        metrics::metrics,
        super::docs::openapi,
        super::docs::docs,
        super::docs::script,
        super::docs::style,
        super::dashboard::dashboard,
        super::dashboard::script,
        super::dashboard::style,
        super::dashboard::icon,
        crate::ws::publish_route,
        crate::ws::subscribe_route,
        super::stream::stream_route,
    ),
    components(schemas(
        schemas::Event,
        schemas::NewEvent,
        schemas::BatchResult,
        schemas::EventTypeName,
        schemas::Registry,
        schemas::Instant,
        schemas::Detail,
        schemas::FieldError,
        schemas::ValidationError,
        schemas::Deleted,
        schemas::Router,
        schemas::TypeStats,
    )),
    tags(
        (name = "events", description = "Publish, query and delete events"),
        (name = "websocket", description = "Publish and subscribe over WebSocket"),
        (name = "standards", description = "IMS Caliper in (the Sensor API)"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "docs", description = "This document and the page that shows it"),
    )
)]
pub(crate) struct ApiDoc;

/// What the document depends on in `state`.
pub(crate) fn settings(state: &AppState) -> Settings {
    let anonymous = state.auth.authenticate(Credential::default()).ok();
    let open_to_anyone = |role: Role| anonymous.as_ref().is_some_and(|p| p.has(role));
    Settings {
        key_needed: [Role::Publish, Role::Read, Role::Admin]
            .into_iter()
            .filter(|role| !open_to_anyone(*role))
            .collect(),
        tokens: state.config.tokens,
        origins_restricted: !state.config.cors.allows_any(),
        max_payload_keys: state.service.limits().max_payload_keys,
        max_payload_bytes: state.service.limits().max_payload_bytes,
        metrics: state.metrics.is_some(),
        version: state.config.version,
        event_types: state
            .service
            .event_types()
            .declarations()
            .iter()
            .map(|t| {
                (
                    t.event_type.as_str().to_owned(),
                    t.description.clone(),
                    t.schema.as_ref().map(|s| s.document().clone()),
                )
            })
            .collect(),
        unlisted: state
            .service
            .event_types()
            .declarations()
            .iter()
            .filter(|t| !t.listed)
            .map(|t| t.event_type.as_str().to_owned())
            .collect(),
        schemas_enforced: state.service.event_types().mode() == ep_domain::SchemaMode::Enforce,
    }
}

/// The document for a node configured as `state` is, as JSON.
pub(crate) fn render(state: &AppState) -> Vec<u8> {
    let document = tailor(ApiDoc::openapi(), &settings(state));
    // The document is plain data: it always serializes.
    let mut document = serde_json::to_value(&document).unwrap_or_default();
    caliper_envelope(&mut document);
    serde_json::to_vec_pretty(&document).unwrap_or_default()
}

/// The Caliper envelope the endpoint reads, exactly, as JSON Schema
/// written into the rendered document (utoipa's schema objects have no
/// `not`): an item of `data` is an event, or an entity (no `action`, not
/// stored); an actor or session is an entity with an id or its IRI.
fn caliper_envelope(document: &mut serde_json::Value) {
    use serde_json::json;
    let schemas = json!({
        "CaliperReference": {
            "description": "An entity with an id, or its IRI (at most 200 characters: the event's user_id or session_id)",
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": 200},
                {"type": "object", "required": ["id"],
                 "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 200}}}
            ]
        },
        "CaliperEvent": {
            "description": "A Caliper event, stored as one event (other keys are kept as sent)",
            "type": "object",
            "required": ["id", "type", "actor", "action", "object", "eventTime"],
            "properties": {
                "id": {"type": "string", "minLength": 1, "description": "Sent again, it is stored once"},
                "type": {"type": "string", "minLength": 1},
                "actor": {"$ref": "#/components/schemas/CaliperReference"},
                "action": {"type": "string", "minLength": 1},
                "object": {"description": "What the event acts on: any JSON value"},
                "eventTime": {"$ref": "#/components/schemas/Instant"},
                "session": {"$ref": "#/components/schemas/CaliperReference"}
            }
        },
        "CaliperEntity": {
            "description": "An entity described in the envelope (no action): not stored",
            "type": "object",
            "required": ["id", "type"],
            "properties": {"id": {"type": "string", "minLength": 1},
                           "type": {"type": "string", "minLength": 1}},
            "not": {"required": ["action"]}
        },
        "CaliperEnvelope": {
            "description": "An IMS Caliper envelope (the Sensor API)",
            "type": "object",
            "required": ["sensor", "sendTime", "dataVersion", "data"],
            "properties": {
                "sensor": {"type": "string", "minLength": 1},
                "sendTime": {"$ref": "#/components/schemas/Instant"},
                "dataVersion": {"type": "string", "enum": crate::caliper::DATA_VERSIONS},
                "data": {"type": "array", "items": {"anyOf": [
                    {"$ref": "#/components/schemas/CaliperEvent"},
                    {"$ref": "#/components/schemas/CaliperEntity"}
                ]}}
            }
        }
    });
    if let (Some(components), serde_json::Value::Object(add)) = (
        document
            .pointer_mut("/components/schemas")
            .and_then(serde_json::Value::as_object_mut),
        schemas,
    ) {
        components.extend(add);
    }
    for path in ["/api/v1/caliper/{version}", "/caliper/{version}"] {
        let pointer = format!(
            "/paths/{}/post/requestBody/content/application~1json/schema",
            path.replace('~', "~0").replace('/', "~1")
        );
        if let Some(schema) = document.pointer_mut(&pointer) {
            *schema = json!({"$ref": "#/components/schemas/CaliperEnvelope"});
        }
    }
}
