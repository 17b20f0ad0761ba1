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
//! Subscriptions with the same filter form a group and share one bounded
//! ring ([`crate::ring`]): an event a group matches is checked and queued
//! once for the group, not once per subscriber (1,000 dashboards of one
//! class cost one push per event). The dispatcher never waits: a full ring
//! drops its oldest event, and a subscription that had not read it has
//! lagged. A live one that lagged is evicted when it next reads (its
//! session closes it with a "slow consumer" code and the seq to resume
//! from); one still replaying stored events replays again from the store.

use std::collections::HashMap;

use crate::id_hash::IdMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use std::time::Duration;

use ep_ports::{Event, EventBatch, EventFeed, EventFilter, EventStore, EventType, FeedItem};
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::delivery::{Dispatched, Feed, Item};
use crate::gauge::SubscriberGauge;
use crate::membership::{Membership, Moved};
use crate::ring::{Reader, Ring};
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
    /// Events a subscription may fall behind before it counts as slow.
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

/// The subscriptions of one filter and the ring they share.
struct Group<F> {
    filter: EventFilter,
    /// Where the group is indexed ([`Key::of`] its filter).
    key: Key,
    ring: Feed<F>,
    /// Subscriptions in the group; it is dropped with its last.
    members: usize,
}

/// Where a group is indexed: under each of several sessions, users or
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

impl Index {
    /// The groups indexed under the first value of `key`: where a group of
    /// the same filter would be. `None` for a key with no value (its group
    /// is indexed nowhere: it matches no event, and is not shared).
    fn first_list(&self, key: &Key) -> Option<&[u64]> {
        let list = match key {
            Key::Sessions(v) => self.by_session.get(v.first()?),
            Key::Users(v) => self.by_user.get(v.first()?),
            Key::Types(v) => self.by_type.get(v.first()?),
            Key::Wildcard => return Some(&self.wildcard),
        };
        Some(list.map_or(&[], Vec::as_slice))
    }
}

#[derive(Default)]
/// Group ids under each key.
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

    /// Every group that may match `event`; each at most once (a group
    /// lives under one key, each of its values once, and an event has one
    /// session, one user and one type).
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

struct Registry<F> {
    groups: IdMap<Group<F>>,
    /// The group of each subscription.
    members: IdMap<u64>,
    index: Index,
    next_group: u64,
}

impl<F: Clone> Registry<F> {
    /// One subscription more in the group of `filter`, made (and indexed)
    /// if there is none: its group id and its place in the group's ring.
    fn join(&mut self, filter: &EventFilter, queue_len: usize) -> (u64, Reader<Item<F>>) {
        let key = Key::of(filter);
        let same = self.index.first_list(&key).and_then(|list| {
            list.iter().copied().find(|gid| {
                self.groups
                    .get(gid)
                    .is_some_and(|group| group.filter == *filter)
            })
        });
        let gid = same.unwrap_or_else(|| {
            let gid = self.next_group;
            self.next_group += 1;
            self.index.insert(key.clone(), gid);
            gid
        });
        let group = self.groups.entry(gid).or_insert_with(|| Group {
            filter: filter.clone(),
            key,
            ring: Ring::new(queue_len),
            members: 0,
        });
        group.members += 1;
        (gid, group.ring.join())
    }

