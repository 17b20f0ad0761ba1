//! The fan-out hub: live subscriptions indexed by what they filter on, and
//! the dispatcher that hands each committed event to the subscriptions it
//! matches, without ever waiting on one.
//!
//! Each subscription is indexed under its most selective condition: its
//! `session_id` if it has one, else its `user_id`, else each of its event
//! types, else it is a wildcard. An event therefore costs a few hash lookups
//! plus the subscriptions it may match, not a scan of all of them: a
//! classroom of 10,000 per-session subscribers costs one lookup per event.
//!
//! Each subscription has its own bounded queue. The dispatcher only ever
//! `try_send`s; a live subscription whose queue is full is evicted (its
//! session closes it with a "slow consumer" code and the seq to resume
//! from). A subscription still replaying stored events is never evicted: it
//! notes that it lagged and replays again from the store.

use std::collections::HashMap;

use crate::id_hash::IdMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use std::time::Duration;

use ep_ports::{Event, EventBatch, EventFeed, EventFilter, EventStore, EventType, FeedItem};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::delivery::{Delivery, Dispatched, SubState};
use crate::gauge::SubscriberGauge;
use crate::membership::Membership;
use crate::sequencer::Sequencer;
use crate::subscription::Subscription;

/// How long the feed may be quiet before the store is asked whether it
/// holds events the feed never brought: the longest a committed event can
/// take to reach subscribers when its node died before broadcasting it.
pub(crate) const QUIET_CHECK: Duration = Duration::from_millis(500);
/// How long after a failed read of the store the next is tried.
const FILL_RETRY: Duration = Duration::from_secs(1);
/// Events read from the store per query when filling.
const FILL_PAGE: usize = 1_000;

/// Turns an event into what subscribers are sent (serialized once per event,
/// shared by every subscriber it goes to).
pub type Encoder<F> = Box<dyn Fn(&Event) -> F + Send + Sync>;

/// Settings of the hub.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Most live subscriptions (`MAX_SUBSCRIBERS`).
    pub max_subscribers: usize,
    /// Events a subscription may have queued before it counts as slow.
    pub queue_len: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_subscribers: 5_000,
            queue_len: 1_024,
        }
    }
}

struct Entry<F> {
    filter: EventFilter,
    /// Bumped by every filter update.
    generation: u64,
    tx: mpsc::Sender<Delivery<F>>,
    state: Arc<SubState>,
}

/// Where an entry is indexed: under each of several sessions, users or
/// types (a scope may list several), each at most once.
#[derive(Clone, PartialEq, Eq)]
enum Key {
    Sessions(Vec<String>),
    Users(Vec<String>),
    Types(Vec<EventType>),
    Wildcard,
}

