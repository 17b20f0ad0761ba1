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
    /// 0000-01-01T00:00:00.000000Z, the earliest instant whose text form has
    /// four year digits. Text forms compare in time order only between
    /// [`Timestamp::MIN`] and [`Timestamp::MAX`]; the domain accepts no
    /// instant outside them.
    pub const MIN: Timestamp = Timestamp(-62_167_219_200_000_000);
    /// 9999-12-31T23:59:59.999999Z, the latest such instant.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

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

impl Timestamp {
    /// Writes the canonical text form into a stack buffer: this runs for
    /// every event stored and served, so it avoids chrono's general-purpose
    /// formatter. Years outside 0..=9999 fall back to chrono.
    fn format_into(self, out: &mut [u8; 27]) -> bool {
        let micros = self.0.rem_euclid(1_000_000);
        let secs = self.0.div_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(0..=9_999).contains(&year) {
            return false;
        }
        let mut put = |at: usize, value: i64, width: usize| {
            let mut v = value;
            for i in (0..width).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, sod / 3_600, 2);
        put(14, sod % 3_600 / 60, 2);
        put(17, sod % 60, 2);
        put(20, micros, 6);
        for (at, sep) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ] {
            out[at] = sep;
        }
        true
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 27];
        if self.format_into(&mut buf) {
            // Only ASCII digits and separators were written.
            f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
        } else {
            f.write_str(
                &self
                    .to_datetime()
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            )
        }
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
    fn the_fast_formatter_agrees_with_chrono() {
        let samples = [
            0,
            -1,
            1,
            951_782_400_000_000,     // 2000-02-29
            1_795_773_521_270_000,   // 2026-11-27
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            -62_135_596_800_000_000, // 0001-01-01
            4_107_542_400_123_456,   // 2100-03-01
        ];
        for micros in samples
            .into_iter()
            .chain((0..2_000).map(|i| i * 86_399_999_937 - 40_000_000_000_000_000))
        {
            let t = Timestamp::from_micros(micros);
            let chrono = t.to_datetime().to_rfc3339_opts(SecondsFormat::Micros, true);
            assert_eq!(t.to_string(), chrono, "{micros}");
        }
    }

    #[test]
    fn the_limits_are_the_first_and_last_instants_of_four_digit_years() {
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(
            Timestamp::MIN.minus_micros(1).to_string(),
            "-0001-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            Timestamp::from_micros(Timestamp::MAX.as_micros() + 1).to_string(),
            "+10000-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Timestamp::from_micros(1_000_000);
        let b = Timestamp::from_micros(10_000_000_000);
        assert!(a.to_string() < b.to_string());
    }
}
