//! Configuration: built-in defaults < an optional TOML file (`CONFIG_FILE`) <
//! environment variables, derived with serde through the `config` crate.
//! Every value is checked at start-up; a bad one stops the service with a
//! message naming the variable and the form it accepts.
//!
//! The defaults live in one place: [`Config::default`], which takes each
//! from the component that owns it (the domain's limits, the hub, the HTTP
//! layer, the rate limits, the PostgreSQL pool).

mod error;
mod forms;
mod kinds;
mod load;
mod redact;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

pub use ep_domain::RateLimit;
use ep_domain::{HubConfig, Limits, RateLimitConfig, BUS_BUDGET};
use ep_http::{HttpConfig, TrustedProxies};
use serde::{Deserialize, Serialize};

pub use error::ConfigError;
use forms::{
    display, seconds, setting, BusPrefix, Count, FilePath, Host, Http, LogLevel, Names, Nats,
    Optional, OptionalHttpUrl, Origins, Port, Redis, Seconds, Switch, Threads, Url, Verbatim,
};
pub use kinds::{BroadcasterKind, LogFormat, SchemaModeKind, StoreKind, Synchronous};
pub use redact::redact_url;

/// Every setting of the service. Each field is read from the variable of
/// its name in capitals (`max_queue_size` from `MAX_QUEUE_SIZE`), or from
/// the same key in `CONFIG_FILE`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// `HOST`: address to listen on.
    #[serde(deserialize_with = "setting::<_, Host, _>")]
    pub host: IpAddr,
    /// `PORT`: port to listen on (0 picks a free one).
    #[serde(deserialize_with = "setting::<_, Port, _>")]
    pub port: u16,
    /// `DATABASE_PATH`: the SQLite file.
    #[serde(deserialize_with = "setting::<_, FilePath, _>")]
    pub database_path: PathBuf,
    /// `EVENT_STORE`: `sqlite`, `memory` or `postgres`.
    #[serde(deserialize_with = "setting::<_, StoreKind, _>")]
    pub event_store: StoreKind,
    /// `DATABASE_URL`: the PostgreSQL database (`EVENT_STORE=postgres`).
    #[serde(
        deserialize_with = "setting::<_, Optional, _>",
        serialize_with = "redact::optional_url"
    )]
    pub database_url: Option<String>,
    /// `DATABASE_MAX_CONNECTIONS`: PostgreSQL connections this node holds.
    #[serde(deserialize_with = "setting::<_, Count<2>, _>")]
    pub database_max_connections: usize,
    /// `BROADCASTER`: `local`, `nats` or `redis`.
    #[serde(deserialize_with = "setting::<_, BroadcasterKind, _>")]
    pub broadcaster: BroadcasterKind,
    /// `NATS_URL`.
    #[serde(
        deserialize_with = "setting::<_, Url<Nats>, _>",
        serialize_with = "redact::url"
    )]
    pub nats_url: String,
    /// `REDIS_URL`.
    #[serde(
        deserialize_with = "setting::<_, Url<Redis>, _>",
        serialize_with = "redact::url"
    )]
    pub redis_url: String,
    /// `BUS_PREFIX`: prefix of the NATS subject or Redis channel; the nodes
    /// of one deployment share it.
    #[serde(deserialize_with = "setting::<_, BusPrefix, _>")]
    pub bus_prefix: String,
    /// `STARTUP_TIMEOUT_SECONDS`: how long a dependency that is down at
    /// start-up (PostgreSQL, NATS, Redis) is retried before start-up fails.
    #[serde(
        rename = "startup_timeout_seconds",
        deserialize_with = "setting::<_, Seconds<0>, _>",
        serialize_with = "seconds"
    )]
    pub startup_timeout: Duration,
    /// `METRICS`: whether `/metrics` is served (and metrics recorded).
    #[serde(deserialize_with = "setting::<_, Switch, _>")]
    pub metrics: bool,
    /// `DATABASE_SYNCHRONOUS`: `normal` (survives a process crash) or `full`
    /// (survives power loss too, slower).
    #[serde(deserialize_with = "setting::<_, Synchronous, _>")]
    pub database_synchronous: Synchronous,
    /// `CORS_ORIGINS`: allowed origins, `*` for any.
    #[serde(
        deserialize_with = "setting::<_, Origins, _>",
        serialize_with = "forms::comma_list"
    )]
    pub cors_origins: Vec<String>,
    /// `REQUIRE_AUTH`.
    #[serde(deserialize_with = "setting::<_, Switch, _>")]
    pub require_auth: bool,
    /// `API_KEY` (never printed).
    #[serde(
        deserialize_with = "setting::<_, Verbatim, _>",
        serialize_with = "redact::key"
    )]
    pub api_key: String,
    /// `ADMIN_API_KEY` (never printed): when set, only it may delete.
    #[serde(
        deserialize_with = "setting::<_, Optional, _>",
        serialize_with = "redact::optional_key"
    )]
    pub admin_api_key: Option<String>,
    /// `API_KEYS_FILE`: named keys (TOML), reloaded on SIGHUP.
    #[serde(deserialize_with = "setting::<_, Optional, _>")]
    pub api_keys_file: Option<String>,
    /// `JWT_HS256_SECRET` (never printed): at least 32 bytes.
    #[serde(
        deserialize_with = "setting::<_, Optional, _>",
        serialize_with = "redact::optional_key"
    )]
    pub jwt_hs256_secret: Option<String>,
    /// `JWT_PUBLIC_KEYS`: a PEM or JWKS file of public keys.
    #[serde(deserialize_with = "setting::<_, Optional, _>")]
    pub jwt_public_keys: Option<String>,
    /// `JWT_ISSUER`: the `iss` tokens must carry, when set.
    #[serde(deserialize_with = "setting::<_, Optional, _>")]
    pub jwt_issuer: Option<String>,
    /// `JWT_AUDIENCE`: the `aud` tokens must carry, when set.
    #[serde(deserialize_with = "setting::<_, Optional, _>")]
    pub jwt_audience: Option<String>,
    /// `JWT_LEEWAY_SECONDS`: clock skew allowed on `exp` and `nbf`.
    #[serde(
        rename = "jwt_leeway_seconds",
        deserialize_with = "setting::<_, Seconds<0>, _>",
        serialize_with = "seconds"
    )]
    pub jwt_leeway: Duration,
    /// `TRUSTED_PROXIES`: addresses or CIDR blocks whose `X-Forwarded-For`
    /// and `X-Forwarded-Proto` are believed. Empty: none.
    #[serde(
        deserialize_with = "setting::<_, TrustedProxies, _>",
        serialize_with = "display"
    )]
    pub trusted_proxies: TrustedProxies,
    /// `LOG_LEVEL`, as a tracing filter directive (`debug`, `info`, ...).
    #[serde(deserialize_with = "setting::<_, LogLevel, _>")]
    pub log_level: &'static str,
    /// `LOG_FORMAT`.
    #[serde(deserialize_with = "setting::<_, LogFormat, _>")]
    pub log_format: LogFormat,
    /// `EVENT_TYPES_FILE`: event types declared beside the 15 built-ins
    /// (JSON, or TOML for a `.toml` name), with optional payload schemas.
    #[serde(deserialize_with = "setting::<_, Optional, _>")]
    pub event_types_file: Option<String>,
    /// `SCHEMA_MODE`: `enforce`, `warn` or `off`.
    #[serde(deserialize_with = "setting::<_, SchemaModeKind, _>")]
    pub schema_mode: SchemaModeKind,
    /// `MAX_QUEUE_SIZE`: events accepted but not yet committed.
    #[serde(deserialize_with = "setting::<_, Count<1>, _>")]
    pub max_queue_size: usize,
    /// `MAX_SUBSCRIBERS`.
    #[serde(deserialize_with = "setting::<_, Count<0>, _>")]
    pub max_subscribers: usize,
    /// `MAX_WS_MESSAGE_BYTES`.
    #[serde(deserialize_with = "setting::<_, Count<1>, _>")]
    pub max_ws_message_bytes: usize,
    /// `MAX_WS_CONNECTIONS_PER_IP`.
    #[serde(deserialize_with = "setting::<_, Count<0>, _>")]
    pub max_ws_connections_per_ip: usize,
    /// `WS_FILTER_TIMEOUT_SECONDS`: time a subscriber has to send its filter.
    #[serde(
        rename = "ws_filter_timeout_seconds",
        deserialize_with = "setting::<_, Seconds<1>, _>",
        serialize_with = "seconds"
    )]
    pub ws_filter_timeout: Duration,
    /// `WS_KEEPALIVE_SECONDS`: subscriber silence after which a keepalive is sent.
    #[serde(
        rename = "ws_keepalive_seconds",
        deserialize_with = "setting::<_, Seconds<1>, _>",
        serialize_with = "seconds"
    )]
    pub ws_keepalive: Duration,
    /// `WS_SUBSCRIBER_QUEUE`: events queued for one subscriber before it
    /// counts as slow and is closed with 4008.
    #[serde(deserialize_with = "setting::<_, Count<1>, _>")]
    pub ws_subscriber_queue: usize,
    /// `WS_DELIVERY_THREADS`: the threads that run WebSocket subscribers'
    /// connections (and write every delivery); `0` for half the cores, at
    /// least one. See [`Config::delivery_threads`].
    #[serde(deserialize_with = "setting::<_, Threads, _>")]
    pub ws_delivery_threads: usize,
    /// `MAX_PAYLOAD_KEYS`.
    #[serde(deserialize_with = "setting::<_, Count<0>, _>")]
    pub max_payload_keys: usize,
    /// `MAX_PAYLOAD_BYTES`.
    #[serde(deserialize_with = "setting::<_, Count<2>, _>")]
    pub max_payload_bytes: usize,
    /// `MAX_CLOCK_SKEW_SECONDS`: how far ahead of this node's clock an
    /// event's `occurred_at` may be.
    #[serde(
        rename = "max_clock_skew_seconds",
        deserialize_with = "setting::<_, Seconds<0>, _>",
        serialize_with = "seconds"
    )]
    pub max_clock_skew: Duration,
    /// `IDEMPOTENCY_WINDOW_SECONDS`: how long an idempotency key stands for
    /// the event first published with it.
    #[serde(
        rename = "idempotency_window_seconds",
        deserialize_with = "setting::<_, Seconds<1>, _>",
        serialize_with = "seconds"
    )]
    pub idempotency_window: Duration,
    /// `CALIPER_STRIP_FIELDS`: keys removed (at any depth) from a Caliper
    /// event before it is kept in a payload.
    #[serde(
        deserialize_with = "setting::<_, Names, _>",
        serialize_with = "forms::comma_list"
    )]
    pub caliper_strip_fields: Vec<String>,
    /// `XAPI_LRS_URL`: the xAPI Learning Record Store the connector sends
    /// statements to (unset: no connector).
    #[serde(
        deserialize_with = "setting::<_, OptionalHttpUrl, _>",
        serialize_with = "redact::optional_url"
    )]
    pub xapi_lrs_url: Option<String>,
    /// `XAPI_LRS_USERNAME`: basic auth user at the LRS.
    #[serde(deserialize_with = "setting::<_, Optional, _>")]
    pub xapi_lrs_username: Option<String>,
    /// `XAPI_LRS_PASSWORD` (never printed).
    #[serde(
        deserialize_with = "setting::<_, Optional, _>",
        serialize_with = "redact::optional_key"
    )]
    pub xapi_lrs_password: Option<String>,
    /// `XAPI_VERSION`: the `X-Experience-API-Version` sent.
    #[serde(deserialize_with = "setting::<_, Verbatim, _>")]
    pub xapi_version: String,
    /// `XAPI_ACCOUNT_HOMEPAGE`: the `homePage` of each actor's account (the
    /// system where the students' ids live), and the base of activity IRIs.
    #[serde(deserialize_with = "setting::<_, Url<Http>, _>")]
    pub xapi_account_homepage: String,
    /// `RETENTION`: how long each event type is kept
    /// (`timer_tick=7d,question_viewed=90d,*=365d`; units s, m, h, d); unset
    /// keeps everything.
    #[serde(deserialize_with = "setting::<_, Optional, _>")]
    pub retention: Option<String>,
    /// `RETENTION_INTERVAL_SECONDS`: how often retention runs.
    #[serde(
        rename = "retention_interval_seconds",
        deserialize_with = "setting::<_, Seconds<1>, _>",
        serialize_with = "seconds"
    )]
    pub retention_interval: Duration,
    /// `MAX_BATCH_EVENTS`: events one batch publish may carry.
    #[serde(deserialize_with = "setting::<_, Count<1>, _>")]
    pub max_batch_events: usize,
    /// `MAX_BODY_BYTES`: cap on a whole REST request body (413 above it).
    #[serde(deserialize_with = "setting::<_, Count<1024>, _>")]
    pub max_body_bytes: usize,
    /// `RATE_LIMIT_PUBLISH`.
    #[serde(
        deserialize_with = "setting::<_, RateLimit, _>",
        serialize_with = "display"
    )]
    pub rate_limit_publish: RateLimit,
    /// `RATE_LIMIT_QUERY`.
    #[serde(
        deserialize_with = "setting::<_, RateLimit, _>",
        serialize_with = "display"
    )]
    pub rate_limit_query: RateLimit,
    /// `RATE_LIMIT_ADMIN`.
    #[serde(
        deserialize_with = "setting::<_, RateLimit, _>",
        serialize_with = "display"
    )]
    pub rate_limit_admin: RateLimit,
    /// `RATE_LIMIT_WS_PUBLISH`: each `/ws/publish` message.
    #[serde(
        deserialize_with = "setting::<_, RateLimit, _>",
        serialize_with = "display"
    )]
    pub rate_limit_ws_publish: RateLimit,
}

