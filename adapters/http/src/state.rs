//! What every handler needs: the domain service, the fan-out hub, the
//! authenticator, settings, and the WebSocket bookkeeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ep_domain::EventService;
use ep_ports::Authenticator;

use crate::client::TrustedProxies;
use crate::cors::CorsPolicy;
use crate::refusals::RefusalLog;
use crate::ws::{ConnectionLimiter, WsSessions};
use crate::WsHub;

/// Settings of the HTTP and WebSocket layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (413 above it). Sits well
    /// above the payload limit so an over-large payload is a 422 that says why.
    pub max_body_bytes: usize,
    /// Largest WebSocket message answered normally (`MAX_WS_MESSAGE_BYTES`).
    pub max_ws_message_bytes: usize,
    /// How long a subscriber has to send its filter (contract: 10 s).
    pub ws_filter_timeout: Duration,
    /// Silence from a subscriber after which it is sent a keepalive (contract: 30 s).
    pub ws_keepalive: Duration,
    /// Allowed CORS origins.
    pub cors: CorsPolicy,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Whether signed tokens are accepted (the document then declares the
    /// bearer scheme).
    pub tokens: bool,
    /// The version reported by `/health`.
    pub version: &'static str,
    /// The broadcaster's name when it is a network bus (`nats`, `redis`),
    /// reported by `/readiness`; `None` for the in-process one.
    pub broadcaster: Option<&'static str>,
    /// This node's name (host:port), which `/readiness` answers with.
    pub node: String,
    /// Keys removed, at any depth, from a Caliper event before it is kept
    /// in a payload (`CALIPER_STRIP_FIELDS`).
    pub caliper_stripped: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_ws_message_bytes: 1024 * 1024,
            ws_filter_timeout: Duration::from_secs(10),
            ws_keepalive: Duration::from_secs(30),
            cors: CorsPolicy::default(),
            trusted_proxies: TrustedProxies::default(),
            tokens: false,
            version: env!("CARGO_PKG_VERSION"),
            broadcaster: None,
            node: String::from("node"),
            caliper_stripped: crate::caliper::DEFAULT_STRIPPED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// WebSocket bookkeeping shared by every connection, and the draining flag.
#[derive(Debug)]
pub struct WsShared {
    /// Connections per client address.
    pub limiter: Arc<ConnectionLimiter>,
    /// Open sessions, for shutdown.
    pub sessions: Arc<WsSessions>,
    /// Set when shutdown begins: every new request is answered 503 with
    /// `Connection: close`, so no client is left guessing.
    pub draining: AtomicBool,
    /// Bumped by every reload of the keys: live connections then check
    /// their credential still holds.
    reloads: tokio::sync::watch::Sender<u64>,
    /// Where subscriber connections run: `None` for the runtime that
    /// accepted them (see [`WsShared::with_subscribers_on`]).
    subscribers_on: Option<tokio::runtime::Handle>,
}

impl WsShared {
    /// Bookkeeping allowing `max_per_ip` connections per address.
    pub fn new(max_per_ip: usize) -> Self {
        Self {
            limiter: Arc::new(ConnectionLimiter::new(max_per_ip)),
            sessions: Arc::new(WsSessions::default()),
            draining: AtomicBool::new(false),
            reloads: tokio::sync::watch::Sender::new(0),
            subscribers_on: None,
        }
    }

    /// Runs each `/ws/subscribe` connection's task on `runtime` rather than
    /// on the runtime that accepted it. A fan-out wakes every subscriber of
    /// an event at once; on a runtime of their own, those wake-ups do not
    /// queue ahead of a publisher's next message, nor of REST requests.
    #[must_use]
    pub fn with_subscribers_on(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.subscribers_on = Some(runtime);
        self
    }

    /// The runtime a subscriber connection runs on, if not the current one.
    pub(crate) fn subscribers_on(&self) -> Option<&tokio::runtime::Handle> {
        self.subscribers_on.as_ref()
    }

    /// Tells every live connection that the keys were reloaded: those whose
    /// key was removed or changed are closed with 4001.
    pub fn keys_reloaded(&self) {
        self.reloads.send_modify(|n| *n += 1);
    }

    /// A receiver of the reloads.
    pub(crate) fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    /// Starts refusing new requests (see `draining`).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// Everything the handlers share.
pub struct Shared {
    /// The use cases.
    pub service: Arc<EventService>,
    /// Live subscriptions.
    pub hub: WsHub,
    /// Who may do what.
    pub auth: Arc<dyn Authenticator>,
    /// HTTP settings.
    pub config: HttpConfig,
    /// WebSocket bookkeeping.
    pub ws: Arc<WsShared>,
    /// Refusals written to the log, rate-limited.
    pub refusals: RefusalLog,
    /// Renders every metric in the Prometheus text format; `None` when
    /// metrics are off.
    pub metrics: Option<MetricsText>,
}

/// Renders the metrics for `/metrics`.
pub type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// The handlers' handle on [`Shared`]: one `Arc`, because warp clones the
/// filters that hold it on every request (an `or` clones its second branch),
/// and every `Arc` inside it would be one more contended atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared state.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
