//! One subscriber's view of the hub: replay of stored events when resuming,
//! then live events, in seq order, with no gap and no duplicate between the
//! two.

use std::collections::VecDeque;
use std::sync::Arc;

use ep_ports::{Event, EventFilter, StoreError, Timestamp};

use crate::delivery::Item;
use crate::membership::{Membership, Moved};
use crate::ring::{Lagged, Reader};

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
    /// Its place in the ring of its filter, which the subscriptions of the
    /// same filter share.
    reader: Reader<Item<F>>,
    /// Live events carried over from the ring of a replaced filter, to
    /// deliver before the new ring's.
    carried: VecDeque<Item<F>>,
    /// Live events of a replaced filter were lost before they were taken.
    lost: bool,
    filter: EventFilter,
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
    /// A subscription that has delivered everything up to `after`: the
    /// resume point, or for a live one the last event dispatched before it
    /// joined (where a client it evicts before its first event resumes).
    /// With `replay`, it first replays the stored events after `after`.
    pub(crate) fn new(
        id: u64,
        hub: Arc<dyn Membership<F>>,
        reader: Reader<Item<F>>,
        filter: EventFilter,
        after: u64,
        replay: bool,
    ) -> Self {
        Self {
            id,
            hub,
            reader,
            carried: VecDeque::new(),
            lost: false,
            filter,
            last_seq: after,
            replay: replay.then(|| Replay {
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
                if self.lost || self.reader.lagged() {
                    self.lost = false;
                    self.reader.skip();
                    self.carried.clear();
                    replay.more = true;
                    continue;
                }
                self.replay = None;
            }
            if let Some(next) = self.pop_carried() {
                return Ok(next);
            }
            if self.lost {
                return Ok(self.evicted());
            }
            match self.pop_live() {
                Ok(Some(next)) => return Ok(next),
                Ok(None) => self.reader.ready().await,
                Err(Lagged) => return Ok(self.evicted()),
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
        if let Some(next) = self.pop_carried() {
            return Some(next);
        }
        if self.lost {
            return None;
        }
        self.pop_live().ok().flatten()
    }

    /// Hands the frames of the live events ready now to `take`, in order,
    /// at most `max` of them, reading the ring once for all: for a
    /// transport that writes whatever is ready at once. A frame `take`
    /// refuses (`false`) stays for the next call. Hands over nothing while
    /// the subscription replays from the store or has events carried over
    /// from a replaced filter, nor an eviction to report: [`try_next`]
    /// hands those one at a time. Returns how many were taken.
    ///
    /// [`try_next`]: Subscription::try_next
    pub fn try_take_frames(&mut self, max: usize, mut take: impl FnMut(&F) -> bool) -> usize {
        if self.replay.is_some() || !self.carried.is_empty() || self.lost {
            return 0;
        }
        let mut last_seq = self.last_seq;
        let mut taken = 0;
        // An eviction is reported by `next`, as after `try_next`.
        let _ = self.reader.pop_each(max, |item| {
            let seq = item.event.seq;
            // Already replayed: passed over.
            if seq <= last_seq {
                return true;
            }
            let took = take(&item.frame);
            if took {
                last_seq = seq;
                taken += 1;
            }
            took
        });
        self.last_seq = last_seq;
        taken
    }

    /// The next carried-over event to send, skipping any already replayed.
    fn pop_carried(&mut self) -> Option<Next<F>> {
        while let Some(item) = self.carried.pop_front() {
            if let Some(next) = live_next(&item, self.last_seq) {
                self.last_seq = item.event.seq;
                return Some(next);
            }
        }
        None
    }

    /// The next event of the ring to send, skipping any already replayed;
    /// `None` when the ring has none ready.
    fn pop_live(&mut self) -> Result<Option<Next<F>>, Lagged> {
        loop {
            let last_seq = self.last_seq;
            match self.reader.pop_with(|item| live_next(item, last_seq))? {
                None => return Ok(None),
                Some(None) => {}
                Some(Some(next)) => {
                    if let Next::Event { seq, .. } = next {
                        self.last_seq = seq;
                    }
                    return Ok(Some(next));
                }
            }
        }
    }

    /// The subscription fell a whole queue behind: it leaves the hub (no
    /// longer counted) and tells its transport where to resume.
    fn evicted(&mut self) -> Next<F> {
        if self.hub.remove(self.id) {
            tracing::info!(
                subscriber = self.id,
                last_seq = self.last_seq,
                "slow subscriber evicted: it fell a whole queue behind"
            );
        }
        Next::Evicted {
            last_seq: self.last_seq,
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

    /// Replaces the filter; in force for every event delivered after this
    /// returns. Live events matched under the old filter and not yet
    /// delivered are kept if they match the new one too.
    pub fn update_filter(&mut self, filter: EventFilter) {
        if let Some(Moved { reader, cut }) = self.hub.update_filter(self.id, filter.clone()) {
            let mut old = std::mem::replace(&mut self.reader, reader);
            if old.take_until(&mut self.carried, cut).is_err() {
                self.lost = true;
            }
            self.carried.retain(|item| filter.matches(&item.event));
        }
        self.filter = filter;
    }

    /// The seq of the last event delivered; before the first, the resume
    /// point, or for a live subscription the last event dispatched before it
    /// joined. Resuming after it loses nothing and repeats nothing.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

/// A live event to send, or `None` for one already replayed (at or before
/// `last_seq`). Takes only the frame (one count of a shared buffer).
fn live_next<F: Clone>(item: &Item<F>, last_seq: u64) -> Option<Next<F>> {
    let event = &item.event;
    (event.seq > last_seq).then(|| Next::Event {
        frame: item.frame.clone(),
        seq: event.seq,
        event_type: event.event_type,
        received: Some(event.timestamp),
    })
}

impl<F> Drop for Subscription<F> {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}
