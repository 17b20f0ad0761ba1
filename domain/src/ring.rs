//! A bounded queue that many readers share: each item is stored once, and
//! every reader reads every item pushed after it joined, in order. A reader
//! that falls a whole capacity behind loses the oldest items it had not
//! read and learns it lagged when it next reads. The hub keeps one per
//! distinct filter, shared by the subscriptions that ask for it: an event
//! goes into one ring, not into each subscriber's queue.
//!
//! An item is kept until every reader that joined before it has read it (or
//! left, or lagged past it): an idle ring holds nothing and allocates
//! nothing, and one whose readers keep up holds only what they have yet to
//! take.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;

/// Slots a ring keeps allocated once it empties; a burst's larger buffer is
/// given back (10,000 quiet subscriptions must not each keep one).
const KEPT_SLOTS: usize = 64;

/// The shared queue.
pub(crate) struct Ring<T> {
    /// Readers read under the shared lock (they never wait for each
    /// other); pushing, joining, leaving and dropping what all have read
    /// take it alone.
    state: RwLock<State<T>>,
    /// The position after the last item pushed; readers check it without
    /// the lock.
    tail: AtomicU64,
    /// Readers waiting for an item register here.
    pushed: Notify,
    /// Items were pushed since readers were last woken.
    unannounced: AtomicBool,
}

struct State<T> {
    slots: VecDeque<Slot<T>>,
    /// The position of `slots[0]`.
    head: u64,
    /// Readers that joined and have not left.
    readers: usize,
    /// Most items held: a reader this far behind has lagged.
    capacity: usize,
}

struct Slot<T> {
    item: T,
    /// Readers that joined before this item and have yet to take it.
    unread: AtomicUsize,
}

/// The reader fell a whole capacity behind: items it had not read were
/// dropped. It stays so until [`Reader::skip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lagged;

/// One reader's place in a ring. Dropping it leaves the ring.
pub(crate) struct Reader<T> {
    ring: Arc<Ring<T>>,
    /// The position of the next item to take.
    next: u64,
}

impl<T> State<T> {
    fn tail(&self) -> u64 {
        self.head + self.slots.len() as u64
    }

    /// Marks the held items from position `from` on as read by one reader.
    fn release_from(&mut self, from: u64) {
        let start = usize::try_from(from.saturating_sub(self.head)).unwrap_or(usize::MAX);
        for slot in self.slots.iter_mut().skip(start) {
            *slot.unread.get_mut() -= 1;
        }
        self.trim();
    }

    /// Drops the items every reader has read: always a prefix, since each
    /// reader reads in order and counts only in items pushed after it joined.
    fn trim(&mut self) {
        while self
            .slots
            .front_mut()
            .is_some_and(|s| *s.unread.get_mut() == 0)
        {
            self.slots.pop_front();
            self.head += 1;
        }
        if self.slots.is_empty() && self.slots.capacity() > KEPT_SLOTS {
            self.slots.shrink_to(KEPT_SLOTS);
        }
    }
}

impl<T: Clone> Ring<T> {
    /// An empty ring holding at most `capacity` items (at least one).
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(State {
                slots: VecDeque::new(),
                head: 0,
                readers: 0,
                capacity: capacity.max(1),
            }),
            tail: AtomicU64::new(0),
            pushed: Notify::new(),
            unannounced: AtomicBool::new(false),
        })
    }

    // Every update completes before the lock is released (none can panic
    // halfway), so a poisoned ring is still consistent.
    fn lock(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> RwLockReadGuard<'_, State<T>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// A reader that reads every item pushed from now on.
    pub(crate) fn join(self: &Arc<Self>) -> Reader<T> {
        let mut state = self.lock();
        state.readers += 1;
        Reader {
            ring: Arc::clone(self),
            next: state.tail(),
        }
    }

    /// The position the next item pushed will take.
    pub(crate) fn end(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    /// Adds an item for every reader (none without readers), dropping the
    /// oldest when full: readers that had not read it have lagged. Readers
    /// are not woken until [`announce`](Ring::announce); returns true when
    /// this is the first item since the last announcement.
    pub(crate) fn push(&self, item: T) -> bool {
        {
            let mut state = self.lock();
            if state.readers == 0 {
                return false;
            }
            if state.slots.len() >= state.capacity {
                state.slots.pop_front();
                state.head += 1;
            }
            let unread = AtomicUsize::new(state.readers);
            state.slots.push_back(Slot { item, unread });
            self.tail.store(state.tail(), Ordering::Release);
        }
        !self.unannounced.swap(true, Ordering::AcqRel)
    }

    /// Wakes the readers waiting for an item.
    pub(crate) fn announce(&self) {
        self.unannounced.store(false, Ordering::Release);
        self.pushed.notify_waiters();
    }

    /// Items held (not yet read by every reader), for tests.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.read().slots.len()
    }
}

