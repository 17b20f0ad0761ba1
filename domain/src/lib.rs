//! The domain of the event pipeline: what makes an event valid, how accepted
//! events reach the store (one bounded queue, one writer, group commit), and
//! how queries, stats and deletes are checked before they reach it.
//!
//! It knows the outside world only through the traits of `ep-ports`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access;
mod bus_gate;
mod commit_health;
mod deleter;
mod delivery;
mod errors;
mod event_types;
mod exporter;
mod field_errors;
mod gauge;
mod hub;
mod id_hash;
mod limits;
mod membership;
mod payload_check;
mod publish_request;
mod query_params;
mod rate_limit;
mod retention;
mod ring;
mod router;
mod sequencer;
mod service;
mod stamper;
mod subscribe_request;
mod subscription;
#[cfg(test)]
mod testing;
mod time_parse;
mod validation;
mod writer;

pub use access::{authorize, narrow, Caller, Denied, Operation, Refused};
pub use bus_gate::BUS_BUDGET;
pub use errors::{DeleteError, GetError, PublishError, QueryError, StatsError};
pub use event_types::{EventTypes, SchemaMode, TypeDeclaration, MAX_SCHEMA_VIOLATIONS};
pub use exporter::ExportReport;
pub use field_errors::{FieldError, ValidationErrors};
pub use gauge::SubscriberGauge;
pub use hub::{AtCapacity, Encoder, Hub, HubConfig};
pub use limits::{
    Limits, DEFAULT_QUERY_LIMIT, MAX_EVENT_TYPE_FILTER_CHARS, MAX_ID_CHARS, MAX_QUERY_LIMIT,
    MAX_SOURCE_CHARS,
};
pub use payload_check::MAX_PAYLOAD_DEPTH;
pub use publish_request::PublishRequest;
pub use query_params::{CheckedQuery, QueryParams};
pub use rate_limit::{
    BadRateLimit, ClientRateLimits, RateClass, RateKey, RateLimit, RateLimitConfig, RateLimited,
};
pub use retention::{BadRetention, RetentionPolicy, RetentionReport, RETENTION_JOB};
pub use router::{EventRouter, RouterStatus};
pub use service::{EventService, Readiness, StatsReport};
pub use subscribe_request::{FilterError, Resume, SubscribeRequest, MAX_FILTER_TYPES};
pub use subscription::{Next, Subscription};
pub use time_parse::{parse_instant, InstantError};
pub use writer::Published;
