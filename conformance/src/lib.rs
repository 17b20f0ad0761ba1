//! The conformance suites every adapter of a port runs: one async function
//! per promise of the port, and a macro that turns them all into tests.
//!
//! ```ignore
//! ep_conformance::conformance_suite!(async { (MyStore::open_temp().await, ()) });
//! ep_conformance::broadcaster_suite!(async { MyBusHarness::new().await });
//! ```
//! For stores, the expression is evaluated once per test and must give
//! `(store, guard)`: a fresh, empty store and whatever must outlive it (a
//! temporary folder, or `()`). For broadcasters it gives a
//! [`BroadcasterHarness`]: nodes on a bus of their own. The calling crate
//! needs `tokio` (macros, rt) as a dev-dependency.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod broadcaster;
pub mod containers;
mod exit;
pub mod job_state;
mod link;
pub mod lrs;
pub mod services;
pub mod store;

pub use broadcaster::{BroadcasterHarness, LinkedHarness, Node};
pub use link::Link;
pub use store::{at, new_event, BASE_MICROS};

/// Expands to one `#[tokio::test]` per EventStore conformance case. With
/// `skippable`, the factory gives an `Option`: `None` skips the case (the
/// factory has said why, see [`services::unreachable`]). The argument is an
/// expression (usually an `async` block) that yields `(store, guard)`.
#[macro_export]
macro_rules! conformance_suite {
    (skippable $factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            append_assigns_increasing_seq_in_batch_order,
            get_finds_by_id_and_answers_none_for_unknown,
            query_is_newest_first_and_limited,
            query_filters_combine_with_and,
            query_since_is_exclusive,
            occurred_at_is_kept_and_queried,
            an_idempotency_key_is_stored_once_within_its_window,
            an_append_unless_held_stores_all_or_none,
            stats_count_by_type_and_since,
            delete_before_removes_only_older_and_stats_follow,
            delete_all_never_reuses_seq,
            a_delete_step_is_bounded_by_its_limit_and_its_seq,
            a_delete_narrowed_to_a_user_or_a_type_takes_only_those,
            stats_agree_with_the_events_through_deletes_in_steps,
            a_duplicate_id_refuses_the_whole_batch,
            hostile_text_round_trips_verbatim,
            a_large_batch_is_stored_in_order,
            after_pages_oldest_first_without_gaps,
            the_earliest_and_latest_instants_order_like_any_other,
            a_write_probe_commits_nothing_visible,
            last_seq_is_the_highest_ever_assigned,
            ping_answers,
            scope_limits_query_and_after,
            time_range_queries_answer_exactly_over_many_events,
            scoped_queries_answer_exactly_over_many_events,
            since_queries_answer_exactly_over_events_stamped_out_of_order,
            closing_ends_the_store_cleanly,
        );
    };
    ($factory:expr) => {
        $crate::conformance_suite!(skippable async { Some($factory.await) });
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    // The second element (e.g. a temporary folder) lives
                    // until the case ends.
                    let Some((store, _guard)) = $factory.await else {
                        return;
                    };
                    $crate::store::$case(&store).await;
                }
            )*
        }
    };
}

/// Expands to one `#[tokio::test]` per JobState conformance case; the
/// factory is as for [`conformance_suite!`] (with `skippable`, an `Option`).
#[macro_export]
macro_rules! job_state_suite {
    (skippable $factory:expr) => {
        mod job_state_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::job_state_suite!(@cases $factory;
                a_lease_has_one_holder_until_released_or_expired,
                of_holders_asking_at_once_one_gets_the_lease,
                a_cursor_reads_back_the_last_seq_saved,
            );
        }
    };
    ($factory:expr) => {
        $crate::job_state_suite!(skippable async { Some($factory.await) });
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some((store, _guard)) = $factory.await else {
                    return;
                };
                $crate::job_state::$case(&store).await;
            }
        )*
    };
}

/// Expands to one `#[tokio::test]` per Broadcaster conformance case. The
/// argument is an expression (usually an `async` block) that yields a
/// [`BroadcasterHarness`] with a bus of its own; with `skippable`, an
/// `Option` of one (`None` skips: the harness has said why).
#[macro_export]
macro_rules! broadcaster_suite {
    (skippable $harness:expr) => {
        $crate::broadcaster_suite!(@cases $harness;
            every_feed_of_every_node_sees_every_batch_in_publish_order,
            batches_of_several_nodes_reach_every_node,
            a_feed_sees_only_what_is_published_after_it_opened,
            a_dropped_feed_stops_nothing,
            events_cross_intact,
            a_large_batch_arrives_in_order,
            a_feed_reports_a_gap_after_its_connection_comes_back,
            ping_answers,
        );
    };
    ($harness:expr) => {
        $crate::broadcaster_suite!(skippable async { Some($harness.await) });
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        mod broadcaster_conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(harness) = $harness.await else {
                        return;
                    };
                    $crate::broadcaster::$case(&harness).await;
                }
            )*
        }
    };
}
