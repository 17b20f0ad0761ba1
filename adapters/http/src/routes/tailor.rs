//! Fits the generated document to a node's configuration, from the route
//! table: a key (and 401/403) only where this node asks for one, 429 where a
//! rate limit applies, the answers every route can give (malformed header
//! 400, 405 with `Allow`, 414, 431, shutdown 503), the payload limit as
//! configured, `/metrics` only when metrics are on, every path under both
//! `/api/v1` and the root, and the WebSocket handshakes apart from the
//! HTTP operations.

use std::collections::btree_map::Entry;

use ep_ports::Role;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, Header, OpenApi, PathItem, Ref, RefOr, ResponseBuilder,
};
use warp::http::Method;

use crate::api_error::{AnswerDoc, Documented};
use crate::table::{Transport, OPERATIONS, PREFIX};

/// What the document depends on.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The roles an anonymous caller lacks: operations needing them need a key.
    pub key_needed: Vec<Role>,
    /// Signed tokens are accepted (`Authorization: Bearer`, `?token=`).
    pub tokens: bool,
    /// `CORS_ORIGINS` is not `*`: a WebSocket handshake from another origin is 403.
    pub origins_restricted: bool,
    /// `MAX_PAYLOAD_KEYS`.
    pub max_payload_keys: usize,
    /// `MAX_PAYLOAD_BYTES`.
    pub max_payload_bytes: usize,
    /// `/metrics` answers (`METRICS=true`).
    pub metrics: bool,
    /// The service's version.
    pub version: &'static str,
    /// The registry: each type's name, description and payload schema.
    pub event_types: Vec<(String, String, Option<serde_json::Value>)>,
    /// The types the plain `GET /event-types` leaves out (listed only with
    /// `schemas=true`): `caliper_event`, unless an operator declares it.
    pub unlisted: Vec<String>,
    /// A payload that breaks its type's schema is refused (`SCHEMA_MODE=enforce`).
    pub schemas_enforced: bool,
}

/// The security scheme of the `X-API-Key` header.
const HEADER_KEY: &str = "ApiKey";
/// The security scheme of `?api_key=` (WebSocket handshakes only).
const QUERY_KEY: &str = "ApiKeyQuery";
/// The security scheme of `Authorization: Bearer <token>`.
const BEARER: &str = "Bearer";
/// The security scheme of `?token=` (WebSocket handshakes only).
const QUERY_TOKEN: &str = "TokenQuery";
/// What operation ids of the paths at the root end with.
const ALIAS_SUFFIX: &str = "_unversioned";