impl Default for Config {
    /// The contract's defaults, each taken from the component that owns it.
    fn default() -> Self {
        let limits = Limits::default();
        let hub = HubConfig::default();
        let http = HttpConfig::default();
        let rates = RateLimitConfig::default();
        Self {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8001,
            database_path: PathBuf::from("data/events.db"),
            event_store: StoreKind::Sqlite,
            database_url: None,
            database_max_connections: ep_store_postgres::PostgresOptions::default().max_connections,
            broadcaster: BroadcasterKind::Local,
            nats_url: "nats://127.0.0.1:4222".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            bus_prefix: "event-pipeline".into(),
            startup_timeout: Duration::from_secs(30),
            metrics: true,
            database_synchronous: Synchronous::Normal,
            cors_origins: vec!["*".into()],
            require_auth: false,
            api_key: String::new(),
            admin_api_key: None,
            api_keys_file: None,
            jwt_hs256_secret: None,
            jwt_public_keys: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
            log_level: "info",
            log_format: LogFormat::Text,
            event_types_file: None,
            schema_mode: SchemaModeKind::Enforce,
            max_queue_size: limits.max_queue_size,
            max_subscribers: hub.max_subscribers,
            max_ws_message_bytes: http.max_ws_message_bytes,
            max_ws_connections_per_ip: 20,
            ws_filter_timeout: http.ws_filter_timeout,
            ws_keepalive: http.ws_keepalive,
            ws_subscriber_queue: hub.queue_len,
            ws_delivery_threads: 0,
            max_payload_keys: limits.max_payload_keys,
            max_payload_bytes: limits.max_payload_bytes,
            max_batch_events: limits.max_batch_events,
            caliper_strip_fields: ep_http::CALIPER_DEFAULT_STRIPPED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            xapi_lrs_url: None,
            xapi_lrs_username: None,
            xapi_lrs_password: None,
            xapi_version: "1.0.3".into(),
            xapi_account_homepage: "https://event-pipeline.invalid".into(),
            retention: None,
            retention_interval: Duration::from_secs(60),
            max_clock_skew: limits.max_clock_skew,
            idempotency_window: limits.idempotency_window,
            max_body_bytes: http.max_body_bytes,
            rate_limit_publish: rates.publish,
            rate_limit_query: rates.query,
            rate_limit_admin: rates.admin,
            rate_limit_ws_publish: rates.ws_publish,
        }
    }
}

