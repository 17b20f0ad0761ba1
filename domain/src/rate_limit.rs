//! Rate limits per caller and request class, on `leaky-bucket` token
//! buckets. A caller is its key's name or its token's `sub` when it has
//! one, else its client address. `N/minute` allows a burst of N requests and refuses the
//! next at once, refilling evenly over the minute.
//!
//! The table of clients is bounded: a client whose buckets have refilled
//! completely is indistinguishable from a new one and is forgotten when room
//! is needed; if every client is busy, the least recently seen are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub use ep_ports::{BadRateLimit, RateLimit};
use leaky_bucket::RateLimiter;
use tokio::time::Instant;

use crate::access::Caller;

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// `POST /events`.
    Publish,
    /// `GET /events`, `GET /events/{id}`, `GET /stats`.
    Query,
    /// `DELETE /events`.
    Admin,
    /// Each message of `/ws/publish`.
    WsPublish,
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
    /// `RATE_LIMIT_WS_PUBLISH`.
    pub ws_publish: RateLimit,
    /// Most client addresses tracked at once.
    pub max_clients: usize,
}

impl Default for RateLimitConfig {
    /// The contract's limits: 200 publishes, 600 queries and 10 deletes a
    /// minute, and 100 WebSocket publishes a second, per caller.
    fn default() -> Self {
        Self {
            publish: RateLimit::per_minute(200),
            query: RateLimit::per_minute(600),
            admin: RateLimit::per_minute(10),
            ws_publish: RateLimit {
                count: 100,
                per: Duration::from_secs(1),
            },
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

/// (tokens per step, step) refilling `count` tokens over `per`.
fn refill(limit: RateLimit) -> (usize, Duration) {
    {
        let count = limit.count.max(1);
        let step = limit.per / count;
        if step >= MIN_STEP {
            (1, step)
        } else {
            let per_step =
                (u128::from(count) * MIN_STEP.as_nanos()).div_ceil(limit.per.as_nanos().max(1));
            (usize::try_from(per_step).unwrap_or(usize::MAX), MIN_STEP)
        }
    }
}

fn bucket(limit: RateLimit) -> RateLimiter {
    {
        let (refill, interval) = refill(limit);
        let count = limit.count.max(1) as usize;
        RateLimiter::builder()
            .max(count)
            .initial(count)
            .refill(refill)
            .interval(interval)
            .build()
    }
}

/// What a caller's allowance is kept under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// An anonymous caller (or a legacy key): its client address.
    Address(IpAddr),
    /// A named key (`key:<name>`) or a token (`sub:<sub>`).
    Name(String),
}

impl RateKey {
    /// The key of `caller`.
    pub fn of(caller: &Caller) -> Self {
        match caller.principal.identity.rate_key() {
            Some(name) => RateKey::Name(name),
            None => RateKey::Address(caller.address),
        }
    }
}

struct Client {
    /// Per class: the limit the bucket was made for, and the bucket.
    buckets: [Option<(RateLimit, RateLimiter)>; 4],
    last_seen: Instant,
}

/// Per-caller rate limits.
pub struct ClientRateLimits {
    config: RateLimitConfig,
    clients: Mutex<HashMap<RateKey, Client>>,
    /// After this long unseen, a client's buckets are full again.
    forget_after: Duration,
}

impl ClientRateLimits {
    /// Limits with `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        let forget_after = [
            config.publish,
            config.query,
            config.admin,
            config.ws_publish,
        ]
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
            RateClass::WsPublish => self.config.ws_publish,
        }
    }

    /// Takes one request of `class` from `caller`'s allowance: its own
    /// limit if its key has one (a key's publish limit is one allowance for
    /// REST and WebSocket together), else the configured one.
    ///
    /// # Errors
    /// `RateLimited` when the allowance is used up.
    pub fn check(&self, caller: &Caller, class: RateClass) -> Result<(), RateLimited> {
        let own = &caller.principal.limits;
        let (class, limit) = match class {
            RateClass::Publish | RateClass::WsPublish if own.publish.is_some() => {
                (RateClass::Publish, own.publish)
            }
            RateClass::Query => (class, own.query),
            _ => (class, None),
        };
        let limit = limit.unwrap_or_else(|| self.limit(class));
        self.take(RateKey::of(caller), class, limit)
    }

    /// Takes one request of `class` from the allowance kept under `key`.
    ///
    /// # Errors
    /// `RateLimited` when the allowance is used up.
    pub fn check_key(&self, key: RateKey, class: RateClass) -> Result<(), RateLimited> {
        self.take(key, class, self.limit(class))
    }

    fn take(&self, client: RateKey, class: RateClass, limit: RateLimit) -> Result<(), RateLimited> {
        let now = Instant::now();
        // Entries are replaced whole, so a poisoned lock guards a usable table.
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !clients.contains_key(&client) && clients.len() >= self.config.max_clients {
            self.make_room(&mut clients, now);
        }
        let entry = clients.entry(client).or_insert_with(|| Client {
            buckets: [None, None, None, None],
            last_seen: now,
        });
        entry.last_seen = now;
        let slot = &mut entry.buckets[class as usize];
        // A key whose limit changed (a reload) starts a bucket of the new size.
        if slot
            .as_ref()
            .is_some_and(|(made_for, _)| *made_for != limit)
        {
            *slot = None;
        }
        let (_, bucket) = slot.get_or_insert_with(|| (limit, bucket(limit)));
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
    fn make_room(&self, clients: &mut HashMap<RateKey, Client>, now: Instant) {
        let before = clients.len();
        clients.retain(|_, c| now.duration_since(c.last_seen) < self.forget_after);
        if clients.len() < self.config.max_clients {
            tracing::debug!(
                forgotten = before - clients.len(),
                "idle rate-limit entries forgotten"
            );
            return;
        }
        let mut seen: Vec<(Instant, RateKey)> = clients
            .iter()
            .map(|(key, c)| (c.last_seen, key.clone()))
            .collect();
        let drop_count = (seen.len() / 8).max(1);
        seen.select_nth_unstable_by_key(drop_count - 1, |(at, _)| *at);
        for (_, key) in &seen[..drop_count] {
            clients.remove(key);
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
            ws_publish: per_minute(6000),
            max_clients,
        })
    }

    fn addr(n: u32) -> RateKey {
        RateKey::Address(ip(n))
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_n_passes_and_the_next_is_refused_until_refilled() {
        let l = limits(5, 100);
        for _ in 0..5 {
            assert!(l.check_key(addr(1), RateClass::Publish).is_ok());
        }
        let refused = l.check_key(addr(1), RateClass::Publish).expect_err("sixth");
        assert_eq!(refused.retry_after, Duration::from_secs(12));
        // Other clients and other classes are separate.
        assert!(l.check_key(addr(2), RateClass::Publish).is_ok());
        assert!(l.check_key(addr(1), RateClass::Query).is_ok());
        tokio::time::advance(Duration::from_secs(12)).await;
        assert!(l.check_key(addr(1), RateClass::Publish).is_ok());
        assert!(l.check_key(addr(1), RateClass::Publish).is_err());
    }

    /// A rate of one token per millisecond or slower refills one token at
    /// a time; a faster one refills in millisecond steps of enough tokens
    /// (rounded up) to keep its rate.
    #[test]
    fn the_refill_step_keeps_the_configured_rate() {
        let rate = |count, per| RateLimit { count, per };
        let second = Duration::from_secs(1);
        assert_eq!(refill(rate(100, second)), (1, Duration::from_millis(10)));
        assert_eq!(refill(rate(1_000, second)), (1, MIN_STEP));
        assert_eq!(refill(rate(1_500, second)), (2, MIN_STEP));
        assert_eq!(refill(rate(1_000_000, second)), (1_000, MIN_STEP));
        assert_eq!(
            refill(rate(10, Duration::from_secs(60))),
            (1, Duration::from_secs(6))
        );
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
            ws_publish: per_minute(1),
            max_clients: 10,
        });
        for _ in 0..10_000 {
            assert!(l.check_key(addr(1), RateClass::Publish).is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_client_table_stays_bounded_under_a_flood_of_addresses() {
        let l = limits(5, 1_000);
        for n in 0..50_000 {
            let _ = l.check_key(addr(n), RateClass::Publish);
            assert!(l.tracked_clients() <= 1_000);
        }
    }

    /// A table full of active clients drops its least recently seen eighth
    /// for a newcomer, not one at a time (a flood of new addresses would
    /// otherwise scan the table for each of them); the newest stay.
    #[tokio::test(start_paused = true)]
    async fn a_table_full_of_active_clients_drops_its_oldest_eighth() {
        let l = limits(1, 16);
        for n in 0..16 {
            l.check_key(addr(n), RateClass::Publish).expect("first");
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        l.check_key(addr(100), RateClass::Publish)
            .expect("newcomer");
        assert_eq!(l.tracked_clients(), 16 - 2 + 1);
        for n in 2..16 {
            assert!(
                l.check_key(addr(n), RateClass::Publish).is_err(),
                "client {n} kept its spent bucket"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_clients_are_forgotten_first_and_lose_nothing_by_it() {
        let l = limits(2, 3);
        for n in 0..3 {
            l.check_key(addr(n), RateClass::Publish)
                .expect("first request");
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        // A busy client keeps its state while idle ones are forgotten.
        l.check_key(addr(0), RateClass::Publish).expect("refilled");
        l.check_key(addr(0), RateClass::Publish)
            .expect("second of the burst");
        l.check_key(addr(9), RateClass::Publish).expect("newcomer");
        assert!(l.tracked_clients() <= 3);
        assert!(
            l.check_key(addr(0), RateClass::Publish).is_err(),
            "busy client was not reset"
        );
    }

    fn keyed(name: &str, own: ep_ports::OwnLimits) -> Caller {
        let mut principal = ep_ports::Principal::everything()
            .with_identity(ep_ports::Identity::Key(name.to_owned()));
        principal.limits = own;
        Caller::new(principal, ip(1))
    }

    #[tokio::test(start_paused = true)]
    async fn rest_and_websocket_publishes_have_separate_buckets_unless_a_key_sets_its_own() {
        let l = limits(2, 100);
        let plain = keyed("plain", ep_ports::OwnLimits::default());
        for _ in 0..2 {
            l.check(&plain, RateClass::Publish).expect("REST burst");
        }
        assert!(l.check(&plain, RateClass::Publish).is_err());
        l.check(&plain, RateClass::WsPublish)
            .expect("the WebSocket bucket is whole");
        let own = keyed(
            "own",
            ep_ports::OwnLimits {
                publish: Some(per_minute(3)),
                query: Some(per_minute(1)),
            },
        );
        l.check(&own, RateClass::Publish).expect("1");
        l.check(&own, RateClass::WsPublish).expect("2");
        l.check(&own, RateClass::Publish).expect("3");
        assert!(
            l.check(&own, RateClass::WsPublish).is_err(),
            "one allowance"
        );
        l.check(&own, RateClass::Query)
            .expect("its own query limit");
        assert!(l.check(&own, RateClass::Query).is_err());
        assert_eq!(l.tracked_clients(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_whose_limit_changes_gets_a_bucket_of_the_new_size() {
        let l = limits(100, 100);
        let with = |count| {
            keyed(
                "k",
                ep_ports::OwnLimits {
                    publish: Some(per_minute(count)),
                    query: None,
                },
            )
        };
        l.check(&with(1), RateClass::Publish).expect("1 of 1");
        assert!(l.check(&with(1), RateClass::Publish).is_err());
        for n in 0..3 {
            l.check(&with(3), RateClass::Publish)
                .unwrap_or_else(|_| panic!("{n} of 3"));
        }
        assert!(l.check(&with(3), RateClass::Publish).is_err());
    }
}
