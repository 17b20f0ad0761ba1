//! The count of confirmed live subscriptions, shared by the fan-out (which
//! changes it) and the readiness and stats routes (which report it).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A shared count of live subscriptions. Clones share the count.
#[derive(Debug, Clone, Default)]
pub struct SubscriberGauge(Arc<AtomicUsize>);

impl SubscriberGauge {
    /// The current count.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn increment(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn decrement(&self) {
        // Saturating: a stray extra call must not wrap the count.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}
