//! What the writer does with the bus: offers each committed batch, but never
//! waits long for it, and gives a bus that fails or stalls a rest.
//!
//! The store is the truth and the bus only a head start: a batch the bus did
//! not take reaches every node's subscribers anyway, read from the store
//! when the node sees the hole it leaves or when its feed has been quiet (see
//! [`crate::hub`]). Waiting for a frozen bus would hold up every commit behind
//! it (a paused Redis answers nothing for its whole 5 s response timeout, per
//! batch), so a publish over the network gets [`BUS_BUDGET`] (an in-process
//! broadcaster gets no budget: its waiting is the pacing the writer needs when
//! the node's dispatcher is behind); one that fails or misses it
//! sends the batches of the next [`BUS_REST`] to the store's readers only,
//! after which the bus is offered batches again. One line is logged when the
//! bus is rested and one when it takes batches again, not one per batch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ep_ports::{Broadcaster, EventBatch};
use tokio::time::Instant;

/// The longest the writer waits for a bus across the network to take one
/// batch.
pub const BUS_BUDGET: Duration = Duration::from_millis(200);

/// How long batches go by the store only after the bus failed or missed
/// its budget.
pub(crate) const BUS_REST: Duration = Duration::from_secs(1);

/// The writer's side of the bus.
pub(crate) struct BusGate {
    broadcaster: Arc<dyn Broadcaster>,
    /// How long a publish may take (`None`: as long as it takes).
    budget: Option<Duration>,
    /// Until when the bus rests, if it does.
    resting_until: Option<Instant>,
    /// Events not offered to the bus since it was rested.
    skipped_in_rest: u64,
    /// Committed events never offered to the bus (or whose offer failed),
    /// all told: reported as a metric.
    skipped: Arc<AtomicU64>,
}

impl BusGate {
    /// The gate in front of `broadcaster`, giving each publish `budget`,
    /// counting what it skips in `skipped`.
    pub(crate) fn new(
        broadcaster: Arc<dyn Broadcaster>,
        budget: Option<Duration>,
        skipped: Arc<AtomicU64>,
    ) -> Self {
        Self {
            broadcaster,
            budget,
            resting_until: None,
            skipped_in_rest: 0,
            skipped,
        }
    }

