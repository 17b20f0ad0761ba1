//! Jobs' leases and cursors in the database file, written by the writer
//! connection (so a saved cursor is as durable as a committed event).

use std::time::Duration;

use async_trait::async_trait;
use ep_ports::{JobState, StoreError, Timestamp};
use rusqlite::{params, OptionalExtension};

use crate::SqliteStore;

/// Microseconds since the epoch by this process's clock.
fn now_micros() -> i64 {
    Timestamp::now().as_micros()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl JobState for SqliteStore {
    async fn try_lease(&self, job: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
        self.write(move |conn| {
            let now = now_micros();
            // One statement: taken when absent, expired or the holder's own.
            let changed = conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                     expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
                params![job, holder, now.saturating_add(ttl), now],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![job, holder],
            )
            .map(drop)
        })
        .await
    }

    async fn cursor(&self, job: &str) -> Result<Option<u64>, StoreError> {
        let job = job.to_owned();
        let seq: Option<i64> = self
            .read(move |conn| {
                conn.query_row("SELECT seq FROM cursors WHERE name = ?1", [job], |r| {
                    r.get(0)
                })
                .optional()
            })
            .await?;
        Ok(seq.map(|s| u64::try_from(s).unwrap_or(0)))
    }

    async fn save_cursor(&self, job: &str, seq: u64) -> Result<(), StoreError> {
        let job = job.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                params![job, to_i64(seq)],
            )
            .map(drop)
        })
        .await
    }
}
