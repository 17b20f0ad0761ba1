//! A rate limit as operators write it (`200/minute`): the form every
//! `RATE_LIMIT_*` variable and a key's own limits take.

use std::time::Duration;

/// A limit: `count` requests back to back, refilled evenly over `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed back to back (at least 1).
    pub count: u32,
    /// The period over which `count` requests are refilled.
    pub per: Duration,
}

impl RateLimit {
    /// The text form, for messages.
    pub const FORM: &'static str =
        "N/second, N/minute, N/hour or N/day with N at least 1 (e.g. 200/minute)";

    /// `count` requests a minute.
    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            per: Duration::from_secs(60),
        }
    }
}

/// The text form refused: not `N/unit` with N at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected {}", RateLimit::FORM)]
pub struct BadRateLimit;

/// The units a rate takes, with their length.
const RATE_UNITS: [(&str, u64); 4] = [
    ("second", 1),
    ("minute", 60),
    ("hour", 3_600),
    ("day", 86_400),
];

impl std::str::FromStr for RateLimit {
    type Err = BadRateLimit;

    /// `N/second`, `N/minute`, `N/hour` or `N/day` (also `N per minute`,
    /// plurals, `sec` and `min`, any case), with N at least 1.
    fn from_str(text: &str) -> Result<Self, BadRateLimit> {
        let (count, unit) = text
            .split_once('/')
            .or_else(|| text.split_once(" per "))
            .ok_or(BadRateLimit)?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(BadRateLimit)?;
        let unit = unit.trim().to_ascii_lowercase();
        let unit = match unit.trim_end_matches('s') {
            "sec" => "second",
            "min" => "minute",
            other => other,
        };
        let (_, secs) = RATE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or(BadRateLimit)?;
        Ok(Self {
            count,
            per: Duration::from_secs(*secs),
        })
    }
}

impl std::fmt::Display for RateLimit {
    /// `N/unit`, the form it is read from (a period of no single unit,
    /// which only code can build, as `N per 90s`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match RATE_UNITS
            .iter()
            .find(|(_, secs)| Duration::from_secs(*secs) == self.per)
        {
            Some((unit, _)) => write!(f, "{}/{unit}", self.count),
            None => write!(f, "{} per {:?}", self.count, self.per),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_reads_every_unit_and_writes_itself_back() {
        for (text, count, secs, written) in [
            ("200/minute", 200, 60, "200/minute"),
            ("5/second", 5, 1, "5/second"),
            ("5/sec", 5, 1, "5/second"),
            ("100 per hour", 100, 3_600, "100/hour"),
            ("1/Days", 1, 86_400, "1/day"),
            (" 7 / min ", 7, 60, "7/minute"),
        ] {
            let limit: RateLimit = text.trim().parse().expect(text);
            assert_eq!(
                (limit.count, limit.per),
                (count, Duration::from_secs(secs)),
                "{text}"
            );
            assert_eq!(limit.to_string(), written);
            assert_eq!(written.parse::<RateLimit>(), Ok(limit));
        }
        for bad in [
            "lots",
            "0/minute",
            "-1/minute",
            "5/fortnight",
            "5",
            "/minute",
            "5/",
        ] {
            assert_eq!(bad.parse::<RateLimit>(), Err(BadRateLimit), "{bad}");
        }
    }
}
