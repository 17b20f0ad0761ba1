//! Deletes in bounded steps, one at a time: a large delete never holds the
//! store's writer (and so every publish) for longer than one step.

use std::sync::Arc;
use std::time::Duration;

use ep_ports::{Deletion, EventStore, StoreError};
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

/// How long one step should hold the store: a publish committed behind a
/// step waits about this much longer.
pub(crate) const STEP_BUDGET: Duration = Duration::from_millis(10);
/// Rows in the first step; later steps are sized from the time it took.
pub(crate) const FIRST_STEP: usize = 1_000;
/// The fewest rows a step deletes, however slow the store is.
pub(crate) const MIN_STEP: usize = 100;
/// The most rows a step deletes, however fast the store is.
pub(crate) const MAX_STEP: usize = 20_000;

/// Why a delete in steps ended before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unfinished {
    /// A step failed; the steps before it are committed.
    Store(StoreError),
    /// The service began to stop: the delete ended after this many events,
    /// at a step's end.
    Stopped {
        /// Events deleted before it stopped.
        deleted: u64,
    },
}

/// Runs deletes in steps, one delete at a time on this node.
#[derive(Clone)]
pub(crate) struct Deleter {
    store: Arc<dyn EventStore>,
    /// Held for a whole delete: a second one waits for the first to end.
    turn: Arc<Mutex<()>>,
    /// Set when the service begins to stop: every delete ends at its next
    /// step, so that its caller gets an answer before the connections close.
    stopping: Arc<watch::Sender<bool>>,
}

impl Deleter {
    pub(crate) fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            turn: Arc::new(Mutex::new(())),
            stopping: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Ends every delete under way, and every one asked from now on, at
    /// its next step.
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Deletes what `select` makes of the last seq assigned when the delete
    /// starts (so that events published meanwhile are never chased); returns
    /// how many. A delete asked while another runs starts when that one
    /// ends. It runs to its end even when the caller stops waiting (a client
    /// that disconnects does not leave it half done), unless the service
    /// begins to stop ([`Deleter::stop`]).
    pub(crate) async fn delete(
        &self,
        select: impl FnOnce(u64) -> Deletion + Send + 'static,
    ) -> Result<u64, Unfinished> {
        let store = Arc::clone(&self.store);
        let turn = Arc::clone(&self.turn);
        let stopping = self.stopping.subscribe();
        tokio::spawn(async move {
            let _turn = turn.lock_owned().await;
            let through_seq = store.last_seq().await.map_err(Unfinished::Store)?;
            in_steps(store.as_ref(), select(through_seq), stopping).await
        })
        .await
        .map_err(|e| {
            Unfinished::Store(StoreError::Unavailable(format!("the delete stopped: {e}")))
        })?
    }
}

/// Deletes what `what` selects, step after step, until a step finds fewer
/// rows than it was allowed, or `stopping` is set.
async fn in_steps(
    store: &dyn EventStore,
    what: Deletion,
    mut stopping: watch::Receiver<bool>,
) -> Result<u64, Unfinished> {
    let started = Instant::now();
    let (mut step, mut deleted, mut steps) = (FIRST_STEP, 0_u64, 0_u64);
    loop {
        if *stopping.borrow_and_update() {
            tracing::info!(
                deleted,
                steps,
                "a delete stopped part way as the service stops: the events it reports deleted are gone, the rest are kept"
            );
            return Err(Unfinished::Stopped { deleted });
        }
        let at = Instant::now();
        let n = match store.delete_some(what.clone(), step).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(
                    deleted,
                    steps,
                    error = %e,
                    "a delete stopped part way: the events it reports deleted are gone, the rest are kept"
                );
                return Err(Unfinished::Store(e));
            }
        };
        deleted += n;
        steps += 1;
        tracing::debug!(
            rows = n,
            limit = step,
            took_us = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX),
            "delete step"
        );
        if n < step as u64 {
            break;
        }
        let took = at.elapsed();
        // As long again for everything else: publishes queued behind the
        // step commit, and the WAL checkpointer catches up with what the
        // step wrote instead of the next commit paying for it.
        tokio::select! {
            () = tokio::time::sleep(took) => {}
            // Checked at the top of the loop. An error (the deleter gone)
            // disables this branch, so the pause is still taken.
            Ok(()) = stopping.changed() => {}
        }
        step = next_step(step, took);
    }
    // Retention asks every interval; a delete that found nothing is news
    // only when debugging.
    let level_info = deleted > 0;
    macro_rules! finished {
        ($level:ident) => {
            tracing::$level!(
                deleted,
                steps,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        before = ?what.before.map(|b| b.to_string()),
        event_type = what.event_type.map(|t| t.as_str()),
                student = what.user_id.is_some(),
                "delete finished"
            )
        };
    }
    if level_info {
        finished!(info);
    } else {
        finished!(debug);
    }
    Ok(deleted)
}

