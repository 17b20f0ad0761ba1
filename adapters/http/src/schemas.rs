//! The shapes of the bodies and parameters the API takes and answers, as
//! OpenAPI schemas. Types the adapter serializes itself derive theirs where
//! they are defined (`routes::health`, `routes::stats`); those below stand
//! for the domain's and the ports' types, which know nothing of OpenAPI.
//! Tests serialize the real values and check them against these.

use std::borrow::Cow;

use ep_ports::EventType;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaFormat, SchemaType};
use utoipa::openapi::{KnownFormat, RefOr, Required, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// One of the registered event types (the schema lists them all, from the
/// registry itself).
pub(crate) struct EventTypeName;

impl PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some("A registered event type (see GET /event-types)"))
            .enum_values(Some(EventType::BUILT_IN.map(EventType::as_str)))
            .into()
    }
}

impl ToSchema for EventTypeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventType")
    }
}

/// The registry: each type's name mapped to its description.
pub(crate) struct Registry;

impl PartialSchema for Registry {
    fn schema() -> RefOr<Schema> {
        let text = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
        // The built-in types; the document lists the node's own registry.
        EventType::BUILT_IN
            .iter()
            .fold(ObjectBuilder::new(), |object, t| {
                object
                    .property(t.as_str(), text().description(t.built_in_description()))
                    .required(t.as_str())
            })
            .description(Some(
                "Every registered event type, mapped to its description",
            ))
            .into()
    }
}

impl ToSchema for Registry {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventTypes")
    }
}

/// An instant as `since` and `before` take it: RFC 3339, or a date, or a
/// date and time without an offset (taken as UTC).
pub(crate) struct Instant;

impl PartialSchema for Instant {
    fn schema() -> RefOr<Schema> {
        let string = |format| {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        AnyOfBuilder::new()
            .item(string(KnownFormat::DateTime))
            .item(string(KnownFormat::Date))
            .description(Some(
                "An ISO 8601 instant between years 0000 and 9999: RFC 3339 (`Z` or an \
                 offset such as `+02:00`), a date (`2026-11-27`), or a date and time \
                 without an offset (taken as UTC). Unparseable: 400; out of range: 422.",
            ))
            .into()
    }
}

impl ToSchema for Instant {}

/// The body of a publish (and of each `/ws/publish` message).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct NewEvent {
    event_type: EventTypeName,
    /// Who publishes it.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9_.-]+$")]
    source: String,
    /// The learning session it belongs to.
    #[schema(max_length = 200)]
    session_id: Option<String>,
    /// The user it concerns.
    #[schema(max_length = 200)]
    user_id: Option<String>,
    /// A JSON object (not `null`); `{}` when absent. Its limits are this
    /// node's, written in when the document is made.
    #[schema(value_type = Object, required = false, default = json!({}))]
    payload: Option<serde_json::Value>,
    /// When it happened, by the producer's clock (ISO 8601); at most
    /// MAX_CLOCK_SKEW_SECONDS (300) ahead of the service's clock, else 422.
    #[schema(value_type = Option<Instant>)]
    occurred_at: Option<String>,
    /// A key of the client's (1 to 200 characters): a publish repeated with
    /// it and the same content within IDEMPOTENCY_WINDOW_SECONDS answers the
    /// first event (200) and stores nothing; other content is 409. The
    /// `Idempotency-Key` header, when sent, wins.
    #[schema(min_length = 1, max_length = 200)]
    idempotency_key: Option<String>,
}

/// An event as stored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Event {
    /// Unique, time-ordered id.
    #[schema(example = "evt_01a21cddbd3075c5b6d0cf99fc052dc6")]
    id: String,
    event_type: EventTypeName,
    /// Who published it.
    source: String,
    /// The learning session it belongs to, if any.
    #[schema(required = true)]
    session_id: Option<String>,
    /// The user it concerns, if any.
    #[schema(required = true)]
    user_id: Option<String>,
    /// The JSON object payload, as published.
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    /// When the service received it (UTC, microseconds).
    #[schema(format = DateTime, example = "2026-11-27T09:58:41.270000Z")]
    timestamp: String,
    /// When it happened, by the producer's clock (UTC, microseconds):
    /// present only when the producer gave it.
    #[schema(format = DateTime, example = "2026-11-27T09:58:40.912000Z")]
    occurred_at: Option<String>,
    /// The store's sequence number: strictly increasing in commit order and
    /// never reused; subscribers resume from it.
    #[schema(minimum = 1)]
    seq: u64,
}

