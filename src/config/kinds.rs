//! The settings that choose one of a few kinds: the store, the broadcaster,
//! the durability of SQLite commits, the log format.

use serde::Serialize;

use super::forms::Form;

/// Reads one of `names` (any case) as its kind.
fn one_of<K: Copy>(text: &str, names: &[(&str, K)]) -> Option<K> {
    let text = text.to_ascii_lowercase();
    names.iter().find(|(n, _)| *n == text).map(|(_, k)| *k)
}

/// Which `EventStore` adapter to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite at `DATABASE_PATH` (the default).
    Sqlite,
    /// In memory: nothing survives a restart. For experiments.
    Memory,
    /// PostgreSQL at `DATABASE_URL`: one store several nodes share.
    Postgres,
}

impl Form for StoreKind {
    fn expected() -> String {
        "sqlite, memory or postgres".into()
    }

    fn parse(text: &str) -> Option<Self> {
        one_of(
            text,
            &[
                ("sqlite", Self::Sqlite),
                ("memory", Self::Memory),
                ("postgres", Self::Postgres),
                ("postgresql", Self::Postgres),
            ],
        )
    }
}

/// Which `Broadcaster` adapter carries committed events to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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

impl Form for BroadcasterKind {
    fn expected() -> String {
        "local, nats or redis".into()
    }

    fn parse(text: &str) -> Option<Self> {
        one_of(
            text,
            &[
                ("local", Self::Local),
                ("nats", Self::Nats),
                ("redis", Self::Redis),
            ],
        )
    }
}

/// `DATABASE_SYNCHRONOUS`: how hard a SQLite commit tries to survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Commits survive a process crash (the default).
    Normal,
    /// Commits also survive power loss: an fsync per batch.
    Full,
}

impl Form for Synchronous {
    fn expected() -> String {
        "normal or full".into()
    }

    fn parse(text: &str) -> Option<Self> {
        one_of(text, &[("normal", Self::Normal), ("full", Self::Full)])
    }
}

/// `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Form for LogFormat {
    fn expected() -> String {
        "text or json".into()
    }

    fn parse(text: &str) -> Option<Self> {
        one_of(text, &[("text", Self::Text), ("json", Self::Json)])
    }
}

/// `SCHEMA_MODE`: what a payload that breaks its type's schema gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaModeKind {
    /// 422 naming each broken rule (the default).
    Enforce,
    /// Stored, counted in /metrics and logged.
    Warn,
    /// Not checked.
    Off,
}

impl SchemaModeKind {
    /// The domain's mode.
    pub fn mode(self) -> ep_domain::SchemaMode {
        match self {
            Self::Enforce => ep_domain::SchemaMode::Enforce,
            Self::Warn => ep_domain::SchemaMode::Warn,
            Self::Off => ep_domain::SchemaMode::Off,
        }
    }
}

impl Form for SchemaModeKind {
    fn expected() -> String {
        "enforce, warn or off".into()
    }

    fn parse(text: &str) -> Option<Self> {
        one_of(
            text,
            &[
                ("enforce", Self::Enforce),
                ("warn", Self::Warn),
                ("off", Self::Off),
            ],
        )
    }
}
