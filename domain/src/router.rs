//! The event router: the bounded queue between publishers and the one writer,
//! and the live figures (queue depth, subscribers) the readiness and stats
//! routes report.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ep_ports::{Broadcaster, EventStore, IdempotencyKey, NewEvent, StoreError, Timestamp};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::bus_gate::BusGate;
use crate::commit_health::CommitHealth;
use crate::errors::PublishError;
use crate::gauge::SubscriberGauge;
use crate::limits::Limits;
use crate::stamper::Stamper;
use crate::validation::ValidEvent;
use crate::writer::{run_writer, Pending, Stored};

/// What the router reports under `router` in readiness and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RouterStatus {
    /// Confirmed live subscriptions.
    pub active_subscribers: usize,
    /// Events accepted but not yet committed.
    pub queue_size: usize,
}

/// Publishers enqueue here; one writer task commits.
pub struct EventRouter {
    /// Stamping and enqueueing happen under one lock so that acceptance
    /// order, id order, timestamp order and commit order are the same.
    intake: Mutex<Intake>,
    /// Events accepted and not yet committed (queued or in the writer's
    /// current batch). Never exceeds `limits.max_queue_size`.
    depth: Arc<AtomicUsize>,
    /// Confirmed subscriptions, maintained by the fan-out hub.
    subscribers: SubscriberGauge,
    /// The outcome of the writer's last commit.
    health: Arc<CommitHealth>,
    /// Committed events the bus did not take.
    bus_skipped: Arc<AtomicU64>,
    limits: Limits,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Intake {
    stamper: Stamper,
    /// `None` once shutdown began: nothing new is accepted.
    queue: Option<mpsc::Sender<Pending>>,
}

/// The answer to one accepted event: the stored event once it is committed.
pub(crate) type Receipt = oneshot::Receiver<Result<Stored, StoreError>>;
/// The answer to a group: its stored events, in order, once committed.
pub(crate) type GroupReceipt = oneshot::Receiver<Result<Vec<Stored>, StoreError>>;

impl EventRouter {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(
        store: Arc<dyn EventStore>,
        broadcaster: Arc<dyn Broadcaster>,
        limits: Limits,
    ) -> Self {
        let limits = Limits {
            max_queue_size: limits.max_queue_size.max(1),
            max_batch: limits.max_batch.max(1),
            ..limits
        };
        let (tx, rx) = mpsc::channel(limits.max_queue_size);
        let depth = Arc::new(AtomicUsize::new(0));
        let health = Arc::new(CommitHealth::default());
        let bus_skipped = Arc::new(AtomicU64::new(0));
        let writer = tokio::spawn(run_writer(
            rx,
            store,
            BusGate::new(broadcaster, limits.bus_budget, Arc::clone(&bus_skipped)),
            Arc::clone(&depth),
            Arc::clone(&health),
            limits.max_batch,
        ));
        Self {
            intake: Mutex::new(Intake {
                stamper: Stamper::default(),
                queue: Some(tx),
            }),
            depth,
            subscribers: SubscriberGauge::default(),
            health,
            bus_skipped,
            limits,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Stamps a validated event and queues it for the writer.
    pub(crate) fn submit(&self, event: ValidEvent) -> Result<Receipt, PublishError> {
        let (reply, receipt) = oneshot::channel();
        self.queue(1, |stamp| Pending::One {
            event: stamp(event),
            reply,
        })?;
        Ok(receipt)
    }

    /// Stamps validated events and queues them for the writer as one group,
    /// committed in one transaction; with `all_or_none`, an idempotency
    /// conflict of one stores none of them (see [`Pending::Group`]).
    pub(crate) fn submit_group(
        &self,
        events: Vec<ValidEvent>,
        all_or_none: bool,
    ) -> Result<GroupReceipt, PublishError> {
        let (reply, receipt) = oneshot::channel();
        self.queue(events.len(), |stamp| Pending::Group {
            events: events.into_iter().map(stamp).collect(),
            all_or_none,
            reply,
        })?;
        Ok(receipt)
    }

    /// Queues what `make` builds of `n` events, each stamped in turn, if
    /// the queue has room for all of them.
    fn queue(
        &self,
        n: usize,
        make: impl FnOnce(&mut dyn FnMut(ValidEvent) -> NewEvent) -> Pending,
    ) -> Result<(), PublishError> {
        let now = Timestamp::now();
        // A panic while holding this lock cannot leave the intake half
        // updated (each field is written once), so a poisoned lock is usable.
        let mut intake = self.intake.lock().unwrap_or_else(PoisonError::into_inner);
        let Intake { stamper, queue } = &mut *intake;
        let queue = queue.as_ref().ok_or(PublishError::ShuttingDown)?;
        let depth = self.depth.load(Ordering::Acquire);
        if depth >= self.limits.max_queue_size
            || (depth > 0 && depth + n > self.limits.max_queue_size)
        {
            return Err(PublishError::QueueFull);
        }
        let window = i64::try_from(self.limits.idempotency_window.as_micros()).unwrap_or(i64::MAX);
        let since = Timestamp::from_micros(
            now.as_micros()
                .saturating_sub(window)
                .max(Timestamp::MIN.as_micros()),
        );
        let mut stamp = |event: ValidEvent| {
            let (id, timestamp) = stamper.stamp(now);
            NewEvent {
                id,
                event_type: event.event_type,
                source: event.source,
                session_id: event.session_id,
                user_id: event.user_id,
                payload: event.payload,
                timestamp,
                occurred_at: event.occurred_at,
                idempotency: event
                    .idempotency_key
                    .map(|key| IdempotencyKey { key, since }),
            }
        };
        let pending = make(&mut stamp);
        // The channel holds at most max_queue_size messages and depth counts
        // events (at least one per message), so there is room; `Closed`
        // means the writer died.
        match queue.try_send(pending) {
            Ok(()) => {
                self.depth.fetch_add(n, Ordering::AcqRel);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(PublishError::QueueFull),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(PublishError::Store(
                StoreError::Unavailable("the writer task has stopped".into()),
            )),
        }
    }

    /// The live figures.
    pub fn status(&self) -> RouterStatus {
        RouterStatus {
            active_subscribers: self.subscribers.get(),
            queue_size: self.depth.load(Ordering::Acquire),
        }
    }

    /// Committed events the bus did not take since start (it failed or
    /// stalled, see [`crate::bus_gate`]): other nodes read them from the
    /// store.
    pub fn bus_skipped_events(&self) -> u64 {
        self.bus_skipped.load(Ordering::Relaxed)
    }

    /// The outcome of the last commit.
    pub(crate) fn health(&self) -> &CommitHealth {
        &self.health
    }

    /// The subscriber count this router reports, for the fan-out to maintain.
    pub fn subscriber_gauge(&self) -> SubscriberGauge {
        self.subscribers.clone()
    }

    /// Stops accepting, then waits until the writer has committed (and
    /// answered) everything accepted before. Idempotent.
    pub async fn shutdown(&self) {
        drop(
            self.intake
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .queue
                .take(),
        );
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            if let Err(e) = writer.await {
                tracing::error!(error = %e, "the writer task failed");
            }
        }
    }
}
