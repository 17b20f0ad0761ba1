//! Whether the store is committing: the outcome of the last commit, which
//! readiness reports. A store that answers reads but cannot commit (a full
//! disk) must not look ready, or a load balancer keeps sending publishers
//! to a node that can store nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ep_ports::StoreError;
use tokio::time::Instant;

/// Least time between two write probes while commits fail.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The last commit's outcome, shared by the writer and readiness.
#[derive(Debug, Default)]
pub(crate) struct CommitHealth {
    /// Set while `state.failure` is `Some`: lets the writer's every
    /// successful commit skip the lock.
    failing: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failure: Option<StoreError>,
    last_probe: Option<Instant>,
}

impl CommitHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Each field is replaced whole: a poisoned lock guards usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A commit (or a write probe) succeeded.
    pub(crate) fn succeeded(&self) {
        if self.failing.load(Ordering::Acquire) {
            let mut state = self.state();
            if state.failure.take().is_some() {
                tracing::info!("the event store commits again");
            }
            self.failing.store(false, Ordering::Release);
        }
    }

    /// A commit (or a write probe) failed with `error`. Failures of one
    /// batch (a duplicate id) say nothing of the store and are not kept.
    pub(crate) fn failed(&self, error: &StoreError) {
        match error {
            StoreError::Unavailable(_) | StoreError::Full(_) | StoreError::Corrupt(_) => {
                let mut state = self.state();
                state.failure = Some(error.clone());
                self.failing.store(true, Ordering::Release);
            }
            StoreError::DuplicateId(_) => {}
        }
    }

    /// Why the last commit failed, if it did.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.state().failure.clone()
    }

    /// Whether a write probe may run now (at most one per
    /// [`PROBE_INTERVAL`]); if so, it counts as started.
    pub(crate) fn probe_due(&self) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        let due = state
            .last_probe
            .is_none_or(|last| now.duration_since(last) >= PROBE_INTERVAL);
        if due {
            state.last_probe = Some(now);
        }
        due
    }
}