/// `items` without repeats, in order.
fn distinct<T: PartialEq + Clone>(items: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

impl Key {
    /// The most selective condition of the filter or of its scope: one
    /// session, the scope's sessions, one user, the scope's users, the
    /// types asked, the scope's types, else none.
    fn of(filter: &EventFilter) -> Self {
        let scope = &filter.scope;
        if let Some(s) = &filter.session_id {
            return Key::Sessions(vec![s.clone()]);
        }
        if let Some(sessions) = &scope.session_ids {
            return Key::Sessions(distinct(sessions));
        }
        if let Some(u) = &filter.user_id {
            return Key::Users(vec![u.clone()]);
        }
        if let Some(users) = &scope.user_ids {
            return Key::Users(distinct(users));
        }
        if let Some(types) = &filter.event_types {
            return Key::Types(distinct(types));
        }
        if let Some(names) = &scope.event_types {
            // Names no registered type has match no event: not indexed.
            let types: Vec<EventType> = names.iter().filter_map(|n| EventType::known(n)).collect();
            return Key::Types(distinct(&types));
        }
        Key::Wildcard
    }
}

#[derive(Default)]
struct Index {
    by_session: HashMap<String, Vec<u64>>,
    by_user: HashMap<String, Vec<u64>>,
    by_type: HashMap<EventType, Vec<u64>>,
    wildcard: Vec<u64>,
}

fn remove_from(list: &mut Vec<u64>, id: u64) {
    if let Some(i) = list.iter().position(|x| *x == id) {
        list.swap_remove(i);
    }
}

fn remove_keyed<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<u64>>, key: &K, id: u64) {
    if let Some(list) = map.get_mut(key) {
        remove_from(list, id);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl Index {
    fn insert(&mut self, key: Key, id: u64) {
        match key {
            Key::Sessions(sessions) => {
                for s in sessions {
                    self.by_session.entry(s).or_default().push(id);
                }
            }
            Key::Users(users) => {
                for u in users {
                    self.by_user.entry(u).or_default().push(id);
                }
            }
            Key::Types(types) => {
                for t in types {
                    self.by_type.entry(t).or_default().push(id);
                }
            }
            Key::Wildcard => self.wildcard.push(id),
        }
    }

    fn remove(&mut self, key: &Key, id: u64) {
        match key {
            Key::Sessions(sessions) => {
                for s in sessions {
                    remove_keyed(&mut self.by_session, s, id);
                }
            }
            Key::Users(users) => {
                for u in users {
                    remove_keyed(&mut self.by_user, u, id);
                }
            }
            Key::Types(types) => {
                for t in types {
                    remove_keyed(&mut self.by_type, t, id);
                }
            }
            Key::Wildcard => remove_from(&mut self.wildcard, id),
        }
    }

    /// Every subscription that may match `event`; each at most once (an
    /// entry lives under one key, each of its values once, and an event has
    /// one session, one user and one type).
    fn candidates<'a>(&'a self, event: &Event) -> impl Iterator<Item = u64> + 'a {
        let session = event
            .session_id
            .as_deref()
            .and_then(|s| self.by_session.get(s));
        let user = event.user_id.as_deref().and_then(|u| self.by_user.get(u));
        let types = self.by_type.get(&event.event_type);
        session
            .into_iter()
            .chain(user)
            .chain(types)
            .flatten()
            .chain(self.wildcard.iter())
            .copied()
    }
}

#[derive(Default)]
struct Registry<F> {
    entries: IdMap<Entry<F>>,
    index: Index,
}

struct HubInner<F> {
    registry: RwLock<Registry<F>>,
    config: HubConfig,
    encode: Encoder<F>,
    store: Arc<dyn EventStore>,
    gauge: SubscriberGauge,
    next_id: AtomicU64,
    /// Random per process: makes public subscriber ids unique across nodes.
    node: u32,
}

/// 32 random bits for this process (from a UUIDv7's random part).
fn node_tag() -> u32 {
    let uuid = uuid::Uuid::now_v7();
    let b = uuid.as_bytes();
    u32::from_be_bytes([b[12], b[13], b[14], b[15]])
}

/// The hub is full: `MAX_SUBSCRIBERS` subscriptions are live.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Server at subscriber capacity")]
pub struct AtCapacity;

/// Live subscriptions and the dispatcher that feeds them.
pub struct Hub<F> {
    inner: Arc<HubInner<F>>,
}

