//! Configuration: built-in defaults < an optional TOML file (`CONFIG_FILE`) <
//! environment variables, read with the `config` crate. Every value is
//! checked at start-up; a bad one stops the service with a message naming the
//! variable and the form it accepts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

pub use ep_domain::RateLimit;
use ep_domain::{Limits, RateLimitConfig};
use ep_http::TrustedProxies;

/// Which `EventStore` adapter to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite at `DATABASE_PATH` (the default).
    Sqlite,
    /// In memory: nothing survives a restart. For experiments.
    Memory,
    /// PostgreSQL at `DATABASE_URL`: one store several nodes share.
    Postgres,
}

/// Which `Broadcaster` adapter carries committed events to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcasterKind {
    /// Inside this process (the default): one node.
    Local,
    /// NATS at `NATS_URL`: every node sharing the store.
    Nats,
    /// Redis pub/sub at `REDIS_URL`: every node sharing the store.
    Redis,
}

impl BroadcasterKind {
    /// The name `/readiness` reports for a network bus; `None` for local.
    pub fn bus_name(self) -> Option<&'static str> {
        match self {
            BroadcasterKind::Local => None,
            BroadcasterKind::Nats => Some("nats"),
            BroadcasterKind::Redis => Some("redis"),
        }
    }
}

/// A URL with its password, if any, replaced by `***`: for logs and
/// messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            let masked = if credentials.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting of the service.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `HOST`: address to listen on.
    pub host: IpAddr,
    /// `PORT`: port to listen on (0 picks a free one).
    pub port: u16,
    /// `DATABASE_PATH`: the SQLite file.
    pub database_path: PathBuf,
    /// `EVENT_STORE`: `sqlite`, `memory` or `postgres`.
    pub event_store: StoreKind,
    /// `DATABASE_URL`: the PostgreSQL database (`EVENT_STORE=postgres`).
    pub database_url: Option<String>,
    /// `DATABASE_MAX_CONNECTIONS`: PostgreSQL connections this node holds.
    pub database_max_connections: usize,
    /// `BROADCASTER`: `local`, `nats` or `redis`.
    pub broadcaster: BroadcasterKind,
    /// `NATS_URL`.
    pub nats_url: String,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `BUS_PREFIX`: prefix of the NATS subject or Redis channel; the nodes
    /// of one deployment share it.
    pub bus_prefix: String,
    /// `STARTUP_TIMEOUT_SECONDS`: how long a dependency that is down at
    /// start-up (PostgreSQL, NATS, Redis) is retried before start-up fails.
    pub startup_timeout: Duration,
    /// `METRICS`: whether `/metrics` is served (and metrics recorded).
    pub metrics: bool,
    /// `DATABASE_SYNCHRONOUS`: `normal` (survives a process crash) or `full`
    /// (survives power loss too, slower).
    pub database_full_sync: bool,
    /// `CORS_ORIGINS`: allowed origins, `*` for any.
    pub cors_origins: Vec<String>,
    /// `REQUIRE_AUTH`.
    pub require_auth: bool,
    /// `API_KEY` (never printed).
    pub api_key: String,
    /// `ADMIN_API_KEY` (never printed): when set, only it may delete.
    pub admin_api_key: Option<String>,
    /// `TRUSTED_PROXIES`: addresses or CIDR blocks whose `X-Forwarded-For`
    /// and `X-Forwarded-Proto` are believed. Empty: none.
    pub trusted_proxies: TrustedProxies,
    /// `LOG_LEVEL`, as a tracing filter directive (`debug`, `info`, ...).
    pub log_level: &'static str,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `MAX_QUEUE_SIZE`: events accepted but not yet committed.
    pub max_queue_size: usize,
    /// `MAX_SUBSCRIBERS`.
    pub max_subscribers: usize,
    /// `MAX_WS_MESSAGE_BYTES`.
    pub max_ws_message_bytes: usize,
    /// `MAX_WS_CONNECTIONS_PER_IP`.
    pub max_ws_connections_per_ip: usize,
    /// `WS_FILTER_TIMEOUT_SECONDS`: time a subscriber has to send its filter.
    pub ws_filter_timeout: Duration,
    /// `WS_KEEPALIVE_SECONDS`: subscriber silence after which a keepalive is sent.
    pub ws_keepalive: Duration,
    /// `WS_SUBSCRIBER_QUEUE`: events queued for one subscriber before it
    /// counts as slow and is closed with 4008.
    pub ws_subscriber_queue: usize,
    /// `MAX_PAYLOAD_KEYS`.
    pub max_payload_keys: usize,
    /// `MAX_PAYLOAD_BYTES`.
    pub max_payload_bytes: usize,
    /// `MAX_BODY_BYTES`: cap on a whole REST request body (413 above it).
    pub max_body_bytes: usize,
    /// `RATE_LIMIT_PUBLISH`.
    pub rate_limit_publish: RateLimit,
    /// `RATE_LIMIT_QUERY`.
    pub rate_limit_query: RateLimit,
    /// `RATE_LIMIT_ADMIN`.
    pub rate_limit_admin: RateLimit,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database_path", &self.database_path)
            .field("event_store", &self.event_store)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("broadcaster", &self.broadcaster)
            .field("nats_url", &redact_url(&self.nats_url))
            .field("redis_url", &redact_url(&self.redis_url))
            .field("require_auth", &self.require_auth)
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    "<empty>"
                } else {
                    "<redacted>"
                },
            )
            .field("max_queue_size", &self.max_queue_size)
            .finish_non_exhaustive()
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable has a value of the wrong form.
    #[error("invalid {var}={value:?}: expected {expected}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What it was set to.
        value: String,
        /// The accepted form.
        expected: &'static str,
    },
    /// Values that are fine alone but not together.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// The configuration file could not be read.
    #[error("cannot read the configuration: {0}")]
    Source(#[from] config::ConfigError),
}