impl std::fmt::Debug for Config {
    /// Every setting as `event-pipeline config` shows it: secrets masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.settings()).finish()
    }
}

impl Config {
    /// Every setting as `(VARIABLE, value)` in the form it is read in,
    /// sorted by variable; keys and passwords masked, unset ones empty.
    pub fn settings(&self) -> Vec<(String, String)> {
        let serde_json::Value::Object(fields) = serde_json::to_value(self).unwrap_or_default()
        else {
            return Vec::new();
        };
        fields
            .into_iter()
            .map(|(name, value)| {
                let text = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                (name.to_ascii_uppercase(), text)
            })
            .collect()
    }

    /// The rate limits.
    pub fn rate_limits(&self) -> RateLimitConfig {
        RateLimitConfig {
            publish: self.rate_limit_publish,
            query: self.rate_limit_query,
            admin: self.rate_limit_admin,
            ws_publish: self.rate_limit_ws_publish,
            ..RateLimitConfig::default()
        }
    }

    /// The threads subscribers' connections run on: `WS_DELIVERY_THREADS`,
    /// or when it is `0` half the cores, at least one. Fewer threads than
    /// cores leave the rest to accepting, publishing and storing; and
    /// subscribers of one event read one shared ring and frame, whose
    /// counts bounce between the cores of every thread that reads them (at
    /// 1,000 subscribers x 1,000 events/s on 2 cores, one thread took 15%
    /// less CPU than two and delivered sooner: see bench/README.md).
    pub fn delivery_threads(&self) -> usize {
        match self.ws_delivery_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |cores| cores.get() / 2)
                .max(1),
            n => n,
        }
    }

    /// The domain's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_payload_keys: self.max_payload_keys,
            max_payload_bytes: self.max_payload_bytes,
            max_queue_size: self.max_queue_size,
            max_batch_events: self.max_batch_events,
            max_clock_skew: self.max_clock_skew,
            idempotency_window: self.idempotency_window,
            // An in-process broadcaster's waiting paces the writer; a bus
            // across the network gets a budget.
            bus_budget: (self.broadcaster != BroadcasterKind::Local).then_some(BUS_BUDGET),
            ..Limits::default()
        }
    }

    /// Values that are fine alone but not together.
    fn check(self) -> Result<Self, ConfigError> {
        if self.event_store == StoreKind::Postgres && self.database_url.is_none() {
            return Err(ConfigError::Inconsistent(
                "EVENT_STORE=postgres needs DATABASE_URL (postgres://user@host:5432/db)",
            ));
        }
        if self.broadcaster != BroadcasterKind::Local && self.event_store != StoreKind::Postgres {
            return Err(ConfigError::Inconsistent(
                "BROADCASTER=nats or redis carries events between nodes that share one store: \
                 set EVENT_STORE=postgres (SQLite and memory are one process's own)",
            ));
        }
        let credentials = !self.api_key.is_empty()
            || self.admin_api_key.is_some()
            || self.api_keys_file.is_some()
            || self.jwt_hs256_secret.is_some()
            || self.jwt_public_keys.is_some();
        if self.require_auth && !credentials {
            return Err(ConfigError::Inconsistent(
                "REQUIRE_AUTH=true needs a credential to check: API_KEY, API_KEYS_FILE, \
                 JWT_HS256_SECRET or JWT_PUBLIC_KEYS (or set REQUIRE_AUTH=false)",
            ));
        }
        if self
            .jwt_hs256_secret
            .as_ref()
            .is_some_and(|s| s.len() < ep_auth_jwt::MIN_SECRET_BYTES)
        {
            return Err(ConfigError::Inconsistent(
                "JWT_HS256_SECRET must be at least 32 bytes",
            ));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests;