impl<F> Clone for Hub<F> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<F: Clone + Send + Sync + 'static> Hub<F> {
    /// A hub that replays from `store`, counts subscriptions in `gauge`, and
    /// encodes each event once with `encode`.
    pub fn new(
        store: Arc<dyn EventStore>,
        gauge: SubscriberGauge,
        config: HubConfig,
        encode: Encoder<F>,
    ) -> Self {
        Self {
            inner: Arc::new(HubInner {
                registry: RwLock::new(Registry {
                    entries: IdMap::default(),
                    index: Index::default(),
                }),
                config,
                encode,
                store,
                gauge,
                next_id: AtomicU64::new(1),
                node: node_tag(),
            }),
        }
    }

    /// Delivers, in seq order, every event committed from now on: the
    /// batches of `feed` (from this node and any other sharing the store),
    /// holes in it filled from the store (see [`crate::sequencer`]), and,
    /// whenever the feed has been quiet for [`QUIET_CHECK`], whatever the
    /// store holds that the feed never brought (a node that died between
    /// its commit and its publish). Runs until the feed ends; run it as a
    /// task.
    pub async fn run(self, mut feed: EventFeed) {
        let mut sequencer = Sequencer::new(self.start_position().await);
        // `quiet_at`: when to ask the store if nothing comes meanwhile (moved
        // only when the timer fires, so a busy feed never re-arms it per
        // batch); `not_before`: no read of the store before it (set after a
        // failed one: no busy loop on a store that is down); `lost`: the
        // feed said it lost batches.
        let mut last_item = Instant::now();
        let mut quiet_at = last_item + QUIET_CHECK;
        let mut not_before = last_item;
        let mut lost = false;
        let timer = tokio::time::sleep_until(quiet_at);
        tokio::pin!(timer);
        loop {
            let due = if lost {
                not_before
            } else {
                sequencer.fill_due().unwrap_or(quiet_at).max(not_before)
            };
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            let item = tokio::select! {
                item = std::future::poll_fn(|cx| feed.as_mut().poll_next(cx)) => item,
                () = &mut timer => {
                    let now = Instant::now();
                    let quiet = now >= last_item + QUIET_CHECK;
                    if !lost && sequencer.fill_due().is_none() && !quiet {
                        quiet_at = last_item + QUIET_CHECK;
                        continue;
                    }
                    let read = self.fill(&mut sequencer).await;
                    let now = Instant::now();
                    (quiet_at, not_before) = match read {
                        Ok(()) => (now + QUIET_CHECK, now),
                        Err(()) => (now + FILL_RETRY, now + FILL_RETRY),
                    };
                    lost &= read.is_err();
                    continue;
                }
            };
            match item {
                None => break,
                Some(FeedItem::Batch(batch)) => {
                    last_item = Instant::now();
                    if let Some(ready) = sequencer.accept(batch, last_item) {
                        self.dispatch(&ready);
                    }
                }
                Some(FeedItem::Gap) => {
                    tracing::info!(
                        delivered = sequencer.delivered(),
                        "the event feed may have lost batches; reading the store"
                    );
                    last_item = Instant::now();
                    lost = true;
                }
            }
        }
        tracing::debug!("event feed ended; dispatcher stops");
    }

    /// The seq after which this node delivers: the store's last when the
    /// node starts (retried while the store does not answer).
    async fn start_position(&self) -> u64 {
        loop {
            match self.inner.store.last_seq().await {
                Ok(seq) => return seq,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the store's last seq; retrying");
                    tokio::time::sleep(FILL_RETRY).await;
                }
            }
        }
    }

    /// Delivers what the store holds after the sequencer's position.
    async fn fill(&self, sequencer: &mut Sequencer) -> Result<(), ()> {
        loop {
            let after = sequencer.delivered();
            let page = self
                .inner
                .store
                .after(after, EventFilter::default(), FILL_PAGE)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, after, "cannot read the store to fill the live feed; retrying");
                })?;
            let complete = page.len() < FILL_PAGE;
            if !page.is_empty() {
                tracing::debug!(
                    after,
                    events = page.len(),
                    "events read from the store for the live feed"
                );
            }
            if let Some(ready) = sequencer.fill(page, complete, Instant::now()) {
                self.dispatch(&ready);
            }
            if complete {
                return Ok(());
            }
        }
    }

    /// How many subscriptions are live.
    pub fn len(&self) -> usize {
        self.inner.read().entries.len()
    }

    /// True when no subscription is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a subscription. It is live when this returns: every event
    /// dispatched from now on that matches `filter` reaches it. With
    /// `resume_after = Some(seq)` it first replays stored events after `seq`.
    ///
    /// # Errors
    /// `AtCapacity` when `MAX_SUBSCRIBERS` are live.
    pub fn subscribe(
        &self,
        filter: EventFilter,
        resume_after: Option<u64>,
    ) -> Result<Subscription<F>, AtCapacity> {
        let (tx, rx) = mpsc::channel(self.inner.config.queue_len.max(1));
        let state = Arc::new(SubState::default());
        state
            .replaying
            .store(resume_after.is_some(), Ordering::Release);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut registry = self.inner.write();
            if registry.entries.len() >= self.inner.config.max_subscribers {
                return Err(AtCapacity);
            }
            registry.index.insert(Key::of(&filter), id);
            registry.entries.insert(
                id,
                Entry {
                    filter: filter.clone(),
                    generation: 0,
                    tx,
                    state: Arc::clone(&state),
                },
            );
        }
        self.inner.gauge.increment();
        Ok(Subscription::new(
            id,
            Arc::clone(&self.inner) as Arc<dyn Membership<F>>,
            rx,
            state,
            filter,
            resume_after,
        ))
    }

    /// Hands each event of the batch to the queues of the subscriptions it
    /// matches. Never waits: a full queue marks its subscription as lagged
    /// (replaying) or evicts it (live).
    pub fn dispatch(&self, batch: &EventBatch) {
        let mut evicted = Vec::new();
        {
            let registry = self.inner.read();
            if registry.entries.is_empty() {
                return;
            }
            for event in batch.iter() {
                let mut item: Option<Arc<Dispatched<F>>> = None;
                // Parsed once for every payload filter asked about this event.
                let mut payload = None;
                for id in registry.index.candidates(event) {
                    // Once evicted in this batch, a subscription gets none of
                    // its later events: its reader, draining its queue
                    // meanwhile on another thread, would find a later event
                    // after a gap and resume after the wrong seq.
                    if !evicted.is_empty() && evicted.contains(&id) {
                        continue;
                    }
                    let Some(entry) = registry.entries.get(&id) else {
                        continue;
                    };
                    if !entry.filter.matches_parsed(event, &mut payload) {
                        continue;
                    }
                    let item = item.get_or_insert_with(|| {
                        Arc::new(Dispatched {
                            event: Arc::clone(event),
                            frame: (self.inner.encode)(event),
                        })
                    });
                    match entry.tx.try_send(Delivery {
                        item: Arc::clone(item),
                        generation: entry.generation,
                    }) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            if entry.state.replaying.load(Ordering::Acquire) {
                                entry.state.lagged.store(true, Ordering::Release);
                            } else {
                                evicted.push(id);
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => evicted.push(id),
                    }
                }
            }
        }
        if !evicted.is_empty() {
            evicted.sort_unstable();
            evicted.dedup();
            for id in evicted {
                // Dropping the entry drops its sender: the subscription
                // drains what was queued, then learns it was evicted.
                if self.inner.remove(id) {
                    tracing::info!(
                        subscriber = id,
                        "slow subscriber evicted: its queue was full"
                    );
                }
            }
        }
    }
}

