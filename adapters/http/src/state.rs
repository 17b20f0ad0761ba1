//! What every handler needs: the domain service, the authenticator, settings.

use std::sync::Arc;

use ep_domain::EventService;
use ep_ports::Authenticator;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (413 above it). Sits well
    /// above the payload limit so an over-large payload is a 422 that says why.
    pub max_body_bytes: usize,
    /// The version reported by `/health`.
    pub version: &'static str,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Shared state of the handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Arc<EventService>,
    /// Who may do what.
    pub auth: Arc<dyn Authenticator>,
    /// HTTP settings.
    pub config: Arc<HttpConfig>,
}
