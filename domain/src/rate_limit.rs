//! Rate limits per client address and request class, on `leaky-bucket`
//! token buckets. `N/minute` allows a burst of N requests and refuses the
//! next at once, refilling evenly over the minute.
//!
//! The table of clients is bounded: a client whose buckets have refilled
//! completely is indistinguishable from a new one and is forgotten when room
//! is needed; if every client is busy, the least recently seen are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use leaky_bucket::RateLimiter;
use tokio::time::Instant;

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

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// `POST /events`.
    Publish,
    /// `GET /events`, `GET /events/{id}`, `GET /stats`.
    Query,
    /// `DELETE /events`.
    Admin,
}

/// The limits of each class and the size of the client table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// `RATE_LIMIT_PUBLISH`.
    pub publish: RateLimit,
    /// `RATE_LIMIT_QUERY`.
    pub query: RateLimit,
    /// `RATE_LIMIT_ADMIN`.
    pub admin: RateLimit,
    /// Most client addresses tracked at once.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    /// The contract's limits: 200 publishes, 600 queries and 10 deletes a
    /// minute per client address.
    fn default() -> Self {
        Self {
            publish: RateLimit::per_minute(200),
            query: RateLimit::per_minute(600),
            admin: RateLimit::per_minute(10),
            max_clients: 65_536,
        }
    }
}

/// A refused request: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Rate limit exceeded. Try again later.")]
pub struct RateLimited {
    /// When a request of this class will be allowed again (rounded up).
    pub retry_after: Duration,
}

/// The smallest refill step leaky-bucket is given; faster rates refill
/// several tokens per step.
const MIN_STEP: Duration = Duration::from_millis(1);

impl RateLimit {
    /// (tokens per step, step) refilling `count` tokens over `per`.
    fn refill(self) -> (usize, Duration) {
        let count = self.count.max(1);
        let step = self.per / count;
        if step >= MIN_STEP {
            (1, step)
        } else {
            let per_step =
                (u128::from(count) * MIN_STEP.as_nanos()).div_ceil(self.per.as_nanos().max(1));
            (usize::try_from(per_step).unwrap_or(usize::MAX), MIN_STEP)
        }
    }

    fn bucket(self) -> RateLimiter {
        let (refill, interval) = self.refill();
        let count = self.count.max(1) as usize;
        RateLimiter::builder()
            .max(count)
            .initial(count)
            .refill(refill)
            .interval(interval)
            .build()
    }
}

struct Client {
    buckets: [Option<RateLimiter>; 3],
    last_seen: Instant,
}

/// Per-client rate limits.
pub struct ClientRateLimits {
    config: RateLimitConfig,
    clients: Mutex<HashMap<IpAddr, Client>>,
    /// After this long unseen, a client's buckets are full again.
    forget_after: Duration,
}