impl<F: Send + Sync> Membership<F> for HubInner<F> {
    fn remove(&self, id: u64) -> bool {
        HubInner::remove(self, id)
    }

    fn update_filter(&self, id: u64, filter: EventFilter) -> Option<u64> {
        HubInner::update_filter(self, id, filter)
    }

    fn node(&self) -> u32 {
        self.node
    }

    fn encode(&self, event: &Event) -> F {
        (self.encode)(event)
    }

    fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }
}

impl<F> HubInner<F> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry<F>> {
        // Registry updates cannot panic halfway, so a poisoned lock still
        // guards a consistent registry.
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry<F>> {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes a subscription; true if it was still registered.
    fn remove(&self, id: u64) -> bool {
        let mut registry = self.write();
        let Some(entry) = registry.entries.remove(&id) else {
            return false;
        };
        registry.index.remove(&Key::of(&entry.filter), id);
        drop(registry);
        self.gauge.decrement();
        true
    }

    /// Replaces a subscription's filter; returns the new filter generation,
    /// or `None` if the subscription is no longer registered.
    fn update_filter(&self, id: u64, filter: EventFilter) -> Option<u64> {
        let mut registry = self.write();
        let Registry { entries, index } = &mut *registry;
        let entry = entries.get_mut(&id)?;
        index.remove(&Key::of(&entry.filter), id);
        index.insert(Key::of(&filter), id);
        entry.filter = filter;
        entry.generation += 1;
        Some(entry.generation)
    }
}

#[cfg(test)]
mod tests {
    use ep_ports::{EventFilter, EventType, Stats, StoreError};

    use super::*;

    /// A store the index tests never reach.
    struct NoStore;

    #[async_trait::async_trait]
    impl EventStore for NoStore {
        async fn append(&self, _: Vec<ep_ports::NewEvent>) -> Result<Vec<Event>, StoreError> {
            unreachable!()
        }
        async fn append_unless_held(
            &self,
            _: Vec<ep_ports::NewEvent>,
        ) -> Result<ep_ports::Appended, StoreError> {
            unreachable!()
        }
        async fn get(&self, _: &ep_ports::EventId) -> Result<Option<Event>, StoreError> {
            unreachable!()
        }
        async fn query(&self, _: ep_ports::EventQuery) -> Result<Vec<Event>, StoreError> {
            unreachable!()
        }
        async fn after(&self, _: u64, _: EventFilter, _: usize) -> Result<Vec<Event>, StoreError> {
            unreachable!()
        }
        async fn stats(&self, _: ep_ports::Timestamp) -> Result<Stats, StoreError> {
            unreachable!()
        }
        async fn delete_some(&self, _: ep_ports::Deletion, _: usize) -> Result<u64, StoreError> {
            unreachable!()
        }
        async fn ping(&self) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn close(&self) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn last_seq(&self) -> Result<u64, StoreError> {
            unreachable!()
        }
        fn shared_by_nodes(&self) -> bool {
            false
        }
        async fn probe_write(&self) -> Result<(), StoreError> {
            unreachable!()
        }
    }

