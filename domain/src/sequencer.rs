//! Puts what a node receives from its feed into seq order before it is
//! dispatched: the store's seq is the one order every node agrees on.
//!
//! Batches committed by several nodes can arrive in any order, twice, or
//! not at all (the bus is at most once; a node can die between its commit
//! and its publish). The sequencer drops what it has already delivered,
//! holds events that arrive after a hole until the hole fills, and says
//! when the hole must be filled from the store instead: it lasted longer
//! than [`GAP_GRACE`], or grew past [`MAX_PENDING`] events. The store is
//! the truth: what is held here is only a head start, and may be dropped.
//!
//! With one node and the local broadcaster, every batch continues where the
//! last one ended and passes through untouched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ep_ports::{Event, EventBatch};
use tokio::time::Instant;

/// How long events after a hole wait for it to fill from the feed (another
/// node's batch still on its way) before the store is asked.
pub(crate) const GAP_GRACE: Duration = Duration::from_millis(100);
/// Events held after a hole before the store is asked at once.
pub(crate) const MAX_PENDING: usize = 65_536;

/// The delivery position and what waits behind a hole.
#[derive(Debug)]
pub(crate) struct Sequencer {
    /// Every event up to this seq has been delivered (or was committed
    /// before this node started).
    delivered: u64,
    /// Events after a hole, by seq.
    pending: BTreeMap<u64, Arc<Event>>,
    /// Since when the oldest hole has waited.
    gap_since: Option<Instant>,
}

fn contiguous(batch: &[Arc<Event>]) -> bool {
    batch.windows(2).all(|w| w[1].seq == w[0].seq + 1)
}

impl Sequencer {
    /// Delivers what comes after `delivered`.
    pub(crate) fn new(delivered: u64) -> Self {
        Self {
            delivered,
            pending: BTreeMap::new(),
            gap_since: None,
        }
    }

    /// The seq up to which everything was delivered.
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Events held behind a hole.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes a batch from the feed; returns what can be delivered now, in
    /// seq order (the batch itself when it continues where the last ended).
    pub(crate) fn accept(&mut self, batch: EventBatch, now: Instant) -> Option<EventBatch> {
        if self.pending.is_empty()
            && batch.first().is_some_and(|e| e.seq == self.delivered + 1)
            && contiguous(&batch)
        {
            self.delivered = batch.last().map_or(self.delivered, |e| e.seq);
            return Some(batch);
        }
        for event in batch.iter().filter(|e| e.seq > self.delivered) {
            self.pending.insert(event.seq, Arc::clone(event));
        }
        let ready = self.release(Vec::new());
        self.note_gap(now);
        ready
    }

    /// Takes events read from the store after [`Sequencer::delivered`],
    /// lowest seq first. `complete`: the store had nothing after the last
    /// of them; whatever is still held after that was deleted meanwhile (or
    /// seq has holes) and is delivered too.
    pub(crate) fn fill(
        &mut self,
        events: Vec<Event>,
        complete: bool,
        now: Instant,
    ) -> Option<EventBatch> {
        let mut ready = Vec::with_capacity(events.len());
        for event in events {
            if event.seq > self.delivered {
                self.delivered = event.seq;
                ready.push(Arc::new(event));
            }
        }
        self.pending = self.pending.split_off(&(self.delivered + 1));
        if complete {
            ready.extend(std::mem::take(&mut self.pending).into_values());
            if let Some(last) = ready.last() {
                self.delivered = self.delivered.max(last.seq);
            }
        }
        let ready = self.release(ready);
        self.note_gap(now);
        ready
    }

    /// When the store must be asked for the hole, if one is waiting.
    pub(crate) fn fill_due(&self) -> Option<Instant> {
        let since = self.gap_since?;
        if self.pending.len() > MAX_PENDING {
            Some(since)
        } else {
            Some(since + GAP_GRACE)
        }
    }

