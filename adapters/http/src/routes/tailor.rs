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

use super::table::{Transport, OPERATIONS, PREFIX};

/// What the document depends on.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The roles an anonymous caller lacks: operations needing them need a key.
    pub key_needed: Vec<Role>,
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
}

/// The security scheme of the `X-API-Key` header.
const HEADER_KEY: &str = "ApiKey";
/// The security scheme of `?api_key=` (WebSocket handshakes only).
const QUERY_KEY: &str = "ApiKeyQuery";
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
        let key = entry.role.is_some_and(|r| settings.key_needed.contains(&r));
        keys |= key;
        common_answers(operation);
        match entry.transport {
            Transport::Rest => {
                if key {
                    operation.security = Some(vec![requirement(HEADER_KEY)]);
                    answer(operation, 401, "Missing or wrong API key", &[]);
                    answer(
                        operation,
                        403,
                        "This API key may not perform this operation",
                        &[],
                    );
                }
                if entry.rate.is_some() {
                    answer(
                        operation,
                        429,
                        "Over this client's rate limit; nothing was done",
                        &[RETRY_AFTER],
                    );
                }
            }
            Transport::WebSocket => {
                if key {
                    operation.security =
                        Some(vec![requirement(HEADER_KEY), requirement(QUERY_KEY)]);
                }
                if settings.origins_restricted {
                    answer(
                        operation,
                        403,
                        "The page's Origin is not in CORS_ORIGINS",
                        &[],
                    );
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
    limit_payload(components, settings);
    serve_at_root(&mut document);
    set_websockets_apart(&mut document);
    document
}

/// The extension that holds the WebSocket endpoints.
pub(crate) const WEBSOCKETS: &str = "x-websockets";

/// Moves the WebSocket handshakes out of `paths` into [`WEBSOCKETS`]
/// (same shape): what follows a 101 is no HTTP exchange, and tools that
/// send every operation in `paths` as plain requests (schemathesis, client
/// generators) can do nothing right with one.
fn set_websockets_apart(document: &mut OpenApi) {
    let handshakes: Vec<String> = document
        .paths
        .paths
        .keys()
        .filter(|path| path.contains("/ws/"))
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
        .insert(WEBSOCKETS.to_owned(), serde_json::Value::Object(moved));
}

/// What any request may be answered, whatever the route.
fn common_answers(operation: &mut Operation) {
    answer(
        operation,
        400,
        "An `Origin` or `X-Forwarded-Proto` header that is not text",
        &[],
    );
    answer(
        operation,
        405,
        "Another method on this path; `Allow` lists the methods it serves",
        &[ALLOW],
    );
    answer(
        operation,
        414,
        &format!("The query string is over {} bytes", super::MAX_QUERY_BYTES),
        &[],
    );
    answer(
        operation,
        431,
        &format!(
            "Over {} header fields or {} bytes of them",
            crate::head::MAX_HEADERS,
            crate::head::MAX_HEADER_BYTES
        ),
        &[],
    );
    answer(
        operation,
        503,
        "The service is shutting down",
        &[RETRY_AFTER],
    );
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

/// Adds a `{"detail": ...}` answer with `status`, or, when the operation
/// already documents that status for another reason, adds this one to it.
fn answer(operation: &mut Operation, status: u16, why: &str, headers: &[HeaderDoc]) {
    match operation.responses.responses.entry(status.to_string()) {
        Entry::Occupied(mut existing) => {
            if let RefOr::T(response) = existing.get_mut() {
                response.description = format!("{}; or: {why}", response.description);
                for h in headers {
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
            }
            Some((root.to_owned(), item))
        })
        .collect();
    document.paths.paths.extend(aliases);
}