/// The next step's rows: scaled towards [`STEP_BUDGET`] from the time the
/// last one took, at most doubling or halving, within [`MIN_STEP`,
/// `MAX_STEP`].
pub(crate) fn next_step(step: usize, took: Duration) -> usize {
    let scaled = if took.is_zero() {
        step.saturating_mul(2)
    } else {
        let ratio = STEP_BUDGET.as_secs_f64() / took.as_secs_f64();
        // A float to usize cast saturates; the clamps below bound it anyway.
        (step as f64 * ratio) as usize
    };
    scaled
        .clamp(step / 2, step.saturating_mul(2))
        .clamp(MIN_STEP, MAX_STEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count is every step's rows, and the delete ends at the first
    /// step that found fewer than it was allowed.
    #[tokio::test(start_paused = true)]
    async fn a_delete_adds_up_its_steps_and_ends_at_the_first_short_one() {
        let mut store = ep_ports::MockEventStore::new();
        let mut left = 2_500_u64;
        store
            .expect_delete_some()
            .times(2)
            .returning(move |_, limit| {
                let n = left.min(limit as u64);
                left -= n;
                Ok(n)
            });
        let (_stopping, stopped) = watch::channel(false);
        let deleted = in_steps(&store, Deletion::through(10_000), stopped)
            .await
            .expect("delete");
        assert_eq!(deleted, 2_500);
    }

    /// A delete under way ends at its next step once the service begins to
    /// stop, with the count so far; one asked afterwards deletes nothing.
    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_a_delete_at_its_next_step_with_the_count_so_far() {
        let (stop, stopping) = watch::channel(false);
        let mut store = ep_ports::MockEventStore::new();
        // The service begins to stop during the first step.
        store
            .expect_delete_some()
            .times(1)
            .returning(move |_, limit| {
                stop.send_replace(true);
                Ok(limit as u64)
            });
        assert_eq!(
            in_steps(&store, Deletion::through(1_000_000), stopping).await,
            Err(Unfinished::Stopped {
                deleted: FIRST_STEP as u64
            })
        );

        let mut store = ep_ports::MockEventStore::new();
        store.expect_last_seq().returning(|| Ok(1_000_000));
        store.expect_delete_some().never();
        let deleter = Deleter::new(Arc::new(store));
        deleter.stop();
        assert_eq!(
            deleter.delete(Deletion::through).await,
            Err(Unfinished::Stopped { deleted: 0 })
        );
    }

    #[test]
    fn a_step_grows_when_fast_shrinks_when_slow_and_stays_bounded() {
        let budget = STEP_BUDGET;
        assert_eq!(next_step(1_000, budget / 2), 2_000);
        assert_eq!(next_step(1_000, budget), 1_000);
        assert_eq!(next_step(1_000, budget * 2), 500);
        assert_eq!(next_step(1_000, Duration::from_secs(5)), 500);
        assert_eq!(next_step(1_000, Duration::ZERO), 2_000);
        assert_eq!(next_step(MAX_STEP, Duration::ZERO), MAX_STEP);
        assert_eq!(next_step(MIN_STEP, Duration::from_secs(1)), MIN_STEP);
        assert_eq!(next_step(1_000, budget * 4 / 5), 1_250);
    }
}
