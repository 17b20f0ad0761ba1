//! Jobs' leases and cursors in tables beside the events, by the database's
//! clock, so that every node agrees when a lease has expired.

use std::time::Duration;

use async_trait::async_trait;
use ep_ports::{JobState, StoreError};

use crate::error::store_error;
use crate::PostgresStore;

#[async_trait]
impl JobState for PostgresStore {
    async fn try_lease(&self, job: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let micros = ttl.as_micros() as f64;
        // One statement: taken when absent, expired or the holder's own. Of
        // two at once, the second waits for the first's row lock and then
        // sees its holder: it changes nothing.
        let changed = client
            .execute(
                "INSERT INTO events_leases (name, holder, expires_at)
                 VALUES ($1, $2, clock_timestamp() + interval '1 microsecond' * $3::float8)
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,
                     expires_at = EXCLUDED.expires_at
                 WHERE events_leases.holder = EXCLUDED.holder
                    OR events_leases.expires_at <= clock_timestamp()",
                &[&job, &holder, &micros],
            )
            .await
            .map_err(|e| store_error(&e))?;
        Ok(changed == 1)
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM events_leases WHERE name = $1 AND holder = $2",
                &[&job, &holder],
            )
            .await
            .map_err(|e| store_error(&e))?;
        Ok(())
    }

    async fn cursor(&self, job: &str) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT seq FROM events_cursors WHERE name = $1", &[&job])
            .await
            .map_err(|e| store_error(&e))?;
        Ok(row.map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    async fn save_cursor(&self, job: &str, seq: u64) -> Result<(), StoreError> {
        let client = self.client().await?;
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        client
            .execute(
                "INSERT INTO events_cursors (name, seq) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq",
                &[&job, &seq],
            )
            .await
            .map_err(|e| store_error(&e))?;
        Ok(())
    }
}
