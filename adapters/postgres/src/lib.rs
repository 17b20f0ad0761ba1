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
mod plan;
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

    /// Once closed, the pool lends no connection: calls fail with
    /// `Unavailable` at once (the conformance case also allows a store to
    /// answer as before; this one must not keep connections open).
    #[tokio::test]
    async fn after_close_calls_fail_unavailable() {
        use ep_ports::{EventStore, StoreError};
        let Some((store, _schema)) = temp_store().await else {
            return;
        };
        store.ping().await.expect("ping while open");
        store.close().await.expect("close");
        assert!(
            matches!(store.ping().await, Err(StoreError::Unavailable(_))),
            "a ping after close"
        );
    }

    /// A query whose time range holds few events reads it through its
    /// index (on 2M events just filled, `since=` now walked the primary key
    /// for 0.25 s); one whose range holds more, or one for a session or a
    /// user, leaves the plan to PostgreSQL. The conformance case
    /// `time_range_queries_answer_exactly_over_many_events` checks the
    /// answers both ways.
    #[tokio::test]
    async fn a_short_time_range_is_read_through_its_index() {
        use ep_conformance::store::{
            fill_for_time_ranges, time_range_query, time_ranges, TIME_RANGE_EVENTS,
        };
        use ep_ports::{EventQuery, EventStore, EventType};
        use plan::Narrow::{Occurred, Received};

        let Some((store, _schema)) = temp_store().await else {
            return;
        };
        fill_for_time_ranges(&store).await;
        let client = store.client().await.expect("client");
        for (range, few) in time_ranges() {
            let query = time_range_query(Some(EventType::TIMER_TICK), range);
            let narrow = match (few, range.0) {
                (false, _) => None,
                (true, Some(_)) => Some(Received),
                (true, None) => Some(Occurred),
            };
            let chosen = plan::narrow_range(&client, &query).await.expect("plan");
            assert_eq!(chosen, narrow, "{query:?}");
        }
        // A read through the index of a range that holds more than it can
        // read (events came in since the count) gives up, and the query is
        // asked the usual way.
        for (range, few) in time_ranges() {
            let query = time_range_query(None, range);
            let narrow = if range.0.is_some() {
                Received
            } else {
                Occurred
            };
            let read = store::read_narrow(&client, &query, narrow)
                .await
                .expect("read");
            match read {
                Some(events) => {
                    assert!(few, "{query:?}");
                    assert_eq!(events, store.query(query).await.expect("query"));
                }
                None => assert!(!few, "{query:?}"),
            }
        }
        // A range of exactly RANGE_WALK_MAX events is still read through
        // its index.
        let edge = ep_conformance::at(TIME_RANGE_EVENTS - 1 - plan::RANGE_WALK_MAX);
        let edge = time_range_query(None, (Some(edge), None, None));
        let chosen = plan::narrow_range(&client, &edge).await.expect("plan");
        assert_eq!(chosen, Some(Received));
        let read = store::read_narrow(&client, &edge, Received).await;
        assert_eq!(read.expect("read").map(|e| e.len()), Some(100));
        let one_user = EventQuery {
            user_id: Some("u1".into()),
            ..time_range_query(None, time_ranges()[0].0)
        };
        assert_eq!(
            plan::narrow_range(&client, &one_user).await.expect("plan"),
            None
        );
    }
}
