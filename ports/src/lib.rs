//! The ports of the event pipeline: the model types that cross the boundary and
//! the traits (`EventStore`, `JobState`, `Broadcaster`, `Authenticator`,
//! `PayloadSchema`, `EventExport`) that adapters implement and the domain drives.
//!
//! Nothing here knows about HTTP, SQL or any concrete technology; adapter errors
//! are translated into the error enums defined here before they cross a port.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod appended;
mod auth;
mod broadcaster;
mod deletion;
mod event;
mod event_type;
mod export;
mod filter;
mod job_state;
mod payload;
mod payload_schema;
mod query;
mod rate;
mod scope;
mod stats;
mod store;
mod timestamp;

pub use appended::Appended;
pub use auth::{AuthError, Authenticator, Credential, Identity, OwnLimits, Principal, Role};
pub use broadcaster::{BroadcastError, Broadcaster, EventBatch, EventFeed, FeedItem};
pub use deletion::Deletion;
pub use event::{Event, EventId, IdempotencyKey, NewEvent};
pub use event_type::{BadEventTypeName, EventType};
pub use export::{EventExport, ExportError, Exported};
pub use filter::{EventFilter, PayloadFilter};
pub use job_state::JobState;
pub use payload::Payload;
pub use payload_schema::{BadSchema, PayloadSchema, SchemaViolation};
pub use query::EventQuery;
pub use rate::{BadRateLimit, RateLimit};
pub use scope::{Scope, ScopeField};
pub use stats::{Stats, TypeStats};
pub use store::{EventStore, StoreError};
pub use timestamp::Timestamp;

#[cfg(any(test, feature = "mocks"))]
pub use auth::MockAuthenticator;
#[cfg(any(test, feature = "mocks"))]
pub use broadcaster::MockBroadcaster;
#[cfg(any(test, feature = "mocks"))]
pub use export::MockEventExport;
#[cfg(any(test, feature = "mocks"))]
pub use job_state::MockJobState;
#[cfg(any(test, feature = "mocks"))]
pub use payload_schema::MockPayloadSchema;
#[cfg(any(test, feature = "mocks"))]
pub use store::MockEventStore;
