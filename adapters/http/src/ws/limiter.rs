//! WebSocket connections per client address (`MAX_WS_CONNECTIONS_PER_IP`),
//! publish and subscribe counted together. A slot frees when its guard drops.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts open WebSocket connections per address. The table holds only
/// addresses with an open connection, so it is bounded by them.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max_per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    /// At most `max_per_ip` connections per address (0 refuses all).
    pub fn new(max_per_ip: usize) -> Self {
        Self {
            max_per_ip,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for `ip`, or `None` when it has `max_per_ip` already.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Open connections from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ip)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .limiter
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_freed_on_drop() {
        let limiter = Arc::new(ConnectionLimiter::new(2));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = limiter.try_acquire(a).expect("first");
        let _s2 = limiter.try_acquire(a).expect("second");
        assert!(limiter.try_acquire(a).is_none());
        assert!(limiter.try_acquire(b).is_some());
        drop(s1);
        assert!(limiter.try_acquire(a).is_some());
    }

    #[test]
    fn zero_refuses_everyone_and_leaves_no_entry() {
        let limiter = Arc::new(ConnectionLimiter::new(0));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        assert!(limiter.try_acquire(a).is_none());
        assert_eq!(limiter.open.lock().expect("lock").len(), 0);
    }
}
