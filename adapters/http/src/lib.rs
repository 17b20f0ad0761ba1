//! The REST adapter: warp routes that authenticate, parse and hand requests to
//! the domain's `EventService`, and turn every outcome into the contract's
//! status codes and JSON bodies.
//!
//! Every `/api/v1/X` route is also served as `/X`. Every failure, unknown
//! routes and wrong methods included, answers JSON with a `detail`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api_error;
mod body;
mod headers;
mod reply;
mod routes;
mod state;

pub use routes::routes;
pub use state::{AppState, HttpConfig};
