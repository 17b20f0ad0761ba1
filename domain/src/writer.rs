//! The writer task: drains the queue, commits each batch in one transaction
//! (group commit), answers the publishers, then broadcasts in sequence order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ep_ports::{Event, EventBatch, EventStore, NewEvent, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::bus_gate::BusGate;
use crate::commit_health::CommitHealth;

/// What the writer is handed: one accepted event, or a group that is
/// committed in one transaction (a batch publish), and where to send the
/// outcome.
pub(crate) enum Pending {
    /// One event.
    One {
        event: NewEvent,
        reply: oneshot::Sender<Result<Stored, StoreError>>,
    },
    /// Events stored together or not at all, answered together.
    Group {
        events: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Vec<Stored>, StoreError>>,
    },
}

/// What became of one accepted event once its batch was committed.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    /// Stored now.
    New(Arc<Event>),
    /// Its idempotency key was held by this earlier event of the same
    /// content: nothing was stored.
    Repeat(Arc<Event>),
    /// Its idempotency key was held by this earlier event of other content:
    /// nothing was stored.
    Conflict(Arc<Event>),
}

/// A committed publish: the stored event, and whether an earlier publish
/// with the same idempotency key stored it (a repeat: nothing new was
/// stored). Derefs to the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stored event.
    pub event: Arc<Event>,
    /// Stored by an earlier publish with the same idempotency key.
    pub repeat: bool,
}

impl Published {
    pub(crate) fn from_stored(stored: Stored) -> Result<Self, crate::PublishError> {
        match stored {
            Stored::New(event) => Ok(Self {
                event,
                repeat: false,
            }),
            Stored::Repeat(event) => Ok(Self {
                event,
                repeat: true,
            }),
            Stored::Conflict(event) => Err(crate::PublishError::Conflict(event.id.clone())),
        }
    }
}

impl std::ops::Deref for Published {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

/// Whether `stored` says what `sent` says (all but id, receipt time, seq).
fn same_content(stored: &Event, sent: &NewEvent) -> bool {
    stored.event_type == sent.event_type
        && stored.source == sent.source
        && stored.session_id == sent.session_id
        && stored.user_id == sent.user_id
        && stored.payload == sent.payload
        && stored.occurred_at == sent.occurred_at
}

/// Where the outcome of each part of a committed batch goes.
enum Reply {
    One(oneshot::Sender<Result<Stored, StoreError>>),
    Group(usize, oneshot::Sender<Result<Vec<Stored>, StoreError>>),
}

/// Yields this many times, collecting what arrives, before committing a
/// batch that is not full.
const LINGER_YIELDS: usize = 4;

/// Lets the publishers that are already running queue their events before a
/// batch is committed: a commit has a large fixed cost (every index leaf it
/// touches is written to the WAL), so a batch of 60 costs little more than
/// one of 20. Yielding (not sleeping) keeps an idle service's single event
/// from waiting: with nothing else runnable, the yields return at once.
async fn linger(queue: &mut mpsc::Receiver<Pending>, batch: &mut Batch) {
    for _ in 0..LINGER_YIELDS {
        if batch.full() {
            return;
        }
        tokio::task::yield_now().await;
        batch.take_ready(queue);
    }
}

impl Pending {
    /// How many events it holds.
    fn len(&self) -> usize {
        match self {
            Pending::One { .. } => 1,
            Pending::Group { events, .. } => events.len(),
        }
    }
}

/// What the next transaction will hold: whole `Pending`s, at most
/// `max_batch` events unless a single group is larger; what did not fit
/// waits in `carry` for the next one.
struct Batch {
    pending: Vec<Pending>,
    events: usize,
    max_batch: usize,
    carry: Option<Pending>,
}

impl Batch {
    fn full(&self) -> bool {
        self.carry.is_some() || self.events >= self.max_batch
    }

    /// Adds `p`, or keeps it for the next transaction if it does not fit.
    fn add(&mut self, p: Pending) {
        if self.events > 0 && self.events + p.len() > self.max_batch {
            self.carry = Some(p);
        } else {
            self.events += p.len();
            self.pending.push(p);
        }
    }

    /// Adds what is already queued, while there is room.
    fn take_ready(&mut self, queue: &mut mpsc::Receiver<Pending>) {
        while !self.full() {
            match queue.try_recv() {
                Ok(p) => self.add(p),
                Err(_) => break,
            }
        }
    }