    /// One subscription fewer in group `gid`; the group goes with its last.
    fn leave(&mut self, gid: u64) {
        let Some(group) = self.groups.get_mut(&gid) else {
            return;
        };
        group.members -= 1;
        if group.members == 0 {
            if let Some(group) = self.groups.remove(&gid) {
                self.index.remove(&group.key, gid);
            }
        }
    }
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
    /// The seq of the last event dispatched (or where dispatching starts):
    /// where a subscription that joins now begins.
    dispatched: AtomicU64,
    /// Where subscribers are woken from, if not from the dispatcher's own
    /// thread (see [`Hub::announce_on`]).
    announcer: OnceLock<Handle>,
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
                    groups: IdMap::default(),
                    members: IdMap::default(),
                    index: Index::default(),
                    next_group: 0,
                }),
                config,
                encode,
                store,
                gauge,
                next_id: AtomicU64::new(1),
                node: node_tag(),
                dispatched: AtomicU64::new(0),
                announcer: OnceLock::new(),
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
        let start = self.start_position().await;
        self.inner.dispatched.fetch_max(start, Ordering::AcqRel);
        let mut sequencer = Sequencer::new(start);
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

    /// Wakes the subscribers of each dispatched batch from a task on
    /// `handle`'s runtime (where their connections run) rather than from
    /// the dispatcher's thread: woken from one of its workers, they queue on
    /// that worker, not in the runtime's shared queue, and the dispatcher
    /// is free for the next batch at once. Set once; later calls are
    /// ignored.
    pub fn announce_on(&self, handle: Handle) {
        let _ = self.inner.announcer.set(handle);
    }

    /// How many subscriptions are live.
    pub fn len(&self) -> usize {
        self.inner.read().members.len()
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
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (reader, start) = {
            let mut registry = self.inner.write();
            if registry.members.len() >= self.inner.config.max_subscribers {
                return Err(AtCapacity);
            }
            let (gid, reader) = registry.join(&filter, self.inner.config.queue_len);
            registry.members.insert(id, gid);
            // No batch is being dispatched: everything after this seq goes
            // to the ring just joined.
            (reader, self.inner.dispatched.load(Ordering::Acquire))
        };
        self.inner.gauge.increment();
        Ok(Subscription::new(
            id,
            Arc::clone(&self.inner) as Arc<dyn Membership<F>>,
            reader,
            filter,
            resume_after.unwrap_or(start),
            resume_after.is_some(),
        ))
    }

    /// Hands each event of the batch to the rings of the groups it matches,
    /// then wakes their readers once. Never waits.
    pub fn dispatch(&self, batch: &EventBatch) {
        let registry = self.inner.read();
        // Under the registry's lock, as subscriptions read it when joining.
        if let Some(last) = batch.iter().map(|e| e.seq).max() {
            self.inner.dispatched.fetch_max(last, Ordering::AcqRel);
        }
        if registry.groups.is_empty() {
            return;
        }
        let mut pushed: Vec<Feed<F>> = Vec::new();
        for event in batch.iter() {
            let mut item: Option<Arc<Dispatched<F>>> = None;
            // Parsed once for every payload filter asked about this event.
            let mut payload = None;
            for gid in registry.index.candidates(event) {
                let Some(group) = registry.groups.get(&gid) else {
                    continue;
                };
                if !group.filter.matches_parsed(event, &mut payload) {
                    continue;
                }
                let item = item.get_or_insert_with(|| {
                    Arc::new(Dispatched {
                        event: Arc::clone(event),
                        frame: (self.inner.encode)(event),
                    })
                });
                if group.ring.push(Arc::clone(item)) {
                    pushed.push(Arc::clone(&group.ring));
                }
            }
        }
        match self.inner.announcer.get() {
            Some(handle) if !pushed.is_empty() => {
                handle.spawn(async move {
                    for ring in pushed {
                        ring.announce();
                    }
                });
            }
            _ => {
                for ring in pushed {
                    ring.announce();
                }
            }
        }
    }
}

impl<F: Clone + Send + Sync> Membership<F> for HubInner<F> {
    fn remove(&self, id: u64) -> bool {
        HubInner::remove(self, id)
    }