impl ClientRateLimits {
    /// Limits with `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        let forget_after = [config.publish, config.query, config.admin]
            .into_iter()
            .map(|l| l.per)
            .max()
            .unwrap_or_default();
        Self {
            config: RateLimitConfig {
                max_clients: config.max_clients.max(1),
                ..config
            },
            clients: Mutex::new(HashMap::new()),
            forget_after,
        }
    }

    fn limit(&self, class: RateClass) -> RateLimit {
        match class {
            RateClass::Publish => self.config.publish,
            RateClass::Query => self.config.query,
            RateClass::Admin => self.config.admin,
        }
    }

    /// Takes one request of `class` from `client`'s allowance.
    ///
    /// # Errors
    /// `RateLimited` when the allowance is used up.
    pub fn check(&self, client: IpAddr, class: RateClass) -> Result<(), RateLimited> {
        let now = Instant::now();
        // Entries are replaced whole, so a poisoned lock guards a usable table.
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !clients.contains_key(&client) && clients.len() >= self.config.max_clients {
            self.make_room(&mut clients, now);
        }
        let entry = clients.entry(client).or_insert_with(|| Client {
            buckets: [None, None, None],
            last_seen: now,
        });
        entry.last_seen = now;
        let limit = self.limit(class);
        let bucket = entry.buckets[class as usize].get_or_insert_with(|| limit.bucket());
        if bucket.try_acquire(1) {
            Ok(())
        } else {
            let secs = bucket.interval().as_secs_f64().ceil().max(1.0);
            Err(RateLimited {
                retry_after: Duration::from_secs_f64(secs),
            })
        }
    }

    /// Forgets clients whose buckets have refilled; if none have, the
    /// least recently seen eighth of the table.
    fn make_room(&self, clients: &mut HashMap<IpAddr, Client>, now: Instant) {
        let before = clients.len();
        clients.retain(|_, c| now.duration_since(c.last_seen) < self.forget_after);
        if clients.len() < self.config.max_clients {
            tracing::debug!(
                forgotten = before - clients.len(),
                "idle rate-limit entries forgotten"
            );
            return;
        }
        let mut seen: Vec<(Instant, IpAddr)> =
            clients.iter().map(|(ip, c)| (c.last_seen, *ip)).collect();
        let drop_count = (seen.len() / 8).max(1);
        seen.select_nth_unstable(drop_count - 1);
        for (_, ip) in &seen[..drop_count] {
            clients.remove(ip);
        }
        tracing::warn!(
            dropped = drop_count,
            table = self.config.max_clients,
            "rate-limit table full of active clients; the least recently seen were dropped"
        );
    }

    /// Client addresses tracked now.
    pub fn tracked_clients(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

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

    fn per_minute(count: u32) -> RateLimit {
        RateLimit {
            count,
            per: Duration::from_secs(60),
        }
    }

    fn limits(publish: u32, max_clients: usize) -> ClientRateLimits {
        ClientRateLimits::new(RateLimitConfig {
            publish: per_minute(publish),
            query: per_minute(600),
            admin: per_minute(10),
            max_clients,
        })
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_n_passes_and_the_next_is_refused_until_refilled() {
        let l = limits(5, 100);
        for _ in 0..5 {
            assert!(l.check(ip(1), RateClass::Publish).is_ok());
        }
        let refused = l.check(ip(1), RateClass::Publish).expect_err("sixth");
        assert_eq!(refused.retry_after, Duration::from_secs(12));
        // Other clients and other classes are separate.
        assert!(l.check(ip(2), RateClass::Publish).is_ok());
        assert!(l.check(ip(1), RateClass::Query).is_ok());
        tokio::time::advance(Duration::from_secs(12)).await;
        assert!(l.check(ip(1), RateClass::Publish).is_ok());
        assert!(l.check(ip(1), RateClass::Publish).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn very_high_rates_refill_in_millisecond_steps() {
        let l = ClientRateLimits::new(RateLimitConfig {
            publish: RateLimit {
                count: 1_000_000,
                per: Duration::from_secs(1),
            },
            query: per_minute(1),
            admin: per_minute(1),
            max_clients: 10,
        });
        for _ in 0..10_000 {
            assert!(l.check(ip(1), RateClass::Publish).is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_client_table_stays_bounded_under_a_flood_of_addresses() {
        let l = limits(5, 1_000);
        for n in 0..50_000 {
            let _ = l.check(ip(n), RateClass::Publish);
            assert!(l.tracked_clients() <= 1_000);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_clients_are_forgotten_first_and_lose_nothing_by_it() {
        let l = limits(2, 3);
        for n in 0..3 {
            l.check(ip(n), RateClass::Publish).expect("first request");
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        // A busy client keeps its state while idle ones are forgotten.
        l.check(ip(0), RateClass::Publish).expect("refilled");
        l.check(ip(0), RateClass::Publish)
            .expect("second of the burst");
        l.check(ip(9), RateClass::Publish).expect("newcomer");
        assert!(l.tracked_clients() <= 3);
        assert!(
            l.check(ip(0), RateClass::Publish).is_err(),
            "busy client was not reset"
        );
    }
}