    fn hub() -> Hub<u64> {
        Hub::new(
            Arc::new(NoStore),
            SubscriberGauge::default(),
            HubConfig::default(),
            Box::new(|e: &Event| e.seq),
        )
    }

    fn filter(
        types: Option<&[EventType]>,
        session: Option<&str>,
        user: Option<&str>,
    ) -> EventFilter {
        EventFilter {
            event_types: types.map(<[EventType]>::to_vec),
            session_id: session.map(str::to_owned),
            user_id: user.map(str::to_owned),
            payload: None,
            scope: ep_ports::Scope::default(),
        }
    }

    /// How many ids the index holds under each kind of key.
    fn indexed(hub: &Hub<u64>) -> [usize; 4] {
        let registry = hub.inner.read();
        let index = &registry.index;
        fn count<K>(m: &HashMap<K, Vec<u64>>) -> usize {
            m.values().map(Vec::len).sum()
        }
        [
            count(&index.by_session),
            count(&index.by_user),
            count(&index.by_type),
            index.wildcard.len(),
        ]
    }

    fn keys(hub: &Hub<u64>) -> [usize; 3] {
        let registry = hub.inner.read();
        let index = &registry.index;
        [
            index.by_session.len(),
            index.by_user.len(),
            index.by_type.len(),
        ]
    }

    /// Two nodes number their subscriptions alike; the random node tag in
    /// the public id tells them apart (a client resuming or an operator
    /// reading logs of several nodes sees one id per subscription).
    #[test]
    fn the_first_subscriptions_of_two_nodes_have_different_public_ids() {
        let (a, b) = (hub(), hub());
        let (sub_a, sub_b) = (
            a.subscribe(EventFilter::default(), None).expect("room"),
            b.subscribe(EventFilter::default(), None).expect("room"),
        );
        let (id_a, id_b) = (sub_a.public_id(), sub_b.public_id());
        assert_ne!(id_a, id_b);
        assert_eq!(id_a.len(), "sub_".len() + 16, "{id_a}");
        assert!(id_a.ends_with("00000001"), "{id_a}");
        assert!(id_b.ends_with("00000001"), "{id_b}");
    }

    #[test]
    fn a_queued_delivery_is_a_pointer_and_a_number_whatever_the_frame() {
        // Every subscriber's queue allocates its first block of slots up
        // front: their size is what an idle subscriber pays.
        assert_eq!(std::mem::size_of::<Delivery<[u8; 32]>>(), 16);
        assert_eq!(std::mem::size_of::<Delivery<[u8; 256]>>(), 16);
    }

    #[test]
    fn a_subscription_is_indexed_once_under_its_most_selective_key_and_gone_when_it_ends() {
        let hub = hub();
        let types = [EventType::TIMER_TICK, EventType::QUIZ_STARTED];
        let by_session = hub
            .subscribe(filter(Some(&types), Some("s1"), Some("u1")), None)
            .expect("room");
        let by_user = hub
            .subscribe(filter(Some(&types), None, Some("u1")), None)
            .expect("room");
        let by_types = hub
            .subscribe(filter(Some(&types), None, None), None)
            .expect("room");
        let everything = hub.subscribe(EventFilter::default(), None).expect("room");
        assert_eq!(indexed(&hub), [1, 1, 2, 1]);
        drop(by_session);
        assert_eq!(indexed(&hub), [0, 1, 2, 1]);
        assert_eq!(keys(&hub), [0, 1, 2], "an emptied key is dropped too");
        drop(by_user);
        drop(by_types);
        drop(everything);
        assert_eq!(indexed(&hub), [0; 4]);
        assert_eq!(keys(&hub), [0; 3]);
        assert!(hub.is_empty());
    }

