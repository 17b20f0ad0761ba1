//! The text forms settings take. A value comes as text from the environment
//! (or as a string, number or boolean from the `CONFIG_FILE` table); each
//! form parses that text itself and names what it accepts, for the message
//! that stops start-up.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ep_domain::RateLimit;
use ep_http::TrustedProxies;
use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// A form a setting's text takes.
pub(crate) trait Form: Sized {
    /// What the form accepts, as the message puts it (`expected ...`).
    fn expected() -> String;
    /// The value, or `None` when `text` (already trimmed) is not of this form.
    fn parse(text: &str) -> Option<Self>;
}

/// Deserializes a setting written in form `F` into the field's type `T`
/// (`#[serde(deserialize_with = "setting::<_, F, _>")]`). A refusal reads
/// `"<text>": expected <form>`; the loader puts the variable in front.
pub(crate) fn setting<'de, D, F, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: Form + Into<T>,
{
    let text = deserializer.deserialize_any(TextVisitor)?;
    F::parse(text.trim())
        .map(Into::into)
        .ok_or_else(|| de::Error::custom(format!("{text:?}: expected {}", F::expected())))
}

/// Reads any single value as its text.
struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a single value (text, a number or true/false)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// Writes a value in its text form (`Display`).
pub(crate) fn display<T: fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Writes a duration as its whole seconds.
pub(crate) fn seconds<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(value.as_secs())
}

/// A whole number, at least `MIN`.
pub(crate) struct Count<const MIN: usize>(usize);

impl<const MIN: usize> Form for Count<MIN> {
    fn expected() -> String {
        format!("a whole number ({MIN} or more)")
    }

    fn parse(text: &str) -> Option<Self> {
        text.parse().ok().filter(|n| *n >= MIN).map(Self)
    }
}

impl<const MIN: usize> From<Count<MIN>> for usize {
    fn from(c: Count<MIN>) -> usize {
        c.0
    }
}

/// A number of threads: `0` (the service chooses from the cores) up to
/// [`Threads::MAX`].
pub(crate) struct Threads(usize);

impl Threads {
    /// More threads than any machine this serves has cores.
    const MAX: usize = 1_024;
}

impl Form for Threads {
    fn expected() -> String {
        format!(
            "a whole number of threads from 0 (chosen from the cores) to {}",
            Self::MAX
        )
    }

    fn parse(text: &str) -> Option<Self> {
        text.parse().ok().filter(|n| *n <= Self::MAX).map(Self)
    }
}

impl From<Threads> for usize {
    fn from(t: Threads) -> usize {
        t.0
    }
}

/// A duration in whole seconds, at least `MIN`.
pub(crate) struct Seconds<const MIN: u64>(Duration);

impl<const MIN: u64> Form for Seconds<MIN> {
    fn expected() -> String {
        format!("a whole number of seconds ({MIN} or more)")
    }

    fn parse(text: &str) -> Option<Self> {
        let secs: u64 = text.strip_suffix('s').unwrap_or(text).trim().parse().ok()?;
        (secs >= MIN).then(|| Self(Duration::from_secs(secs)))
    }
}

impl<const MIN: u64> From<Seconds<MIN>> for Duration {
    fn from(s: Seconds<MIN>) -> Duration {
        s.0
    }
}

/// A TCP port.
pub(crate) struct Port(u16);

impl Form for Port {
    fn expected() -> String {
        "a port number from 0 to 65535".into()
    }

    fn parse(text: &str) -> Option<Self> {
        text.parse().ok().map(Self)
    }
}

impl From<Port> for u16 {
    fn from(p: Port) -> u16 {
        p.0
    }
}

/// An address to listen on: an IP (IPv6 with or without brackets) or
/// `localhost`.
pub(crate) struct Host(IpAddr);

impl Form for Host {
    fn expected() -> String {
        "an IP address such as 0.0.0.0, 127.0.0.1 or ::".into()
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "localhost" => Some(Self(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            _ => text
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
                .map(Self),
        }
    }
}

impl From<Host> for IpAddr {
    fn from(h: Host) -> IpAddr {
        h.0
    }
}

/// A file path, not empty.
pub(crate) struct FilePath(PathBuf);

impl Form for FilePath {
    fn expected() -> String {
        "a file path".into()
    }

    fn parse(text: &str) -> Option<Self> {
        (!text.is_empty()).then(|| Self(PathBuf::from(text)))
    }
}

impl From<FilePath> for PathBuf {
    fn from(p: FilePath) -> PathBuf {
        p.0
    }
}

/// A yes or no: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case.
pub(crate) struct Switch(bool);

impl Form for Switch {
    fn expected() -> String {
        "true or false".into()
    }

    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(Self(true)),
            "false" | "0" | "no" | "off" => Some(Self(false)),
            _ => None,
        }
    }
}

impl From<Switch> for bool {
    fn from(s: Switch) -> bool {
        s.0
    }
}

/// Any text, kept as written (a key may have spaces at its ends).
pub(crate) struct Verbatim(String);

impl Form for Verbatim {
    fn expected() -> String {
        "text".into()
    }

    fn parse(text: &str) -> Option<Self> {
        Some(Self(text.to_owned()))
    }
}

impl From<Verbatim> for String {
    fn from(v: Verbatim) -> String {
        v.0
    }
}

/// Text that may be left empty: empty is unset.
pub(crate) struct Optional(Option<String>);

impl Form for Optional {
    fn expected() -> String {
        "text, or nothing for unset".into()
    }

