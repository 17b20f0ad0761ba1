//! Jobs' leases and cursors, held in memory: one process's own.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use ep_ports::{JobState, StoreError};

use crate::MemoryStore;

#[async_trait]
impl JobState for MemoryStore {
    async fn try_lease(&self, job: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut inner = self.checked()?;
        let now = Instant::now();
        let free = match inner.leases.get(job) {
            None => true,
            Some((held_by, until)) => held_by == holder || *until <= now,
        };
        if free {
            let until = now.checked_add(ttl).unwrap_or(now);
            inner
                .leases
                .insert(job.to_owned(), (holder.to_owned(), until));
        }
        Ok(free)
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError> {
        let mut inner = self.checked()?;
        if inner.leases.get(job).is_some_and(|(h, _)| h == holder) {
            inner.leases.remove(job);
        }
        Ok(())
    }

    async fn cursor(&self, job: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.checked()?.cursors.get(job).copied())
    }

    async fn save_cursor(&self, job: &str, seq: u64) -> Result<(), StoreError> {
        self.checked()?.cursors.insert(job.to_owned(), seq);
        Ok(())
    }
}