    fn update_filter(&self, id: u64, filter: EventFilter) -> Option<Moved<F>> {
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

impl<F: Clone> HubInner<F> {
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
        let Some(gid) = registry.members.remove(&id) else {
            return false;
        };
        registry.leave(gid);
        drop(registry);
        self.gauge.decrement();
        true
    }

    /// Moves a subscription to the group of `filter`; `None` if it is no
    /// longer registered. Under the registry's lock no batch is being
    /// dispatched: the old ring's end is exactly where the update begins.
    fn update_filter(&self, id: u64, filter: EventFilter) -> Option<Moved<F>> {
        let mut registry = self.write();
        let old = *registry.members.get(&id)?;
        let cut = registry.groups.get(&old)?.ring.end();
        let (new, reader) = registry.join(&filter, self.config.queue_len);
        registry.members.insert(id, new);
        registry.leave(old);
        Some(Moved { reader, cut })
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

    /// How many groups the hub holds, and the members of each.
    fn groups(hub: &Hub<u64>) -> Vec<usize> {
        let registry = hub.inner.read();
        let mut members: Vec<usize> = registry.groups.values().map(|g| g.members).collect();
        members.sort_unstable();
        members
    }

    /// A filter's group is found under its key whatever else is indexed
    /// there or was made before it.
    #[test]
    fn a_filter_joins_its_group_wherever_the_group_is_indexed() {
        let hub = hub();
        let _first = hub
            .subscribe(filter(None, Some("s0"), None), None)
            .expect("room");
        let _narrower = hub
            .subscribe(filter(None, Some("s1"), Some("u1")), None)
            .expect("room");
        let _class: Vec<_> = (0..2)
            .map(|_| {
                hub.subscribe(filter(None, Some("s1"), None), None)
                    .expect("room")
            })
            .collect();
        let _everything: Vec<_> = (0..2)
            .map(|_| hub.subscribe(EventFilter::default(), None).expect("room"))
            .collect();
        assert_eq!(groups(&hub), [1, 1, 2, 2]);
    }

    #[tokio::test]
    async fn subscriptions_of_the_same_filter_share_one_ring_that_holds_each_event_once() {
        let hub = hub();
        let mut class: Vec<_> = (0..3)
            .map(|_| {
                hub.subscribe(filter(None, Some("s1"), None), None)
                    .expect("room")
            })
            .collect();
        let _other = hub
            .subscribe(filter(None, Some("s1"), Some("u1")), None)
            .expect("room");
        assert_eq!(groups(&hub), [1, 3]);
        hub.dispatch(&vec![tick(1, Some("s1"), None), tick(2, Some("s1"), None)].into());
        {
            let registry = hub.inner.read();
            let held: Vec<usize> = registry.groups.values().map(|g| g.ring.held()).collect();
            assert_eq!(
                held.iter().sum::<usize>(),
                2,
                "{held:?}: once, not once per member"
            );
        }
        for sub in &mut class {
            let got: Vec<u64> = std::iter::from_fn(|| match sub.try_next() {
                Some(crate::Next::Event { seq, .. }) => Some(seq),
                _ => None,
            })
            .collect();
            assert_eq!(got, [1, 2]);
        }
        class.truncate(1);
        assert_eq!(groups(&hub), [1, 1]);
        drop(class);
        assert_eq!(groups(&hub), [1], "a group goes with its last member");
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

    #[tokio::test]
    async fn a_subscription_a_whole_queue_behind_is_evicted_when_it_reads_and_leaves_the_index() {
        use crate::Next;
        let hub = one_slot_hub(Box::new(|e: &Event| e.seq));
        let mut slow = hub
            .subscribe(filter(None, None, Some("u1")), None)
            .expect("room");
        let event = |seq| tick(seq, None, Some("u1"));
        hub.dispatch(&vec![event(1)].into());
        assert!(matches!(slow.try_next(), Some(Next::Event { seq: 1, .. })));
        hub.dispatch(&vec![event(2), event(3)].into());
        // Event 2 was dropped for 3 before it read it: nothing after a gap.
        assert!(slow.try_next().is_none(), "no event after a gap");
        assert_eq!(hub.len(), 1, "still counted until it reads");
        assert_eq!(
            slow.next().await.expect("next"),
            Next::Evicted { last_seq: 1 }
        );
        assert_eq!(indexed(&hub), [0; 4]);
        assert!(hub.is_empty());
    }
}
