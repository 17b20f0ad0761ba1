//! An `EventStore` on PostgreSQL: one store that several nodes share.
//!
//! Sequence numbers are assigned in commit order across every node: each
//! append takes the one counter row's lock, adds its batch's size and
//! inserts, in one statement (see `store.rs` for why a sequence would not
//! do). Payloads are kept as PostgreSQL `json` (see `schema.rs`). The schema
//! is versioned; migrations run at start-up under an advisory lock, and a
//! database written by a newer build is refused.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod counts;
mod error;
mod job_state;
mod open;
mod rows;
mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use open::{OpenError, PostgresOptions};
pub use store::PostgresStore;

#[cfg(test)]
mod tests {
    use super::testing::TempSchema;
    use super::*;
    use ep_conformance::services::{self, Service};

    /// A store in a schema of its own, or `None` (said loudly) when the test
    /// database cannot be reached.
    async fn temp_store() -> Option<(PostgresStore, TempSchema)> {
        let base = services::server(Service::Postgres).await?;
        let schema = match TempSchema::create(&base, services::unique_name("ep_test")).await {
            Ok(schema) => schema,
            Err(e) => {
                services::unreachable(Service::Postgres, &base, e);
                return None;
            }
        };
        let store = PostgresStore::open(&schema.url(), PostgresOptions::default())
            .await
            .expect("open");
        Some((store, schema))
    }

    ep_conformance::conformance_suite!(skippable temp_store());
    ep_conformance::job_state_suite!(skippable temp_store());
}
