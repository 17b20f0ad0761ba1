//! One subscriber's view of the hub: replay of stored events when resuming,
//! then live events, in seq order, with no gap and no duplicate between the
//! two.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ep_ports::{Event, EventFilter, StoreError, Timestamp};
use tokio::sync::mpsc;

use crate::delivery::{Delivery, SubState};
use crate::membership::Membership;

/// Stored events fetched per replay query.
const REPLAY_PAGE: usize = 500;

/// What a subscription yields next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<F> {
    /// An event to send, already encoded, and its seq.
    Event {
        /// The encoded event.
        frame: F,
        /// Its store sequence number.
        seq: u64,
        /// Its type (a transport that names each event, as SSE does).
        event_type: ep_ports::EventType,
        /// When this node received it, for a live delivery; `None` for one
        /// replayed from the store. What the transport measures its stages
        /// from (received to taken from the queue, to written).
        received: Option<Timestamp>,
    },
    /// The subscription fell too far behind and was evicted. Everything up to
    /// `last_seq` was delivered; resuming from it loses nothing.
    Evicted {
        /// The seq of the last event delivered (0 if none).
        last_seq: u64,
    },
}

/// A live subscription. Dropping it unsubscribes.
pub struct Subscription<F> {
    id: u64,
    hub: Arc<dyn Membership<F>>,
    rx: mpsc::Receiver<Delivery<F>>,
    state: Arc<SubState>,
    filter: EventFilter,
    /// The generation of `filter` (the hub's count of filter updates).
    generation: u64,
    /// The seq of the last event delivered (or the resume point).
    last_seq: u64,
    /// While catching up from the store: the fetched page not yet delivered,
    /// and whether the store had more.
    replay: Option<Replay>,
}

struct Replay {
    page: VecDeque<Event>,
    more: bool,
    /// The highest seq the store has returned: a store may return events
    /// a payload condition then drops, and the next page starts after them.
    read_to: u64,
}

impl<F: Clone + Send + Sync + 'static> Subscription<F> {
    pub(crate) fn new(
        id: u64,
        hub: Arc<dyn Membership<F>>,
        rx: mpsc::Receiver<Delivery<F>>,
        state: Arc<SubState>,
        filter: EventFilter,
        resume_after: Option<u64>,
    ) -> Self {
        Self {
            id,
            hub,
            rx,
            state,
            filter,
            generation: 0,
            last_seq: resume_after.unwrap_or(0),
            replay: resume_after.map(|after| Replay {
                page: VecDeque::new(),
                more: true,
                read_to: after,
            }),
        }
    }

    /// The public id: `sub_`, this node's random tag and the subscription's
    /// number on it (16 hex digits or more), unique across nodes.
    pub fn public_id(&self) -> String {
        format!("sub_{:08x}{:08x}", self.hub.node(), self.id)
    }

    /// The next event to send. Cancel-safe: dropping the future before it
    /// completes loses nothing.
    ///
    /// # Errors
    /// A store error while replaying.
    pub async fn next(&mut self) -> Result<Next<F>, StoreError> {
        loop {
            if let Some(replay) = &mut self.replay {
                if let Some(event) = replay.page.pop_front() {
                    return Ok(self.replayed(&event));
                }
                if replay.more {
                    let mut page = self
                        .hub
                        .store()
                        .after(
                            self.last_seq.max(replay.read_to),
                            self.filter.clone(),
                            REPLAY_PAGE,
                        )
                        .await?;
                    replay.more = page.len() == REPLAY_PAGE;
                    if let Some(last) = page.last() {
                        replay.read_to = last.seq;
                    }
                    // Stores match the indexed fields; the payload is
                    // matched here.
                    page.retain(|e| self.filter.matches(e));
                    replay.page = page.into();
                    continue;
                }
                // Caught up with the store. Go live, unless live events were
                // dropped meanwhile: then catch up from the store again.
                self.state.replaying.store(false, Ordering::Release);
                if self.state.lagged.swap(false, Ordering::AcqRel) {
                    self.state.replaying.store(true, Ordering::Release);
                    while self.rx.try_recv().is_ok() {}
                    replay.more = true;
                    continue;
                }
                self.replay = None;
            }
            match self.rx.recv().await {
                Some(d) => {
                    if let Some(next) = self.live(&d) {
                        return Ok(next);
                    }
                }
                // Only the hub drops the sender, and only to evict.
                None => {
                    return Ok(Next::Evicted {
                        last_seq: self.last_seq,
                    })
                }
            }
        }
    }

    /// The next event if one is ready now: a live one already queued, or
    /// the next of a replayed page already fetched. `None` when [`next`]
    /// would wait (for the hub or the store) or has something else to say
    /// (an eviction): a transport writing what is ready before one flush
    /// calls this, with no future to build and no waker to register for
    /// each event.
    ///
    /// [`next`]: Subscription::next
    pub fn try_next(&mut self) -> Option<Next<F>> {
        if let Some(replay) = &mut self.replay {
            let event = replay.page.pop_front()?;
            return Some(self.replayed(&event));
        }
        loop {
            let d = self.rx.try_recv().ok()?;
            if let Some(next) = self.live(&d) {
                return Some(next);
            }
        }
    }

    /// A replayed event to send: encoded here (the hub encodes live ones).
    fn replayed(&mut self, event: &Event) -> Next<F> {
        self.last_seq = event.seq;
        Next::Event {
            frame: self.hub.encode(event),
            seq: event.seq,
            event_type: event.event_type,
            received: None,
        }
    }

    /// A live delivery to send, or `None` for one to skip: already
    /// replayed, or matched under a filter since replaced (only then is the
    /// filter checked again).
    fn live(&mut self, d: &Delivery<F>) -> Option<Next<F>> {
        let event = &d.item.event;
        let stale = d.generation != self.generation && !self.filter.matches(event);
        if event.seq <= self.last_seq || stale {
            return None;
        }
        self.last_seq = event.seq;
        Some(Next::Event {
            frame: d.item.frame.clone(),
            seq: event.seq,
            event_type: event.event_type,
            received: Some(event.timestamp),
        })
    }

    /// Replaces the filter; in force for every event delivered after this
    /// returns (queued events that no longer match are skipped).
    pub fn update_filter(&mut self, filter: EventFilter) {
        if let Some(generation) = self.hub.update_filter(self.id, filter.clone()) {
            self.generation = generation;
        }
        self.filter = filter;
    }

    /// The seq of the last event delivered, or the resume point.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

impl<F> Drop for Subscription<F> {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}