    /// `ready`, then whatever held events now continue it.
    fn release(&mut self, mut ready: Vec<Arc<Event>>) -> Option<EventBatch> {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.delivered + 1 {
                break;
            }
            self.delivered += 1;
            ready.push(entry.remove());
        }
        (!ready.is_empty()).then(|| ready.into())
    }

    fn note_gap(&mut self, now: Instant) {
        if self.pending.is_empty() {
            self.gap_since = None;
        } else {
            self.gap_since.get_or_insert(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch, event};

    fn seqs(batch: Option<EventBatch>) -> Vec<u64> {
        batch.map_or_else(Vec::new, |b| b.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn a_batch_that_continues_where_the_last_ended_passes_through_as_it_is() {
        let mut s = Sequencer::new(10);
        let b = batch(11..=15);
        let out = s.accept(Arc::clone(&b), Instant::now()).expect("ready");
        assert!(Arc::ptr_eq(&out, &b), "no copy on the common path");
        assert_eq!(s.delivered(), 15);
        assert_eq!(s.fill_due(), None);
    }

    /// A batch that starts where the last ended but skips a seq inside
    /// (whatever a store or bus did to it) goes no further than the hole:
    /// the missing event would otherwise come after one with a higher seq.
    #[test]
    fn a_batch_with_a_hole_inside_is_delivered_up_to_the_hole() {
        let now = Instant::now();
        let mut s = Sequencer::new(10);
        assert_eq!(seqs(s.accept(batch([11, 12, 14]), now)), [11, 12]);
        assert_eq!(s.pending(), 1);
        assert_eq!(s.fill_due(), Some(now + GAP_GRACE));
        assert_eq!(seqs(s.accept(batch([13]), now)), [13, 14]);
    }

    #[test]
    fn batches_out_of_order_are_delivered_in_seq_order_once_the_hole_fills() {
        let now = Instant::now();
        let mut s = Sequencer::new(10);
        assert_eq!(seqs(s.accept(batch(16..=20), now)), Vec::<u64>::new());
        assert_eq!(s.fill_due(), Some(now + GAP_GRACE));
        assert_eq!(
            seqs(s.accept(batch(11..=15), now)),
            (11..=20).collect::<Vec<_>>()
        );
        assert_eq!(s.fill_due(), None);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn duplicates_and_what_came_before_the_start_are_dropped() {
        let now = Instant::now();
        let mut s = Sequencer::new(10);
        assert_eq!(seqs(s.accept(batch(5..=12), now)), [11, 12]);
        assert_eq!(seqs(s.accept(batch(11..=12), now)), Vec::<u64>::new());
        assert_eq!(seqs(s.accept(batch(12..=14), now)), [13, 14]);
        assert_eq!(s.fill_due(), None, "no hole: nothing to ask the store");
    }

    #[test]
    fn a_lost_batch_is_filled_from_the_store_then_what_waited_follows() {
        let now = Instant::now();
        let mut s = Sequencer::new(10);
        s.accept(batch(16..=18), now);
        // The store has 11..=18 (16..=18 among them).
        let out = s.fill((11..=18).map(event).collect(), true, now);
        assert_eq!(seqs(out), (11..=18).collect::<Vec<_>>());
        assert_eq!(s.pending(), 0);
        assert_eq!(s.fill_due(), None);
        // A late copy of the lost batch is a duplicate now.
        assert_eq!(seqs(s.accept(batch(11..=15), now)), Vec::<u64>::new());
    }

    #[test]
    fn a_partial_fill_keeps_what_still_waits_behind_the_rest_of_the_hole() {
        let now = Instant::now();
        let mut s = Sequencer::new(0);
        s.accept(batch(9..=10), now);
        let out = s.fill((1..=4).map(event).collect(), false, now);
        assert_eq!(seqs(out), [1, 2, 3, 4]);
        assert_eq!(s.pending(), 2);
        let out = s.fill((5..=10).map(event).collect(), true, now);
        assert_eq!(seqs(out), [5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn held_events_the_store_no_longer_has_are_delivered_after_a_complete_fill() {
        let now = Instant::now();
        let mut s = Sequencer::new(10);
        s.accept(batch(14..=15), now);
        // 11..=13 and 15 were deleted meanwhile; 14 remains.
        let out = s.fill(vec![event(14)], true, now);
        assert_eq!(seqs(out), [14, 15]);
        assert_eq!(s.delivered(), 15);
    }

    #[test]
    fn too_much_held_behind_a_hole_asks_the_store_at_once() {
        let now = Instant::now();
        let mut s = Sequencer::new(0);
        s.accept(batch(2..=MAX_PENDING as u64 + 1), now);
        assert_eq!(
            s.fill_due(),
            Some(now + GAP_GRACE),
            "as many as it may hold"
        );
        s.accept(batch([MAX_PENDING as u64 + 2]), now);
        assert_eq!(s.fill_due(), Some(now));
    }

    /// What the store returns up to the delivery position (a store that
    /// answered `after` inclusively, say) is not delivered twice.
    #[test]
    fn a_fill_delivers_nothing_up_to_the_position_again() {
        let now = Instant::now();
        let mut s = Sequencer::new(10);
        let out = s.fill((9..=12).map(event).collect(), true, now);
        assert_eq!(seqs(out), [11, 12]);
    }

    #[test]
    fn the_hole_keeps_its_first_deadline_while_it_partly_fills() {
        let t0 = Instant::now();
        let mut s = Sequencer::new(0);
        s.accept(batch([3]), t0);
        s.accept(batch([5]), t0 + Duration::from_millis(60));
        assert_eq!(
            seqs(s.accept(batch([1, 2]), t0 + Duration::from_millis(70))),
            [1, 2, 3]
        );
        assert_eq!(s.fill_due(), Some(t0 + GAP_GRACE), "4 is still missing");
    }
}