    /// Offers `batch` to the bus unless it rests; waits at most its budget.
    pub(crate) async fn publish(&mut self, batch: EventBatch) {
        let n = batch.len() as u64;
        let now = Instant::now();
        if self.resting_until.is_some_and(|until| now < until) {
            self.skip(n);
            return;
        }
        let publish = self.broadcaster.publish(batch);
        let outcome = match self.budget {
            Some(budget) => tokio::time::timeout(budget, publish)
                .await
                .map_err(|_| format!("no answer within {} ms", budget.as_millis())),
            None => Ok(publish.await),
        };
        let failure = match outcome {
            Ok(Ok(())) => {
                if self.resting_until.take().is_some() {
                    tracing::info!(
                        skipped = self.skipped_in_rest,
                        "the bus takes batches again; the events it skipped reached other nodes through the store"
                    );
                    self.skipped_in_rest = 0;
                }
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(missed) => missed,
        };
        self.skip(n);
        if self.resting_until.is_none() {
            tracing::warn!(
                error = %failure,
                rest_ms = BUS_REST.as_millis() as u64,
                "committed events could not be broadcast; batches go by the store only for a while (every node reads them from there)"
            );
        }
        self.resting_until = Some(Instant::now() + BUS_REST);
    }

    fn skip(&mut self, n: u64) {
        self.skipped_in_rest += n;
        self.skipped.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use ep_ports::{BroadcastError, EventFeed};

    use super::*;

    /// What the fake bus does with each publish, in turn; then it takes them.
    #[derive(Clone, Copy, Debug)]
    enum Answer {
        Takes,
        Fails,
        Hangs,
        /// Takes it after 5 s (an in-process feed with no room).
        TakesSlowly,
    }

    #[derive(Default)]
    struct FakeBus {
        answers: Mutex<Vec<Answer>>,
        offered: AtomicU64,
    }

    impl FakeBus {
        fn answering(answers: &[Answer]) -> Arc<Self> {
            let mut answers = answers.to_vec();
            answers.reverse();
            Arc::new(Self {
                answers: Mutex::new(answers),
                offered: AtomicU64::new(0),
            })
        }

        fn offered(&self) -> u64 {
            self.offered.load(Ordering::Relaxed)
        }
    }

    #[async_trait]
    impl Broadcaster for FakeBus {
        async fn publish(&self, _: EventBatch) -> Result<(), BroadcastError> {
            self.offered.fetch_add(1, Ordering::Relaxed);
            let answer = self.answers.lock().unwrap().pop().unwrap_or(Answer::Takes);
            match answer {
                Answer::Takes => Ok(()),
                Answer::Fails => Err(BroadcastError::Unavailable("refused".into())),
                Answer::Hangs => std::future::pending().await,
                Answer::TakesSlowly => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(())
                }
            }
        }

        async fn subscribe(&self) -> Result<EventFeed, BroadcastError> {
            Err(BroadcastError::Unavailable("not in this test".into()))
        }

        async fn ping(&self) -> Result<(), BroadcastError> {
            Ok(())
        }
    }

    fn batch(n: u64) -> EventBatch {
        crate::testing::batch(1..=n)
    }

    fn gate(bus: &Arc<FakeBus>) -> (BusGate, Arc<AtomicU64>) {
        gate_with(bus, Some(BUS_BUDGET))
    }

    fn gate_with(bus: &Arc<FakeBus>, budget: Option<Duration>) -> (BusGate, Arc<AtomicU64>) {
        let skipped = Arc::new(AtomicU64::new(0));
        let broadcaster: Arc<dyn Broadcaster> = bus.clone();
        (
            BusGate::new(broadcaster, budget, Arc::clone(&skipped)),
            skipped,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_budget_a_slow_in_process_feed_paces_the_writer_and_nothing_is_skipped() {
        let bus = FakeBus::answering(&[Answer::TakesSlowly, Answer::TakesSlowly]);
        let (mut paced, skipped) = gate_with(&bus, None);
        let started = Instant::now();
        for _ in 0..3 {
            paced.publish(batch(2)).await;
        }
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(bus.offered(), 3);
        assert_eq!(skipped.load(Ordering::Relaxed), 0);
        // With a budget the same feed would have been skipped.
        let bus = FakeBus::answering(&[Answer::TakesSlowly]);
        let (mut budgeted, skipped) = gate(&bus);
        budgeted.publish(batch(2)).await;
        assert_eq!(skipped.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bus_that_takes_every_batch_is_offered_every_batch() {
        let bus = FakeBus::answering(&[]);
        let (mut gate, skipped) = gate(&bus);
        for _ in 0..5 {
            gate.publish(batch(3)).await;
        }
        assert_eq!(bus.offered(), 5);
        assert_eq!(skipped.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_bus_holds_the_writer_for_its_budget_once_then_rests() {
        let bus = FakeBus::answering(&[Answer::Hangs]);
        let (mut gate, skipped) = gate(&bus);
        let started = Instant::now();
        gate.publish(batch(2)).await;
        assert_eq!(started.elapsed(), BUS_BUDGET);
        // Resting: later batches are not offered and cost no time.
        for _ in 0..10 {
            gate.publish(batch(3)).await;
        }
        assert_eq!(started.elapsed(), BUS_BUDGET);
        assert_eq!(bus.offered(), 1);
        assert_eq!(skipped.load(Ordering::Relaxed), 2 + 30);
        // After the rest, the bus is offered batches again.
        tokio::time::advance(BUS_REST).await;
        gate.publish(batch(4)).await;
        gate.publish(batch(4)).await;
        assert_eq!(bus.offered(), 3);
        assert_eq!(skipped.load(Ordering::Relaxed), 32);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_bus_rests_and_each_failure_after_a_rest_starts_another() {
        let bus = FakeBus::answering(&[Answer::Fails, Answer::Fails]);
        let (mut gate, skipped) = gate(&bus);
        gate.publish(batch(1)).await;
        gate.publish(batch(1)).await;
        assert_eq!(bus.offered(), 1);
        tokio::time::advance(BUS_REST).await;
        // Fails again: another rest.
        gate.publish(batch(1)).await;
        gate.publish(batch(1)).await;
        assert_eq!(bus.offered(), 2);
        tokio::time::advance(BUS_REST - Duration::from_millis(1)).await;
        gate.publish(batch(1)).await;
        assert_eq!(bus.offered(), 2, "still resting");
        tokio::time::advance(Duration::from_millis(1)).await;
        gate.publish(batch(1)).await;
        assert_eq!(bus.offered(), 3);
        assert_eq!(skipped.load(Ordering::Relaxed), 5);
    }
}