/// `document` fitted to `settings`.
pub(crate) fn tailor(mut document: OpenApi, settings: &Settings) -> OpenApi {
    settings.version.clone_into(&mut document.info.version);
    if !settings.metrics {
        document.paths.paths.remove(&format!("{PREFIX}/metrics"));
    }
    let mut keys = false;
    for entry in &OPERATIONS {
        let path = format!("{PREFIX}{}", entry.path);
        let Some(operation) = operation_mut(&mut document, &path, &entry.method) else {
            continue;
        };
        let key = entry
            .role()
            .is_some_and(|r| settings.key_needed.contains(&r));
        let token = entry.role().is_some() && settings.tokens;
        keys |= key;
        common_answers(operation);
        match entry.transport {
            Transport::Rest => {
                let mut schemes = Vec::new();
                if key {
                    schemes.push(requirement(HEADER_KEY));
                }
                if token {
                    schemes.push(requirement(BEARER));
                }
                if key || token {
                    operation.security = Some(schemes);
                    answer(operation, Documented::Unauthenticated);
                    answer(operation, Documented::Denied);
                }
                if entry.rate().is_some() {
                    answer(operation, Documented::RateLimited);
                }
            }
            // Streams and handshakes also take credentials in the query
            // (browsers cannot set headers on either).
            Transport::Stream => {
                if secure_with_query(operation, key, token) {
                    answer(operation, Documented::Unauthenticated);
                    answer(operation, Documented::Denied);
                }
            }
            Transport::WebSocket => {
                secure_with_query(operation, key, token);
                if settings.origins_restricted {
                    answer(operation, Documented::OriginNotAllowed);
                }
            }
        }
    }
    let components = document.components.get_or_insert_with(Components::new);
    if keys {
        let scheme = |value| SecurityScheme::ApiKey(value);
        components.security_schemes.insert(
            HEADER_KEY.to_owned(),
            scheme(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.security_schemes.insert(
            QUERY_KEY.to_owned(),
            scheme(ApiKey::Query(ApiKeyValue::new("api_key"))),
        );
    }
    if settings.tokens {
        components.security_schemes.insert(
            BEARER.to_owned(),
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.security_schemes.insert(
            QUERY_TOKEN.to_owned(),
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("token"))),
        );
    }
    limit_payload(components, settings);
    describe_types(components, settings);
    if settings.schemas_enforced {
        bind_payloads_to_types(&mut document, settings);
    }
    loose_batch_items(&mut document);
    serve_at_root(&mut document);
    set_websockets_apart(&mut document);
    document
}

/// Declares the header and query credentials `operation` takes (`key`,
/// `token`); whether it takes any.
fn secure_with_query(operation: &mut Operation, key: bool, token: bool) -> bool {
    let mut schemes = Vec::new();
    if key {
        schemes.extend([requirement(HEADER_KEY), requirement(QUERY_KEY)]);
    }
    if token {
        schemes.extend([requirement(BEARER), requirement(QUERY_TOKEN)]);
    }
    if key || token {
        operation.security = Some(schemes);
    }
    key || token
}

/// The extension that holds the WebSocket endpoints.
pub(crate) const WEBSOCKETS: &str = "x-websockets";
/// The extension that holds the endpoints whose answer does not end
/// (Server-Sent Events).
pub(crate) const STREAMS: &str = "x-streams";

/// Moves the WebSocket handshakes out of `paths` into [`WEBSOCKETS`]
/// (same shape): what follows a 101 is no HTTP exchange, and tools that
/// send every operation in `paths` as plain requests (schemathesis, client
/// generators) can do nothing right with one.
fn set_websockets_apart(document: &mut OpenApi) {
    set_apart(document, WEBSOCKETS, |path| path.contains("/ws/"));
    // A request that is answered a stream that does not end is no exchange
    // a tool that sends every operation can wait for either.
    set_apart(document, STREAMS, |path| path.ends_with("/stream"));
}

/// Moves the paths `which` selects into the extension `extension`.
fn set_apart(document: &mut OpenApi, extension: &str, which: impl Fn(&str) -> bool) {
    let handshakes: Vec<String> = document
        .paths
        .paths
        .keys()
        .filter(|path| which(path))
        .cloned()
        .collect();
    let moved: serde_json::Map<String, serde_json::Value> = handshakes
        .into_iter()
        .filter_map(|path| {
            let item = document.paths.paths.remove(&path)?;
            Some((path, serde_json::to_value(item).ok()?))
        })
        .collect();
    document
        .extensions
        .get_or_insert_with(Extensions::default)
        .insert(extension.to_owned(), serde_json::Value::Object(moved));
}

/// What any request may be answered, whatever the route.
fn common_answers(operation: &mut Operation) {
    for common in [
        Documented::MalformedHeader,
        Documented::MethodNotAllowed,
        Documented::QueryTooLong,
        Documented::HeadersTooLarge,
        Documented::ShuttingDown,
    ] {
        answer(operation, common);
    }
}

/// A response header the document describes.
struct HeaderDoc {
    name: &'static str,
    description: &'static str,
    kind: Type,
}

/// `Retry-After`, in seconds.
const RETRY_AFTER: HeaderDoc = HeaderDoc {
    name: "Retry-After",
    description: "Seconds to wait before trying again",
    kind: Type::Integer,
};

/// `Allow`, on a 405.
const ALLOW: HeaderDoc = HeaderDoc {
    name: "Allow",
    description: "The methods this path serves",
    kind: Type::String,
};

fn operation_mut<'a>(
    document: &'a mut OpenApi,
    path: &str,
    method: &Method,
) -> Option<&'a mut Operation> {
    let item = document.paths.paths.get_mut(path)?;
    match *method {
        Method::GET => item.get.as_mut(),
        Method::POST => item.post.as_mut(),
        Method::DELETE => item.delete.as_mut(),
        // The table serves no other method.
        _ => None,
    }
}