/// Reads raw values, with the variable names as keys.
struct Raw(config::Config);

impl Raw {
    fn get(&self, var: &'static str) -> Option<String> {
        self.0.get_string(&var.to_ascii_lowercase()).ok()
    }

    fn parse<T>(
        &self,
        var: &'static str,
        default: T,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(value) => parse(value.trim()).ok_or(ConfigError::Invalid {
                var,
                value,
                expected,
            }),
        }
    }

    fn count(&self, var: &'static str, default: usize, min: usize) -> Result<usize, ConfigError> {
        let expected = if min == 0 {
            "a whole number (0 or more)"
        } else {
            "a whole number (1 or more)"
        };
        self.parse(var, default, expected, |v| {
            v.parse::<usize>().ok().filter(|n| *n >= min)
        })
    }

    fn rate(&self, var: &'static str, default: RateLimit) -> Result<RateLimit, ConfigError> {
        self.parse(
            var,
            default,
            "N/second, N/minute, N/hour or N/day with N at least 1 (e.g. 200/minute)",
            parse_rate,
        )
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_rate(v: &str) -> Option<RateLimit> {
    let (count, unit) = v.split_once('/').or_else(|| v.split_once(" per "))?;
    let count: u32 = count.trim().parse().ok().filter(|n| *n >= 1)?;
    let secs = match unit.trim().to_ascii_lowercase().trim_end_matches('s') {
        "second" | "sec" => 1,
        "minute" | "min" => 60,
        "hour" => 3_600,
        "day" => 86_400,
        _ => return None,
    };
    Some(RateLimit {
        count,
        per: Duration::from_secs(secs),
    })
}

fn parse_log_level(v: &str) -> Option<&'static str> {
    Some(match v.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => return None,
    })
}

fn parse_host(v: &str) -> Option<IpAddr> {
    match v {
        "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        _ => v.trim_start_matches('[').trim_end_matches(']').parse().ok(),
    }
}