impl<T: Clone> Reader<T> {
    /// What `read` makes of the next item ready for this reader, which it
    /// then counts as read; `None` when none is ready. No copy of the
    /// item: `read` takes what it needs of it.
    ///
    /// # Errors
    /// `Lagged` when items it had not read were dropped.
    pub(crate) fn pop_with<R>(&mut self, read: impl FnOnce(&T) -> R) -> Result<Option<R>, Lagged> {
        let mut read = Some(read);
        let mut out = None;
        self.pop_each(1, |item| {
            out = read.take().map(|read| read(item));
            true
        })?;
        Ok(out)
    }

    /// Hands the items ready for this reader to `read`, in order, at most
    /// `max` of them, under one shared lock (the lock's count is touched
    /// once, not once per item): an item `read` refuses (`false`) is not
    /// taken, and ends the call. Returns how many were taken.
    ///
    /// # Errors
    /// `Lagged` when items it had not read were dropped.
    pub(crate) fn pop_each(
        &mut self,
        max: usize,
        mut read: impl FnMut(&T) -> bool,
    ) -> Result<usize, Lagged> {
        if max == 0 || self.ring.end() <= self.next {
            return Ok(0);
        }
        let state = self.ring.read();
        if self.next < state.head {
            return Err(Lagged);
        }
        let start = usize::try_from(self.next - state.head).unwrap_or(usize::MAX);
        let mut taken = 0;
        let mut finished_oldest = false;
        for (at, slot) in state.slots.iter().enumerate().skip(start).take(max) {
            if !read(&slot.item) {
                break;
            }
            let last = slot.unread.fetch_sub(1, Ordering::AcqRel) == 1;
            finished_oldest |= last && at == 0;
            taken += 1;
        }
        drop(state);
        self.next += taken as u64;
        // The last reader of the oldest item drops what all have read.
        if finished_oldest {
            self.ring.lock().trim();
        }
        Ok(taken)
    }

    /// Moves the items ready for this reader before position `end` into
    /// `out`.
    ///
    /// # Errors
    /// `Lagged` when items it had not read were dropped.
    pub(crate) fn take_until(&mut self, out: &mut VecDeque<T>, end: u64) -> Result<usize, Lagged> {
        if self.ring.end() <= self.next {
            return Ok(0);
        }
        let mut state = self.ring.lock();
        if self.next < state.head {
            return Err(Lagged);
        }
        let start = usize::try_from(self.next - state.head).unwrap_or(usize::MAX);
        let stop = usize::try_from(end.min(state.tail()) - state.head).unwrap_or(usize::MAX);
        let taken = stop.saturating_sub(start);
        for slot in state.slots.range_mut(start..start + taken) {
            out.push_back(slot.item.clone());
            *slot.unread.get_mut() -= 1;
        }
        self.next += taken as u64;
        if start == 0 && taken > 0 {
            state.trim();
        }
        Ok(taken)
    }

    /// True when items this reader had not read were dropped.
    pub(crate) fn lagged(&self) -> bool {
        self.ring.end() > self.next && self.next < self.ring.read().head
    }

    /// Gives up everything not read yet: the next item taken is the next
    /// one pushed. Clears a lag.
    pub(crate) fn skip(&mut self) {
        let mut state = self.ring.lock();
        let tail = state.tail();
        state.release_from(self.next);
        self.next = tail;
    }

    /// Waits until an item is ready for this reader (or it lagged).
    /// Cancel-safe.
    pub(crate) async fn ready(&self) {
        loop {
            if self.ring.end() > self.next {
                return;
            }
            let notified = self.ring.pushed.notified();
            tokio::pin!(notified);
            // Registered before the second look: a push after it wakes us.
            notified.as_mut().enable();
            if self.ring.end() > self.next {
                return;
            }
            notified.await;
        }
    }
}

