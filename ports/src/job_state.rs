//! The `JobState` port: what a background job (retention, the xAPI
//! connector) keeps in the store the nodes share: who runs it now (a
//! lease) and how far it has come (a cursor).

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreError;

/// A job's lease and cursor, kept where every node sees them.
///
/// Implementations MUST pass the shared conformance suite (crate
/// `ep-conformance`, `job_state_suite!`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobState: Send + Sync + 'static {
    /// Takes the lease `job` for `holder` until `ttl` from now, when it is
    /// free, expired, or `holder`'s already (a renewal), and answers whether
    /// `holder` holds it now. Of several holders asking at once, at most one
    /// holds an unexpired lease at any instant (by the store's clock).
    ///
    /// # Errors
    /// `Unavailable`: nothing changed.
    async fn try_lease(&self, job: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives the lease `job` up if `holder` holds it, so that another may
    /// take it at once; otherwise changes nothing.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError>;

    /// The seq the job `job` last saved (`None`: never saved).
    ///
    /// # Errors
    /// `Unavailable`.
    async fn cursor(&self, job: &str) -> Result<Option<u64>, StoreError>;

    /// Saves `seq` as how far `job` has come; durable when this returns
    /// `Ok`, as an append is.
    ///
    /// # Errors
    /// `Unavailable` or `Full`: the saved seq is the previous one.
    async fn save_cursor(&self, job: &str, seq: u64) -> Result<(), StoreError>;
}