    /// Waits for the first of the next transaction (the carried one, if
    /// any); `false` once the queue is closed and drained.
    async fn start(&mut self, queue: &mut mpsc::Receiver<Pending>) -> bool {
        self.events = 0;
        let first = match self.carry.take() {
            Some(p) => p,
            None => match queue.recv().await {
                Some(p) => p,
                None => return false,
            },
        };
        self.add(first);
        self.take_ready(queue);
        true
    }
}

/// Runs until the queue is closed and drained.
///
/// When idle, one event is committed as soon as it arrives; under load,
/// whatever queued up during the previous commit (up to `max_batch`) goes into
/// the next transaction, so batches grow with the load by themselves.
pub(crate) async fn run_writer(
    mut queue: mpsc::Receiver<Pending>,
    store: Arc<dyn EventStore>,
    mut bus: BusGate,
    depth: Arc<AtomicUsize>,
    health: Arc<CommitHealth>,
    max_batch: usize,
) {
    let mut batch = Batch {
        pending: Vec::with_capacity(max_batch),
        events: 0,
        max_batch,
        carry: None,
    };
    while batch.start(&mut queue).await {
        linger(&mut queue, &mut batch).await;
        let mut events = Vec::with_capacity(batch.events);
        let mut replies = Vec::with_capacity(batch.pending.len());
        for p in batch.pending.drain(..) {
            match p {
                Pending::One { event, reply } => {
                    events.push(event);
                    replies.push(Reply::One(reply));
                }
                Pending::Group {
                    events: group,
                    reply,
                } => {
                    replies.push(Reply::Group(group.len(), reply));
                    events.extend(group);
                }
            }
        }
        let n = events.len();
        // What each keyed event was, to tell a repeat from a conflict when
        // the store answers with an earlier holder of its key. An event
        // without a key is always stored new: a batch without keys (the
        // usual one) keeps nothing.
        let sent: Vec<Option<NewEvent>> = if events.iter().any(|e| e.idempotency.is_some()) {
            events
                .iter()
                .map(|e| e.idempotency.is_some().then(|| e.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let started = tokio::time::Instant::now();
        let outcome = store.append(events).await;
        tracing::trace!(
            events = n,
            micros = started.elapsed().as_micros() as u64,
            "batch appended"
        );
        match outcome {
            Ok(stored) => {
                health.succeeded();
                let outcomes: Vec<Stored> = stored
                    .into_iter()
                    .enumerate()
                    .map(|(i, event)| {
                        let event = Arc::new(event);
                        match sent.get(i).and_then(Option::as_ref) {
                            None => Stored::New(event),
                            Some(sent) if event.id == sent.id => Stored::New(event),
                            Some(sent) if same_content(&event, sent) => Stored::Repeat(event),
                            Some(_) => Stored::Conflict(event),
                        }
                    })
                    .collect();
                // Only what was stored now is new to subscribers.
                let batch: EventBatch = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        Stored::New(event) => Some(Arc::clone(event)),
                        Stored::Repeat(_) | Stored::Conflict(_) => None,
                    })
                    .collect();
                depth.fetch_sub(n, Ordering::AcqRel);
                // A publisher that went away still had its events stored.
                let mut outcomes = outcomes.into_iter();
                for reply in replies {
                    match reply {
                        Reply::One(tx) => {
                            if let Some(outcome) = outcomes.next() {
                                let _ = tx.send(Ok(outcome));
                            }
                        }
                        Reply::Group(k, tx) => {
                            let _ = tx.send(Ok(outcomes.by_ref().take(k).collect()));
                        }
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                bus.publish(batch).await;
            }
            Err(e) => {
                tracing::error!(error = %e, events = n, "a batch could not be committed; its publishers get an error");
                health.failed(&e);
                depth.fetch_sub(n, Ordering::AcqRel);
                for reply in replies {
                    let _ = match reply {
                        Reply::One(tx) => tx.send(Err(e.clone())).is_ok(),
                        Reply::Group(_, tx) => tx.send(Err(e.clone())).is_ok(),
                    };
                }
            }
        }
    }
    tracing::debug!("publish queue closed and drained; writer stops");
}