impl<T> Drop for Reader<T> {
    fn drop(&mut self) {
        let mut state = self
            .ring
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        state.release_from(self.next);
        state.readers -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_all(reader: &mut Reader<u64>) -> Result<Vec<u64>, Lagged> {
        let mut out = Vec::new();
        while let Some(item) = reader.pop_with(|item| *item)? {
            out.push(item);
        }
        Ok(out)
    }

    #[test]
    fn each_reader_reads_what_was_pushed_after_it_joined_and_nothing_is_kept_once_read() {
        let ring = Ring::new(8);
        assert!(!ring.push(0), "no reader: nothing kept, nobody to wake");
        let mut a = ring.join();
        assert!(ring.push(1));
        assert!(!ring.push(2), "announced once per round of pushes");
        let mut b = ring.join();
        ring.push(3);
        ring.announce();
        assert_eq!(take_all(&mut a), Ok(vec![1, 2, 3]));
        assert_eq!(ring.held(), 1, "3 is b's to read");
        assert_eq!(take_all(&mut b), Ok(vec![3]));
        assert_eq!(ring.held(), 0);
        assert_eq!(take_all(&mut b), Ok(vec![]));
    }

    #[test]
    fn a_reader_a_whole_capacity_behind_has_lagged_until_it_skips() {
        let ring = Ring::new(2);
        let mut slow = ring.join();
        let mut fast = ring.join();
        for i in 1..=3 {
            ring.push(i);
            assert_eq!(take_all(&mut fast), Ok(vec![i]));
        }
        assert!(slow.lagged());
        assert_eq!(take_all(&mut slow), Err(Lagged));
        assert_eq!(
            ring.held(),
            2,
            "the slow one's unread items, at most the capacity"
        );
        slow.skip();
        assert!(!slow.lagged());
        assert_eq!(ring.held(), 0);
        ring.push(4);
        assert_eq!(take_all(&mut slow), Ok(vec![4]));
    }

    #[test]
    fn a_reader_that_leaves_frees_what_it_had_not_read() {
        let ring = Ring::new(8);
        let mut stays = ring.join();
        let leaves = ring.join();
        ring.push(1);
        ring.push(2);
        assert_eq!(take_all(&mut stays), Ok(vec![1, 2]));
        assert_eq!(ring.held(), 2);
        drop(leaves);
        assert_eq!(ring.held(), 0);
    }

    #[test]
    fn take_until_stops_at_the_position_given() {
        let ring = Ring::new(8);
        let mut reader = ring.join();
        for i in 1..=4 {
            ring.push(i);
        }
        let mut out = VecDeque::new();
        assert_eq!(reader.take_until(&mut out, 2), Ok(2));
        assert_eq!(reader.pop_with(|item| *item), Ok(Some(3)));
        assert_eq!(Vec::from(out), [1, 2]);
        assert_eq!(take_all(&mut reader), Ok(vec![4]));
    }

    #[test]
    fn pop_each_hands_over_what_is_ready_until_refused_and_drops_what_all_have_read() {
        let ring = Ring::new(8);
        let mut a = ring.join();
        let mut b = ring.join();
        for i in 1..=4 {
            ring.push(i);
        }
        let mut seen = Vec::new();
        let refuse_third = |seen: &mut Vec<u64>, item: &u64| {
            let wanted = seen.len() < 2;
            if wanted {
                seen.push(*item);
            }
            wanted
        };
        assert_eq!(a.pop_each(10, |item| refuse_third(&mut seen, item)), Ok(2));
        assert_eq!(seen, [1, 2]);
        assert_eq!(
            a.pop_with(|item| *item),
            Ok(Some(3)),
            "the refused item stays"
        );
        assert_eq!(ring.held(), 4, "b has read nothing");
        let mut seen_b = Vec::new();
        assert_eq!(
            b.pop_each(3, |item| {
                seen_b.push(*item);
                true
            }),
            Ok(3),
            "at most max"
        );
        assert_eq!(seen_b, [1, 2, 3]);
        assert_eq!(ring.held(), 1, "1-3 read by both and dropped; 4 left");
        assert_eq!(b.pop_each(0, |_| true), Ok(0));
        assert_eq!(take_all(&mut a), Ok(vec![4]));
        assert_eq!(take_all(&mut b), Ok(vec![4]));
        assert_eq!(ring.held(), 0);
        assert_eq!(a.pop_each(5, |_| true), Ok(0), "nothing ready");
    }

    #[test]
    fn an_emptied_ring_gives_back_a_bursts_buffer() {
        let ring = Ring::new(4_096);
        let mut reader = ring.join();
        for i in 0..1_000 {
            ring.push(i);
        }
        assert_eq!(take_all(&mut reader).map(|v| v.len()), Ok(1_000));
        assert!(ring.read().slots.capacity() <= KEPT_SLOTS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_reader_wakes_when_items_are_announced() {
        let ring = Ring::new(8);
        let mut reader = ring.join();
        let pusher = Arc::clone(&ring);
        let waiting = tokio::spawn(async move {
            reader.ready().await;
            take_all(&mut reader)
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        pusher.push(7);
        pusher.announce();
        assert_eq!(waiting.await.expect("task"), Ok(vec![7]));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Join,
        Push,
        Take(usize, usize),
        Skip(usize),
        Leave(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            1 => Just(Op::Join),
            4 => Just(Op::Push),
            3 => (0..4usize, 1..6usize).prop_map(|(r, max)| Op::Take(r, max)),
            1 => (0..4usize).prop_map(Op::Skip),
            1 => (0..4usize).prop_map(Op::Leave),
        ]
    }

    /// What a reader should see, by the ring's promise alone.
    struct Model {
        reader: Reader<u64>,
        /// The position of the next item it should get.
        next: u64,
        /// Some push found it a whole capacity behind.
        lagged: bool,
    }

    proptest::proptest! {
        /// Against any interleaving of readers joining, reading, skipping and
        /// leaving: each reader gets exactly the items pushed after it joined
        /// (or skipped), in order, with no gap; it lags exactly when a push
        /// finds it a whole capacity behind; the ring never holds more than
        /// its capacity, and nothing once every reader has caught up.
        #[test]
        fn readers_get_every_item_in_order_and_lag_exactly_when_a_capacity_behind(
            capacity in 1..5usize,
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let ring = Ring::new(capacity);
            let mut models: Vec<Model> = Vec::new();
            let mut tail = 0u64;
            for op in ops {
                match op {
                    Op::Join => models.push(Model { reader: ring.join(), next: tail, lagged: false }),
                    Op::Push => {
                        for m in &mut models {
                            m.lagged |= tail - m.next >= capacity as u64;
                        }
                        ring.push(tail);
                        if !models.is_empty() {
                            tail += 1;
                        }
                    }
                    Op::Take(i, max) => {
                        let Some(m) = models.get_mut(i) else { continue };
                        // Up to `max` items: in one take, handed over under one
                        // lock (to a reader that refuses the one after `max`), or
                        // popped one by one.
                        let mut out = VecDeque::new();
                        let got = if max % 3 == 0 {
                            m.reader.take_until(&mut out, m.next + max as u64)
                        } else if max % 3 == 1 {
                            m.reader.pop_each(max + 1, |item| {
                                let wanted = out.len() < max;
                                if wanted {
                                    out.push_back(*item);
                                }
                                wanted
                            })
                        } else {
                            (|| {
                                for _ in 0..max {
                                    match m.reader.pop_with(|item| *item)? {
                                        Some(item) => out.push_back(item),
                                        None => break,
                                    }
                                }
                                Ok(out.len())
                            })()
                        };
                        if m.lagged {
                            proptest::prop_assert_eq!(got, Err(Lagged));
                            proptest::prop_assert!(m.reader.lagged());
                        } else {
                            let n = (tail - m.next).min(max as u64);
                            let want: Vec<u64> = (m.next..m.next + n).collect();
                            proptest::prop_assert_eq!(got, Ok(want.len()));
                            proptest::prop_assert_eq!(Vec::from(out), want);
                            m.next += n;
                            proptest::prop_assert!(!m.reader.lagged());
                        }
                    }
                    Op::Skip(i) => {
                        let Some(m) = models.get_mut(i) else { continue };
                        m.reader.skip();
                        m.next = tail;
                        m.lagged = false;
                    }
                    Op::Leave(i) => {
                        if i < models.len() {
                            models.remove(i);
                        }
                    }
                }
                proptest::prop_assert!(ring.held() <= capacity);
                if models.iter().all(|m| m.next == tail && !m.lagged) {
                    proptest::prop_assert_eq!(ring.held(), 0);
                }
            }
        }
    }
}
