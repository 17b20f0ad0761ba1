//! The driving adapter: warp routes (REST and WebSocket) that authenticate,
//! parse and hand requests to the domain, and turn every outcome into the
//! contract's status codes, JSON bodies, replies and close codes.
//!
//! Every `/api/v1/X` route is also served as `/X`. Every failure, unknown
//! routes and wrong methods included, answers JSON with a `detail`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admission;
mod api_error;
mod body;
mod caliper;
mod client;
mod cors;
mod head;
mod headers;
mod limits;
mod metrics;
mod refusals;
mod reply;
mod routes;
mod schemas;
mod served;
mod server;
mod state;
mod table;
mod ws;

pub use caliper::DEFAULT_STRIPPED as CALIPER_DEFAULT_STRIPPED;
pub use client::{IpBlock, TrustedProxies};
pub use cors::CorsPolicy;
pub use metrics::describe as describe_metrics;
pub use refusals::RefusalLog;
pub use routes::routes;
pub use server::{serve, HYPER_MAX_HEADERS, HYPER_MAX_HEAD_BYTES};
pub use state::{AppState, HttpConfig, MetricsText, Shared, WsShared};
pub use ws::{event_frame, ConnectionLimiter, WsSessions};

/// The fan-out hub as this adapter uses it: events encoded once as JSON text frames.
pub type WsHub = ep_domain::Hub<tokio_tungstenite::tungstenite::Utf8Bytes>;