    #[test]
    fn a_filter_update_moves_the_subscription_between_keys_leaving_nothing_behind() {
        let hub = hub();
        let mut sub = hub
            .subscribe(filter(None, Some("s1"), None), None)
            .expect("room");
        let _other = hub
            .subscribe(filter(None, Some("s1"), None), None)
            .expect("room");
        sub.update_filter(filter(None, None, Some("u1")));
        assert_eq!(indexed(&hub), [1, 1, 0, 0]);
        sub.update_filter(filter(
            Some(&[EventType::TIMER_TICK, EventType::SESSION_ENDED]),
            None,
            None,
        ));
        assert_eq!(indexed(&hub), [1, 0, 2, 0]);
        sub.update_filter(EventFilter::default());
        assert_eq!(indexed(&hub), [1, 0, 0, 1]);
        assert_eq!(keys(&hub), [1, 0, 0]);
        drop(sub);
        assert_eq!(indexed(&hub), [1, 0, 0, 0]);
    }

    /// A timer tick with this seq, session and user.
    fn tick(seq: u64, session: Option<&str>, user: Option<&str>) -> Arc<Event> {
        Arc::new(Event {
            occurred_at: None,
            id: ep_ports::EventId::new(format!("evt_{seq:032x}")),
            event_type: EventType::TIMER_TICK,
            source: "t".into(),
            session_id: session.map(str::to_owned),
            user_id: user.map(str::to_owned),
            payload: ep_ports::Payload::empty(),
            timestamp: ep_ports::Timestamp::from_micros(seq as i64),
            seq,
        })
    }

    /// A hub whose subscriptions queue one event each, encoding with `encode`.
    fn one_slot_hub(encode: Encoder<u64>) -> Hub<u64> {
        Hub::new(
            Arc::new(NoStore),
            SubscriberGauge::default(),
            HubConfig {
                max_subscribers: 10,
                queue_len: 1,
            },
            encode,
        )
    }

    #[test]
    fn an_evicted_subscription_leaves_the_index() {
        let hub = one_slot_hub(Box::new(|e: &Event| e.seq));
        let _slow = hub
            .subscribe(filter(None, None, Some("u1")), None)
            .expect("room");
        let event = |seq| tick(seq, None, Some("u1"));
        let batch: EventBatch = vec![event(1), event(2)].into();
        hub.dispatch(&batch);
        assert_eq!(
            indexed(&hub),
            [0; 4],
            "evicted at once, not when it next reads"
        );
        assert!(hub.is_empty());
    }

    /// A reader draining its queue while a batch is dispatched (on another
    /// thread) must not get an event after one it was never given: once
    /// full in a batch, a subscription gets none of the batch's later
    /// events, and learns it was evicted after the last one it did get.
    #[tokio::test]
    async fn an_evicted_subscription_gets_no_later_event_of_the_batch() {
        use crate::Next;
        use std::sync::Mutex;
        let reader: Arc<Mutex<Option<Subscription<u64>>>> = Arc::default();
        let drained = Arc::new(Mutex::new(Vec::new()));
        let (r, d) = (Arc::clone(&reader), Arc::clone(&drained));
        // Encoding event 3 (after event 2 found the queue full), the
        // reader takes event 1 from the queue: room for event 3.
        let encode = move |e: &Event| {
            if e.seq == 3 {
                let mut guard = r.lock().expect("reader");
                let sub = guard.as_mut().expect("subscribed");
                let next = std::pin::pin!(sub.next());
                let waker = std::task::Waker::noop();
                if let std::task::Poll::Ready(Ok(Next::Event { seq, .. })) =
                    std::future::Future::poll(next, &mut std::task::Context::from_waker(waker))
                {
                    d.lock().expect("drained").push(seq);
                }
            }
            e.seq
        };
        let hub = one_slot_hub(Box::new(encode));
        let sub = hub.subscribe(EventFilter::default(), None).expect("room");
        *reader.lock().expect("reader") = Some(sub);
        // Another subscriber of event 3 only: event 3 is encoded for it
        // even when the slow one is skipped.
        let _other = hub
            .subscribe(filter(None, Some("x"), None), None)
            .expect("room");
        let event = |seq| tick(seq, (seq == 3).then_some("x"), None);
        let batch: EventBatch = vec![event(1), event(2), event(3)].into();
        hub.dispatch(&batch);
        assert_eq!(*drained.lock().expect("drained"), [1]);
        let mut sub = reader.lock().expect("reader").take().expect("subscribed");
        match sub.next().await.expect("next") {
            Next::Evicted { last_seq } => assert_eq!(last_seq, 1),
            Next::Event { seq, .. } => panic!("event {seq} after a gap (2 was never given)"),
        }
    }
}
