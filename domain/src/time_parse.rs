//! Lenient ISO 8601 parsing for the `since` and `before` parameters.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use ep_ports::Timestamp;

/// Longest text worth trying to parse as an instant.
const MAX_LEN: usize = 64;

/// Why a text is not an instant the service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InstantError {
    /// Not an ISO 8601 instant at all.
    #[error("not an ISO 8601 instant")]
    Unparseable,
    /// An instant, but outside years 0000-9999 (in UTC): stores compare
    /// instants as fixed-width text, which only holds inside them.
    #[error(
        "Input should be an instant between 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
    )]
    OutOfRange,
}

/// Parses an ISO 8601 instant as clients send it and returns it in UTC.
///
/// Accepted: RFC 3339 (`Z` or an offset such as `+02:00`), offsets without a
/// colon (`+0200`), `T` or a space between date and time, any number of
/// fractional digits, and forms without an offset (`2026-11-27T10:00:00`,
/// `2026-11-27`), which are taken as UTC as the old service stored them.
///
/// A `+` in an unencoded query string arrives as a space; `...10:00:00 02:00`
/// is therefore read as `+02:00`.
///
/// # Errors
/// `Unparseable`, or `OutOfRange` for an instant before
/// [`Timestamp::MIN`] or after [`Timestamp::MAX`] (a five-digit or signed
/// year, or an offset that moves year 0000 or 9999 across the edge).
pub fn parse_instant(text: &str) -> Result<Timestamp, InstantError> {
    let instant = parse_any(text).ok_or(InstantError::Unparseable)?;
    if (Timestamp::MIN..=Timestamp::MAX).contains(&instant) {
        Ok(instant)
    } else {
        Err(InstantError::OutOfRange)
    }
}

fn parse_any(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_LEN || !text.is_ascii() {
        return None;
    }
    let repaired;
    let text = match decoded_plus_offset(text) {
        Some(fixed) => {
            repaired = fixed;
            repaired.as_str()
        }
        None => text,
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(Timestamp::from_datetime(dt));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(text, fmt) {
            return Some(Timestamp::from_datetime(dt));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, fmt) {
            return Some(Timestamp::from_datetime(naive.and_utc()));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|naive| Timestamp::from_datetime(naive.and_utc()))
}

/// `2026-11-27T10:00:00 02:00` (a `+` decoded as space) → `...+02:00`.
fn decoded_plus_offset(text: &str) -> Option<String> {
    let (head, tail) = text.rsplit_once(' ')?;
    let offset_like = matches!(tail.len(), 4 | 5)
        && tail
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 2 && b == b':'));
    (head.contains('T') && offset_like).then(|| format!("{head}+{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> i64 {
        parse_instant(text)
            .unwrap_or_else(|e| panic!("{text} should parse: {e}"))
            .as_micros()
    }

    #[test]
    fn offsets_are_instants_not_strings() {
        assert_eq!(
            micros("2026-11-27T10:00:00+02:00"),
            micros("2026-11-27T08:00:00Z")
        );
        assert_eq!(
            micros("2026-11-27T10:00:00+0200"),
            micros("2026-11-27T08:00:00Z")
        );
        assert_eq!(
            micros("2026-11-27T10:00:00 02:00"),
            micros("2026-11-27T08:00:00Z")
        );
        assert_eq!(
            micros("2026-11-27T03:00:00-05:00"),
            micros("2026-11-27T08:00:00Z")
        );
    }

    #[test]
    fn naive_and_date_only_forms_are_utc() {
        assert_eq!(
            micros("2026-11-27T08:00:00"),
            micros("2026-11-27T08:00:00Z")
        );
        assert_eq!(
            micros("2026-11-27 08:00:00.5"),
            micros("2026-11-27T08:00:00.500000Z")
        );
        assert_eq!(micros("2026-11-27"), micros("2026-11-27T00:00:00Z"));
        assert_eq!(micros("2026-11-27T08:00"), micros("2026-11-27T08:00:00Z"));
    }

    #[test]
    fn fractions_keep_microseconds() {
        assert_eq!(micros("2026-11-27T09:58:41.270000Z") % 1_000_000, 270_000);
        assert_eq!(
            micros("2026-11-27T09:58:41.123456789Z") % 1_000_000,
            123_456
        );
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-27T25:00:00Z",
            "12345",
            "2026-11-27T10:00:00+99:00x",
            &"9".repeat(500),
        ] {
            assert_eq!(
                parse_instant(bad),
                Err(InstantError::Unparseable),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn instants_outside_years_0000_to_9999_are_out_of_range() {
        for outside in [
            "+10000-01-01T00:00:00",
            "+10000-01-01T00:00:00+00:00",
            "-0001-12-31T23:59:59",
            "0000-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
        ] {
            assert_eq!(
                parse_instant(outside),
                Err(InstantError::OutOfRange),
                "{outside}"
            );
        }
        assert_eq!(parse_instant("0000-01-01T00:00:00Z"), Ok(Timestamp::MIN));
        assert_eq!(
            parse_instant("9999-12-31T23:59:59.999999Z"),
            Ok(Timestamp::MAX)
        );
        assert_eq!(
            parse_instant("9999-12-31T23:59:59.9999999Z"),
            Ok(Timestamp::MAX),
            "digits past microseconds are dropped"
        );
    }
}