fn requirement(scheme: &str) -> SecurityRequirement {
    SecurityRequirement::new(scheme, Vec::<String>::new())
}

/// Adds a `{"detail": ...}` answer as the error table documents it, or,
/// when the operation already documents that status for another reason,
/// adds this one to it.
fn answer(operation: &mut Operation, which: Documented) {
    let AnswerDoc {
        status,
        why,
        retry_after,
    } = which.doc();
    let why = why.as_str();
    let mut headers = Vec::new();
    if retry_after {
        headers.push(&RETRY_AFTER);
    }
    if which == Documented::MethodNotAllowed {
        headers.push(&ALLOW);
    }
    match operation.responses.responses.entry(status.to_string()) {
        Entry::Occupied(mut existing) => {
            if let RefOr::T(response) = existing.get_mut() {
                response.description = format!("{}; or: {why}", response.description);
                for h in &headers {
                    response
                        .headers
                        .entry(h.name.to_owned())
                        .or_insert_with(|| header(h));
                }
            }
        }
        Entry::Vacant(slot) => {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Detail")))
                .build();
            let response = headers.iter().fold(
                ResponseBuilder::new()
                    .description(why)
                    .content("application/json", body),
                |response, h| response.header(h.name, header(h)),
            );
            slot.insert(RefOr::T(response.build()));
        }
    }
}

fn header(doc: &HeaderDoc) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(doc.kind.clone()));
    header.description = Some(doc.description.to_owned());
    header
}

/// Writes this node's payload limits into the publish body's `payload` schema.
fn limit_payload(components: &mut Components, settings: &Settings) {
    let Some(RefOr::T(Schema::Object(event))) = components.schemas.get_mut("NewEvent") else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(payload))) = event.properties.get_mut("payload") {
        payload.max_properties = Some(settings.max_payload_keys);
        payload.description = Some(format!(
            "A JSON object (not null; `{{}}` when absent): at most {} top-level keys \
             (MAX_PAYLOAD_KEYS), {} bytes serialized compactly (MAX_PAYLOAD_BYTES) and \
             {} levels of nesting; over a limit: 422",
            settings.max_payload_keys,
            settings.max_payload_bytes,
            ep_domain::MAX_PAYLOAD_DEPTH
        ));
    }
}

/// The registry as this node has it: the `EventType` enum, the
/// `EventTypes` object, and each payload schema as `Payload_<type>`.
fn describe_types(components: &mut Components, settings: &Settings) {
    let names: Vec<&str> = settings
        .event_types
        .iter()
        .map(|(n, _, _)| n.as_str())
        .collect();
    if let Some(RefOr::T(Schema::Object(t))) = components.schemas.get_mut("EventType") {
        t.enum_values = Some(names.iter().map(|n| serde_json::Value::from(*n)).collect());
    }
    let text = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .build()
    };
    let mut registry = ObjectBuilder::new().description(Some(
        "Every registered event type, mapped to its description (with `schemas=true`, to \
         `{\"description\", \"schema\"}`)",
    ));
    for (name, description, _) in &settings.event_types {
        // A description, or with `schemas=true` the description and schema.
        let either = serde_json::json!({
            "description": description,
            "anyOf": [
                {"type": "string"},
                {"type": "object", "required": ["description", "schema"],
                 "properties": {"description": {"type": "string"},
                                "schema": {"type": ["object", "boolean", "null"]}}}
            ]
        });
        let property = serde_json::from_value::<RefOr<Schema>>(either)
            .unwrap_or_else(|_| text(description).into());
        registry = registry.property(name, property);
        if !settings.unlisted.contains(name) {
            registry = registry.required(name);
        }
    }
    components.schemas.insert(
        "EventTypes".to_owned(),
        RefOr::T(Schema::Object(registry.build())),
    );
    for (name, _, schema) in &settings.event_types {
        // A JSON Schema that OpenAPI's schema object cannot hold is left out
        // of the document (`GET /event-types?schemas=true` still serves it).
        if let Some(schema) = schema
            .as_ref()
            .and_then(|s| serde_json::from_value::<RefOr<Schema>>(s.clone()).ok())
        {
            components.schemas.insert(format!("Payload_{name}"), schema);
        }
    }
}

