//! One INFO line per refusal an operator should see (a refused key, a rate
//! limit, a slow subscriber closed), with the client address and the route,
//! never the key; at most [`LINES_PER_SECOND`] lines of each kind a second,
//! so that a flood cannot flood the log: the next line says how many were
//! left out.

use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines of one kind written in one second, at most.
pub(crate) const LINES_PER_SECOND: u32 = 5;

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A missing or wrong key (401, close 4001).
    Credential,
    /// A key without the role the route needs (403).
    Forbidden,
    /// Over a rate limit (429, or the WebSocket error reply).
    RateLimited,
    /// Too many WebSocket connections from one client (4002).
    TooManyConnections,
    /// A subscriber closed for not reading (4008).
    SlowSubscriber,
}

impl Refusal {
    const ALL: [Refusal; 5] = [
        Refusal::Credential,
        Refusal::Forbidden,
        Refusal::RateLimited,
        Refusal::TooManyConnections,
        Refusal::SlowSubscriber,
    ];

    fn message(self) -> &'static str {
        match self {
            Refusal::Credential => "refused: missing or failing key or token",
            Refusal::Forbidden => "refused: the credential may not do this",
            Refusal::RateLimited => "refused: rate limit exceeded",
            Refusal::TooManyConnections => {
                "refused: too many WebSocket connections from one client"
            }
            Refusal::SlowSubscriber => "closed a slow subscriber (4008)",
        }
    }
}

#[derive(Debug)]
struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
}

/// The log of refusals, rate-limited per kind.
#[derive(Debug)]
pub struct RefusalLog {
    windows: [Mutex<Window>; 5],
}

impl Default for RefusalLog {
    fn default() -> Self {
        let window = || {
            Mutex::new(Window {
                started: Instant::now(),
                written: 0,
                suppressed: 0,
            })
        };
        Self {
            windows: [window(), window(), window(), window(), window()],
        }
    }
}

impl RefusalLog {
    /// Notes a refusal of `client` on `route`; writes it unless this kind
    /// already wrote its lines this second. Returns whether it was written.
    pub(crate) fn note(&self, kind: Refusal, client: IpAddr, route: &str) -> bool {
        self.note_by(kind, client, route, None)
    }

    /// As [`RefusalLog::note`], naming the caller when it is known (a key's
    /// name, `token`, `api_key`: never a secret).
    pub(crate) fn note_by(
        &self,
        kind: Refusal,
        client: IpAddr,
        route: &str,
        caller: Option<&str>,
    ) -> bool {
        let index = Refusal::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let suppressed = {
            let mut w = self.windows[index]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if w.started.elapsed() >= Duration::from_secs(1) {
                w.started = Instant::now();
                w.written = 0;
            }
            if w.written >= LINES_PER_SECOND {
                w.suppressed += 1;
                return false;
            }
            w.written += 1;
            std::mem::take(&mut w.suppressed)
        };
        if suppressed > 0 {
            tracing::info!(%client, route, caller, suppressed, "{} ({suppressed} more like it not logged)", kind.message());
        } else {
            tracing::info!(%client, route, caller, "{}", kind.message());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_writes_a_few_lines_a_second_and_the_next_one_counts_the_rest() {
        let log = RefusalLog::default();
        let client: IpAddr = "203.0.113.7".parse().expect("ip");
        let written = (0..1_000)
            .filter(|_| log.note(Refusal::RateLimited, client, "POST /api/v1/events"))
            .count();
        assert_eq!(written, LINES_PER_SECOND as usize);
        // Other kinds have their own allowance.
        assert!(log.note(Refusal::Credential, client, "GET /api/v1/stats"));
        let w = log.windows[2].lock().expect("lock");
        assert_eq!(w.suppressed, 1_000 - u64::from(LINES_PER_SECOND));
    }
}