impl Config {
    /// Reads `CONFIG_FILE` (if set) and the environment.
    ///
    /// # Errors
    /// A `ConfigError` naming the first bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Ok(file) = std::env::var("CONFIG_FILE") {
            builder = builder
                .add_source(config::File::new(&file, config::FileFormat::Toml).required(true));
        }
        Self::from_source(builder.add_source(config::Environment::default()).build()?)
    }

    /// Reads the given variables only (and defaults): for tests and embedding.
    ///
    /// # Errors
    /// A `ConfigError` naming the first bad variable.
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let map = vars
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self::from_source(
            config::Config::builder()
                .add_source(config::Environment::default().source(Some(map)))
                .build()?,
        )
    }

    fn from_source(source: config::Config) -> Result<Self, ConfigError> {
        let raw = Raw(source);
        let per_minute = |count| RateLimit {
            count,
            per: Duration::from_secs(60),
        };
        let config = Self {
            host: raw.parse(
                "HOST",
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                "an IP address such as 0.0.0.0, 127.0.0.1 or ::",
                parse_host,
            )?,
            port: raw.parse("PORT", 8001, "a port number from 0 to 65535", |v| {
                v.parse().ok()
            })?,
            database_path: raw.parse(
                "DATABASE_PATH",
                PathBuf::from("data/events.db"),
                "a file path",
                |v| (!v.is_empty()).then(|| PathBuf::from(v)),
            )?,
            event_store: raw.parse(
                "EVENT_STORE",
                StoreKind::Sqlite,
                "sqlite, memory or postgres",
                |v| match v.to_ascii_lowercase().as_str() {
                    "sqlite" => Some(StoreKind::Sqlite),
                    "memory" => Some(StoreKind::Memory),
                    "postgres" | "postgresql" => Some(StoreKind::Postgres),
                    _ => None,
                },
            )?,
            database_url: raw.get("DATABASE_URL").filter(|v| !v.trim().is_empty()),
            database_max_connections: raw.count("DATABASE_MAX_CONNECTIONS", 16, 2)?,
            broadcaster: raw.parse(
                "BROADCASTER",
                BroadcasterKind::Local,
                "local, nats or redis",
                |v| match v.to_ascii_lowercase().as_str() {
                    "local" => Some(BroadcasterKind::Local),
                    "nats" => Some(BroadcasterKind::Nats),
                    "redis" => Some(BroadcasterKind::Redis),
                    _ => None,
                },
            )?,
            nats_url: raw.parse(
                "NATS_URL",
                "nats://127.0.0.1:4222".to_owned(),
                "a NATS URL such as nats://127.0.0.1:4222",
                |v| v.starts_with("nats://").then(|| v.to_owned()),
            )?,
            redis_url: raw.parse(
                "REDIS_URL",
                "redis://127.0.0.1:6379".to_owned(),
                "a Redis URL such as redis://127.0.0.1:6379",
                |v| (v.starts_with("redis://") || v.starts_with("rediss://")).then(|| v.to_owned()),
            )?,
            bus_prefix: raw.parse(
                "BUS_PREFIX",
                "event-pipeline".to_owned(),
                "1 to 64 characters of [A-Za-z0-9_-]",
                |v| {
                    (!v.is_empty()
                        && v.len() <= 64
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
                    .then(|| v.to_owned())
                },
            )?,
            startup_timeout: Duration::from_secs(
                raw.count("STARTUP_TIMEOUT_SECONDS", 30, 0)? as u64
            ),
            metrics: raw.parse("METRICS", true, "true or false", parse_bool)?,
            database_full_sync: raw.parse(
                "DATABASE_SYNCHRONOUS",
                false,
                "normal or full",
                |v| match v.to_ascii_lowercase().as_str() {
                    "normal" => Some(false),
                    "full" => Some(true),
                    _ => None,
                },
            )?,
            cors_origins: raw.parse(
                "CORS_ORIGINS",
                vec!["*".to_owned()],
                "a comma-separated list of origins, or *",
                |v| {
                    let origins: Vec<String> = v
                        .split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(str::to_owned)
                        .collect();
                    (!origins.is_empty()).then_some(origins)
                },
            )?,
            require_auth: raw.parse("REQUIRE_AUTH", false, "true or false", parse_bool)?,
            api_key: raw.get("API_KEY").unwrap_or_default(),
            admin_api_key: raw.get("ADMIN_API_KEY").filter(|k| !k.is_empty()),
            trusted_proxies: raw.parse(
                "TRUSTED_PROXIES",
                TrustedProxies::default(),
                "a comma-separated list of IP addresses or CIDR blocks (e.g. 10.0.0.0/8, ::1)",
                TrustedProxies::parse,
            )?,
            log_level: raw.parse(
                "LOG_LEVEL",
                "info",
                "DEBUG, INFO, WARNING, ERROR or CRITICAL",
                parse_log_level,
            )?,
            log_format: raw.parse("LOG_FORMAT", LogFormat::Text, "text or json", |v| {
                match v.to_ascii_lowercase().as_str() {
                    "text" => Some(LogFormat::Text),
                    "json" => Some(LogFormat::Json),
                    _ => None,
                }
            })?,
            max_queue_size: raw.count("MAX_QUEUE_SIZE", 10_000, 1)?,
            max_subscribers: raw.count("MAX_SUBSCRIBERS", 5_000, 0)?,
            max_ws_message_bytes: raw.count("MAX_WS_MESSAGE_BYTES", 1_048_576, 1)?,
            max_ws_connections_per_ip: raw.count("MAX_WS_CONNECTIONS_PER_IP", 20, 0)?,
            ws_filter_timeout: Duration::from_secs(
                raw.count("WS_FILTER_TIMEOUT_SECONDS", 10, 1)? as u64
            ),
            ws_keepalive: Duration::from_secs(raw.count("WS_KEEPALIVE_SECONDS", 30, 1)? as u64),
            ws_subscriber_queue: raw.count("WS_SUBSCRIBER_QUEUE", 1_024, 1)?,
            max_payload_keys: raw.count("MAX_PAYLOAD_KEYS", 50, 0)?,
            max_payload_bytes: raw.count("MAX_PAYLOAD_BYTES", 65_536, 2)?,
            max_body_bytes: raw.count("MAX_BODY_BYTES", 1_048_576, 1_024)?,
            rate_limit_publish: raw.rate("RATE_LIMIT_PUBLISH", per_minute(200))?,
            rate_limit_query: raw.rate("RATE_LIMIT_QUERY", per_minute(600))?,
            rate_limit_admin: raw.rate("RATE_LIMIT_ADMIN", per_minute(10))?,
        };
        if config.event_store == StoreKind::Postgres && config.database_url.is_none() {
            return Err(ConfigError::Inconsistent(
                "EVENT_STORE=postgres needs DATABASE_URL (postgres://user@host:5432/db)",
            ));
        }
        if config.broadcaster != BroadcasterKind::Local && config.event_store != StoreKind::Postgres
        {
            return Err(ConfigError::Inconsistent(
                "BROADCASTER=nats or redis carries events between nodes that share one store: \
                 set EVENT_STORE=postgres (SQLite and memory are one process's own)",
            ));
        }
        if config.require_auth && config.api_key.is_empty() {
            return Err(ConfigError::Inconsistent(
                "REQUIRE_AUTH=true needs a non-empty API_KEY (or set REQUIRE_AUTH=false)",
            ));
        }
        Ok(config)
    }

    /// The rate limits.
    pub fn rate_limits(&self) -> RateLimitConfig {
        RateLimitConfig {
            publish: self.rate_limit_publish,
            query: self.rate_limit_query,
            admin: self.rate_limit_admin,
            max_clients: 65_536,
        }
    }

    /// The domain's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_payload_keys: self.max_payload_keys,
            max_payload_bytes: self.max_payload_bytes,
            max_queue_size: self.max_queue_size,
            ..Limits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_vars([]).expect("defaults are valid");
        assert_eq!((c.host.to_string().as_str(), c.port), ("0.0.0.0", 8001));
        assert_eq!(c.database_path, PathBuf::from("data/events.db"));
        assert_eq!(c.cors_origins, ["*"]);
        assert!(!c.require_auth);
        assert_eq!((c.log_level, c.log_format), ("info", LogFormat::Text));
        assert_eq!(
            (c.max_queue_size, c.max_subscribers, c.max_ws_message_bytes),
            (10_000, 5_000, 1_048_576)
        );
        assert_eq!(
            (
                c.max_ws_connections_per_ip,
                c.max_payload_keys,
                c.max_payload_bytes
            ),
            (20, 50, 65_536)
        );
        assert_eq!(
            c.rate_limit_publish,
            RateLimit {
                count: 200,
                per: Duration::from_secs(60)
            }
        );
        assert_eq!(c.rate_limit_query.count, 600);
        assert_eq!(c.rate_limit_admin.count, 10);
        assert_eq!(c.event_store, StoreKind::Sqlite);
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_accepted_form() {
        for (var, value) in [
            ("PORT", "abc"),
            ("PORT", "70000"),
            ("RATE_LIMIT_PUBLISH", "lots"),
            ("RATE_LIMIT_QUERY", "0/minute"),
            ("REQUIRE_AUTH", "maybe"),
            ("LOG_LEVEL", "LOUD"),
            ("LOG_FORMAT", "xml"),
            ("MAX_QUEUE_SIZE", "0"),
            ("MAX_SUBSCRIBERS", "-1"),
            ("HOST", "not an address"),
        ] {
            let err = Config::from_vars([(var, value)])
                .expect_err(var)
                .to_string();
            assert!(err.contains(var), "{err}");
            assert!(err.contains("expected"), "{err}");
        }
    }

    #[test]
    fn log_levels_use_the_names_deployments_use_in_any_case() {
        for (given, level) in [
            ("debug", "debug"),
            ("INFO", "info"),
            ("Warning", "warn"),
            ("WARN", "warn"),
            ("critical", "error"),
        ] {
            assert_eq!(
                Config::from_vars([("LOG_LEVEL", given)])
                    .expect(given)
                    .log_level,
                level
            );
        }
    }

    #[test]
    fn rates_take_every_unit_and_small_limits_are_valid() {
        let c = Config::from_vars([
            ("RATE_LIMIT_PUBLISH", "5/second"),
            ("RATE_LIMIT_QUERY", "100 per hour"),
            ("RATE_LIMIT_ADMIN", "1/day"),
            ("MAX_SUBSCRIBERS", "0"),
            ("MAX_WS_MESSAGE_BYTES", "50"),
            ("MAX_PAYLOAD_KEYS", "3"),
        ])
        .expect("valid");
        assert_eq!(
            c.rate_limit_publish,
            RateLimit {
                count: 5,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(c.rate_limit_query.per, Duration::from_secs(3_600));
        assert_eq!(c.rate_limit_admin.per, Duration::from_secs(86_400));
        assert_eq!(
            (
                c.max_subscribers,
                c.max_ws_message_bytes,
                c.max_payload_keys
            ),
            (0, 50, 3)
        );
    }

    #[test]
    fn several_nodes_need_a_shared_store_and_its_url() {
        let c = Config::from_vars([
            ("EVENT_STORE", "postgres"),
            ("DATABASE_URL", "postgres://app:s3cret@db:5432/events"),
            ("BROADCASTER", "nats"),
        ])
        .expect("valid");
        assert_eq!(
            (c.event_store, c.broadcaster),
            (StoreKind::Postgres, BroadcasterKind::Nats)
        );
        assert_eq!(c.nats_url, "nats://127.0.0.1:4222");
        assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
        for (vars, needs) in [
            (vec![("EVENT_STORE", "postgres")], "DATABASE_URL"),
            (vec![("BROADCASTER", "redis")], "EVENT_STORE=postgres"),
            (
                vec![("BROADCASTER", "nats"), ("EVENT_STORE", "memory")],
                "EVENT_STORE=postgres",
            ),
        ] {
            let err = Config::from_vars(vars).expect_err(needs).to_string();
            assert!(err.contains(needs), "{err}");
        }
        for (var, value) in [
            ("BROADCASTER", "kafka"),
            ("NATS_URL", "http://x"),
            ("REDIS_URL", "localhost"),
            ("BUS_PREFIX", "a.b"),
        ] {
            let err = Config::from_vars([(var, value)])
                .expect_err(var)
                .to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/events?sslmode=disable"),
            "postgres://app:***@db:5432/events?sslmode=disable"
        );
        assert_eq!(
            redact_url("redis://:pw@cache:6379"),
            "redis://:***@cache:6379"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redact_url("postgres://app@db/events"),
            "postgres://app@db/events"
        );
    }

    #[test]
    fn cors_origins_are_trimmed() {
        let c = Config::from_vars([("CORS_ORIGINS", " https://a.example , https://b.example ")])
            .expect("valid");
        assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn auth_without_a_key_is_refused_and_the_key_is_never_printed() {
        let err = Config::from_vars([("REQUIRE_AUTH", "true")])
            .expect_err("no key")
            .to_string();
        assert!(err.contains("API_KEY"));
        let c =
            Config::from_vars([("REQUIRE_AUTH", "true"), ("API_KEY", "s3cret")]).expect("valid");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
