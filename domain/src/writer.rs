//! The writer task: drains the queue, commits each batch in one transaction
//! (group commit), answers the publishers, then broadcasts in sequence order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ep_ports::{Broadcaster, Event, EventBatch, EventStore, NewEvent, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::commit_health::CommitHealth;

/// One accepted event and where to send its outcome.
pub(crate) struct Pending {
    pub event: NewEvent,
    pub reply: oneshot::Sender<Result<Arc<Event>, StoreError>>,
}

/// Yields this many times, collecting what arrives, before committing a
/// batch that is not full.
const LINGER_YIELDS: usize = 4;

/// Lets the publishers that are already running queue their events before a
/// batch is committed: a commit has a large fixed cost (every index leaf it
/// touches is written to the WAL), so a batch of 60 costs little more than
/// one of 20. Yielding (not sleeping) keeps an idle service's single event
/// from waiting: with nothing else runnable, the yields return at once.
async fn linger(queue: &mut mpsc::Receiver<Pending>, pending: &mut Vec<Pending>, max_batch: usize) {
    for _ in 0..LINGER_YIELDS {
        if pending.len() >= max_batch {
            return;
        }
        tokio::task::yield_now().await;
        while pending.len() < max_batch {
            match queue.try_recv() {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
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
    broadcaster: Arc<dyn Broadcaster>,
    depth: Arc<AtomicUsize>,
    health: Arc<CommitHealth>,
    max_batch: usize,
) {
    let mut pending = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut pending, max_batch).await > 0 {
        linger(&mut queue, &mut pending, max_batch).await;
        let n = pending.len();
        let (events, replies): (Vec<NewEvent>, Vec<_>) =
            pending.drain(..).map(|p| (p.event, p.reply)).unzip();
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
                let batch: EventBatch = stored.into_iter().map(Arc::new).collect();
                depth.fetch_sub(n, Ordering::AcqRel);
                for (event, reply) in batch.iter().zip(replies) {
                    // A publisher that went away still had its event stored.
                    let _ = reply.send(Ok(Arc::clone(event)));
                }
                if let Err(e) = broadcaster.publish(batch).await {
                    tracing::error!(error = %e, events = n, "committed events could not be broadcast");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = n, "a batch could not be committed; its publishers get an error");
                health.failed(&e);
                depth.fetch_sub(n, Ordering::AcqRel);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
    tracing::debug!("publish queue closed and drained; writer stops");
}