/// With schemas enforced, what a publish may carry depends on its type: the
/// publish bodies are `PublishedEvent`, a `NewEvent` whose payload follows
/// the schema of its `event_type` (one branch per type).
fn bind_payloads_to_types(document: &mut OpenApi, settings: &Settings) {
    use utoipa::openapi::schema::{AllOfBuilder, OneOfBuilder};
    let documented = |name: &str| {
        document
            .components
            .as_ref()
            .is_some_and(|c| c.schemas.contains_key(&format!("Payload_{name}")))
    };
    let mut branches = OneOfBuilder::new();
    for (name, _, schema) in &settings.event_types {
        let mut branch = ObjectBuilder::new().schema_type(Type::Object).property(
            "event_type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([name.as_str()])),
        );
        if schema.is_some() && documented(name) {
            branch = branch.property("payload", Ref::from_schema_name(format!("Payload_{name}")));
            // An absent payload is `{}`: with keys required, it must be sent.
            let requires_keys = schema
                .as_ref()
                .and_then(|s| s.get("required"))
                .and_then(serde_json::Value::as_array)
                .is_some_and(|keys| !keys.is_empty());
            if requires_keys {
                branch = branch.required("payload");
            }
        }
        branches = branches.item(branch);
    }
    let published: RefOr<Schema> = AllOfBuilder::new()
        .item(Ref::from_schema_name("NewEvent"))
        .item(branches)
        .description(Some(
            "An event to publish: its payload follows its type's schema \
             (SCHEMA_MODE=enforce; see GET /event-types?schemas=true)",
        ))
        .into();
    if let Some(components) = document.components.as_mut() {
        components
            .schemas
            .insert("PublishedEvent".to_owned(), published);
    }
    set_body_schema(
        document,
        "/events",
        Ref::from_schema_name("PublishedEvent").into(),
    );
}

/// Sets the JSON request body schema of `POST {PREFIX}{path}`.
fn set_body_schema(document: &mut OpenApi, path: &str, schema: RefOr<Schema>) {
    if let Some(content) = operation_mut(document, &format!("{PREFIX}{path}"), &Method::POST)
        .and_then(|operation| operation.request_body.as_mut())
        .and_then(|body| body.content.get_mut("application/json"))
    {
        content.schema = Some(schema);
    }
}

/// A batch's items are answered one by one (an item that breaks a rule
/// gets its own error result, the batch is still 200): any JSON value.
fn loose_batch_items(document: &mut OpenApi) {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType};
    let any = ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "An event as for POST /events (see PublishedEvent); anything else gets an error result of its own",
        ));
    set_body_schema(
        document,
        "/events/batch",
        ArrayBuilder::new().items(any).into(),
    );
}

/// Every `/api/v1/X` path is also served as `/X`: the document says so.
fn serve_at_root(document: &mut OpenApi) {
    let aliases: Vec<(String, PathItem)> = document
        .paths
        .paths
        .iter()
        .filter_map(|(path, item)| {
            let root = path.strip_prefix(PREFIX)?;
            let mut item = item.clone();
            for operation in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                if let Some(id) = &mut operation.operation_id {
                    id.push_str(ALIAS_SUFFIX);
                }
                // Served for the old service's clients; a client generated
                // from the document should use the `/api/v1` operation.
                operation.deprecated = Some(utoipa::openapi::Deprecated::True);
            }
            Some((root.to_owned(), item))
        })
        .collect();
    document.paths.paths.extend(aliases);
}