/// The publish router's state.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Router {
    /// Confirmed live subscriptions on this node.
    active_subscribers: u64,
    /// Events accepted but not yet committed.
    queue_size: u64,
}

/// The figures of one event type.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TypeStats {
    event_type: EventTypeName,
    /// How many are stored.
    count: u64,
    /// The timestamp of the newest stored one.
    #[schema(format = DateTime)]
    last_seen: String,
}

/// An error for people (and for programs, by status code).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Detail {
    /// What went wrong.
    detail: String,
}

/// One violation of the rules.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct FieldError {
    /// Where: `["body", "source"]`, `["query", "limit"]`.
    loc: Vec<String>,
    /// What is wrong, for people.
    msg: String,
    /// What is wrong, for programs (`string_too_long`, `missing`, ...).
    #[schema(rename = "type")]
    kind: String,
}

/// One item's result in a batch publish.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct BatchResult {
    /// `ok` (stored) or `error` (refused; nothing of it stored).
    status: String,
    /// The stored event (`ok`).
    event: Option<Event>,
    /// Why it was refused (`error`): every violation.
    detail: Option<Vec<FieldError>>,
    /// Seconds to wait (`error` for the rate limit).
    retry_after: Option<u64>,
}

/// A request that broke the rules: every violation.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ValidationError {
    detail: Vec<FieldError>,
}

/// The answer to a delete.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Deleted {
    /// How many events were deleted.
    deleted: u64,
}

/// The filters of `GET /events`, combined with AND; newest first.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ListQuery {
    /// Only events of this type (an unknown type matches nothing).
    #[param(max_length = 50)]
    event_type: Option<String>,
    /// Only events of this session.
    #[param(max_length = 200)]
    session_id: Option<String>,
    /// Only events of this user.
    #[param(max_length = 200)]
    user_id: Option<String>,
    /// How many, at most.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
    /// Only events after this instant (exclusive).
    #[param(value_type = Option<Instant>)]
    since: Option<String>,
    /// Only events that happened (`occurred_at`) at or after this instant.
    #[param(value_type = Option<Instant>)]
    occurred_since: Option<String>,
    /// Only events that happened (`occurred_at`) before this instant.
    #[param(value_type = Option<Instant>)]
    occurred_before: Option<String>,
}

/// The filter of `DELETE /events`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct DeleteQuery {
    /// Delete only the events before this instant; without it, every event.
    #[param(value_type = Option<Instant>)]
    before: Option<String>,
}

/// The request of a WebSocket handshake (RFC 6455): its headers, and the
/// key for clients that cannot set headers.
pub(crate) struct Handshake;

/// A header whose comma-separated list holds `token` (any case), in the
/// printable ASCII a header value may hold.
fn list_holding(token: &str) -> String {
    let any_case: String = token
        .chars()
        .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
        .collect();
    format!("^([\\t -~]*,)?[ \\t]*{any_case}[ \\t]*(,[\\t -~]*)?$")
}

impl IntoParams for Handshake {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let string = |pattern: String| {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .pattern(Some(pattern))
        };
        let header = |name: &str, schema: ObjectBuilder, why: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(why))
                .schema(Some(schema))
                .build()
        };
        vec![
            ParameterBuilder::new()
                .name("api_key")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "The API key, for clients that cannot send `X-API-Key`",
                ))
                .schema(Some(
                    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)),
                ))
                .build(),
            header(
                "Upgrade",
                string(list_holding("websocket")),
                "Names `websocket`",
            ),
            header(
                "Connection",
                string(list_holding("upgrade")),
                "Names `Upgrade`",
            ),
            header(
                "Sec-WebSocket-Version",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some(["13"])),
                "The protocol's version",
            ),
            header(
                "Sec-WebSocket-Key",
                string("^[A-Za-z0-9+/]{22}==$".to_owned()),
                "16 random bytes in base64",
            ),
        ]
    }
}
