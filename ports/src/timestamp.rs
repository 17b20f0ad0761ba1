//! Instants as the pipeline stores and serves them: UTC, microsecond precision.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};

/// A UTC instant truncated to whole microseconds.
///
/// Its text form (`Display`, serde) is RFC 3339 with exactly six fractional
/// digits and `Z`, e.g. `2026-11-27T09:58:41.270000Z`. That form has a fixed
/// width, so comparing two of them as strings orders them in time; stores may
/// rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// From microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// From a chrono instant (any time zone), dropping sub-microsecond digits.
    pub fn from_datetime<Tz: TimeZone>(dt: DateTime<Tz>) -> Self {
        Self(dt.with_timezone(&Utc).timestamp_micros())
    }

    /// The chrono instant in UTC.
    pub fn to_datetime(self) -> DateTime<Utc> {
        // Every i64 of microseconds is inside chrono's range (±262,000 years).
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// Parses the canonical text form this type writes (what stores hold).
    /// Returns `None` for anything else.
    pub fn parse_canonical(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(Self::from_datetime)
    }

    /// This instant moved `micros` microseconds into the past (saturating).
    pub fn minus_micros(self, micros: i64) -> Self {
        Self(self.0.saturating_sub(micros))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_has_six_fraction_digits_and_z() {
        let t = Timestamp::from_micros(1_795_773_521_270_000);
        assert_eq!(t.to_string(), "2026-11-27T09:58:41.270000Z");
        assert_eq!(Timestamp::parse_canonical(&t.to_string()), Some(t));
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Timestamp::from_micros(1_000_000);
        let b = Timestamp::from_micros(10_000_000_000);
        assert!(a.to_string() < b.to_string());
    }
}