    fn parse(text: &str) -> Option<Self> {
        Some(Self((!text.is_empty()).then(|| text.to_owned())))
    }
}

impl From<Optional> for Option<String> {
    fn from(o: Optional) -> Option<String> {
        o.0
    }
}

/// A comma-separated list of origins, or `*`.
pub(crate) struct Origins(Vec<String>);

impl Form for Origins {
    fn expected() -> String {
        "a comma-separated list of origins, or *".into()
    }

    fn parse(text: &str) -> Option<Self> {
        let origins: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        (!origins.is_empty()).then_some(Self(origins))
    }
}

impl From<Origins> for Vec<String> {
    fn from(o: Origins) -> Vec<String> {
        o.0
    }
}

/// A comma-separated list of JSON key names (empty: none).
pub(crate) struct Names(Vec<String>);

impl Form for Names {
    fn expected() -> String {
        "a comma-separated list of up to 64 field names (e.g. ipAddress,userAgent), or nothing"
            .into()
    }

    fn parse(text: &str) -> Option<Self> {
        let names: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        (names.len() <= 64 && names.iter().all(|n| n.len() <= 100)).then_some(Self(names))
    }
}

impl From<Names> for Vec<String> {
    fn from(n: Names) -> Vec<String> {
        n.0
    }
}

/// Writes a list of origins as it is read.
pub(crate) fn comma_list<S: Serializer>(value: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.join(","))
}

/// A URL of one of the schemes `S`, e.g. `nats://host:4222`.
pub(crate) struct Url<S: Schemes>(String, std::marker::PhantomData<S>);

/// The schemes a kind of URL takes and an example of it.
pub(crate) trait Schemes {
    /// Accepted schemes, without `://`.
    const SCHEMES: &'static [&'static str];
    /// An example for the message.
    const EXAMPLE: &'static str;
}

/// `nats://`.
pub(crate) struct Nats;

impl Schemes for Nats {
    const SCHEMES: &'static [&'static str] = &["nats"];
    const EXAMPLE: &'static str = "a NATS URL such as nats://127.0.0.1:4222";
}

/// `redis://` or `rediss://` (TLS).
pub(crate) struct Redis;

impl Schemes for Redis {
    const SCHEMES: &'static [&'static str] = &["redis", "rediss"];
    const EXAMPLE: &'static str = "a Redis URL such as redis://127.0.0.1:6379";
}

/// `http://` or `https://`.
pub(crate) struct Http;

impl Schemes for Http {
    const SCHEMES: &'static [&'static str] = &["http", "https"];
    const EXAMPLE: &'static str = "an http:// or https:// URL such as https://lms.example";
}

/// An `http://` or `https://` URL, or nothing (unset).
pub(crate) struct OptionalHttpUrl(Option<String>);

impl Form for OptionalHttpUrl {
    fn expected() -> String {
        "an http:// or https:// URL such as https://lrs.example/xAPI/, or nothing".into()
    }

    fn parse(text: &str) -> Option<Self> {
        if text.trim().is_empty() {
            return Some(Self(None));
        }
        Url::<Http>::parse(text).map(|u| Self(Some(u.0)))
    }
}

impl From<OptionalHttpUrl> for Option<String> {
    fn from(u: OptionalHttpUrl) -> Option<String> {
        u.0
    }
}

impl<S: Schemes> Form for Url<S> {
    fn expected() -> String {
        S::EXAMPLE.into()
    }

    fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.split_once("://")?;
        (S::SCHEMES.contains(&scheme) && !rest.is_empty())
            .then(|| Self(text.to_owned(), std::marker::PhantomData))
    }
}

impl<S: Schemes> From<Url<S>> for String {
    fn from(u: Url<S>) -> String {
        u.0
    }
}

/// A NATS subject or Redis channel prefix: 1 to 64 of `[A-Za-z0-9_-]`.
pub(crate) struct BusPrefix(String);

impl Form for BusPrefix {
    fn expected() -> String {
        "1 to 64 characters of [A-Za-z0-9_-]".into()
    }

    fn parse(text: &str) -> Option<Self> {
        (!text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        .then(|| Self(text.to_owned()))
    }
}

impl From<BusPrefix> for String {
    fn from(p: BusPrefix) -> String {
        p.0
    }
}

/// A log level by the names deployments use, any case: `DEBUG`, `INFO`,
/// `WARNING`/`WARN`, `ERROR`, `CRITICAL` (and `TRACE`); held as the tracing
/// directive.
pub(crate) struct LogLevel(&'static str);

impl Form for LogLevel {
    fn expected() -> String {
        "DEBUG, INFO, WARNING, ERROR or CRITICAL".into()
    }

    fn parse(text: &str) -> Option<Self> {
        Some(Self(match text.to_ascii_uppercase().as_str() {
            "TRACE" => "trace",
            "DEBUG" => "debug",
            "INFO" => "info",
            "WARNING" | "WARN" => "warn",
            "ERROR" | "CRITICAL" => "error",
            _ => return None,
        }))
    }
}

impl From<LogLevel> for &'static str {
    fn from(l: LogLevel) -> &'static str {
        l.0
    }
}

impl Form for RateLimit {
    fn expected() -> String {
        RateLimit::FORM.into()
    }

    fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl Form for TrustedProxies {
    fn expected() -> String {
        TrustedProxies::FORM.into()
    }

    fn parse(text: &str) -> Option<Self> {
        TrustedProxies::parse(text)
    }
}
