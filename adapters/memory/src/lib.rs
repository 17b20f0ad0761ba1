//! An `EventStore` held in memory: nothing survives the process. For tests,
//! experiments, and as the reference the conformance suite is written against.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

mod job_state;

use async_trait::async_trait;
use ep_ports::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, EventStore, IdempotencyKey,
    NewEvent, Stats, StoreError, Timestamp, TypeStats,
};

/// Events in a map ordered by sequence number.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    events: BTreeMap<u64, Event>,
    by_id: HashMap<EventId, u64>,
    /// Each idempotency key given, with the seqs of the events that hold it
    /// (oldest first; a deleted one is skipped when looked up).
    by_key: HashMap<String, Vec<u64>>,
    /// The key each keyed event was stored with: what a delete takes out
    /// of `by_key`, so that the index holds only stored events.
    key_of: HashMap<u64, String>,
    last_seq: u64,
    /// Each job's lease: its holder and when it expires.
    leases: HashMap<String, (String, std::time::Instant)>,
    /// Each job's cursor.
    cursors: HashMap<String, u64>,
    /// When set, every operation fails with this error (fault injection).
    failure: Option<StoreError>,
}

impl Inner {
    /// The stored event holding `idempotency`'s key within its window.
    fn holder(&self, idempotency: &IdempotencyKey) -> Option<&Event> {
        self.by_key.get(&idempotency.key).and_then(|seqs| {
            seqs.iter()
                .filter_map(|seq| self.events.get(seq))
                .find(|e| e.timestamp >= idempotency.since)
        })
    }

    /// Appends `batch` as [`EventStore::append`] says.
    fn append(&mut self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        for e in &batch {
            if self.by_id.contains_key(&e.id) || !seen.insert(&e.id) {
                return Err(StoreError::DuplicateId(e.id.clone()));
            }
        }
        let mut stored = Vec::with_capacity(batch.len());
        for new in batch {
            if let Some(idempotency) = &new.idempotency {
                if let Some(existing) = self.holder(idempotency) {
                    stored.push(existing.clone());
                    continue;
                }
            }
            self.last_seq += 1;
            let seq = self.last_seq;
            self.by_id.insert(new.id.clone(), seq);
            if let Some(idempotency) = &new.idempotency {
                self.by_key
                    .entry(idempotency.key.clone())
                    .or_default()
                    .push(seq);
                self.key_of.insert(seq, idempotency.key.clone());
            }
            let event = new.into_event(seq);
            self.events.insert(seq, event.clone());
            stored.push(event);
        }
        Ok(stored)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every following operation fail with `failure` (or succeed again
    /// with `None`): lets tests see how the service behaves when its store is
    /// unreachable.
    pub fn inject_failure(&self, failure: Option<StoreError>) {
        self.lock().failure = failure;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves the maps consistent before it can panic, so
        // a poisoned lock still guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checked(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        let inner = self.lock();
        match &inner.failure {
            Some(e) => Err(e.clone()),
            None => Ok(inner),
        }
    }
}

fn matches(event: &Event, query: &EventQuery) -> bool {
    query.event_type.is_none_or(|t| t == event.event_type)
        && query
            .session_id
            .as_ref()
            .is_none_or(|s| event.session_id.as_ref() == Some(s))
        && query
            .user_id
            .as_ref()
            .is_none_or(|u| event.user_id.as_ref() == Some(u))
        && query.since.is_none_or(|since| event.timestamp > since)
        && query
            .occurred_since
            .is_none_or(|from| event.occurred_at.is_some_and(|at| at >= from))
        && query
            .occurred_before
            .is_none_or(|before| event.occurred_at.is_some_and(|at| at < before))
        && query.scope.allows(event)
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let mut inner = self.checked()?;
        inner.append(batch)
    }

    async fn append_unless_held(&self, batch: Vec<NewEvent>) -> Result<Appended, StoreError> {
        let mut inner = self.checked()?;
        let held: Vec<(usize, Event)> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, new)| {
                let idempotency = new.idempotency.as_ref()?;
                inner.holder(idempotency).map(|holder| (i, holder.clone()))
            })
            .collect();
        if !held.is_empty() {
            return Ok(Appended::Held(held));
        }
        inner.append(batch).map(Appended::Stored)
    }

    async fn get(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let inner = self.checked()?;
        Ok(inner
            .by_id
            .get(id)
            .and_then(|seq| inner.events.get(seq))
            .cloned())
    }

    async fn query(&self, query: EventQuery) -> Result<Vec<Event>, StoreError> {
        let inner = self.checked()?;
        Ok(inner
            .events
            .values()
            .rev()
            .filter(|e| matches(e, &query))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn after(
        &self,
        after_seq: u64,
        filter: EventFilter,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let inner = self.checked()?;
        Ok(inner
            .events
            .range(after_seq.saturating_add(1)..)
            .map(|(_, e)| e)
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn stats(&self, since: Timestamp) -> Result<Stats, StoreError> {
        let inner = self.checked()?;
        let mut by_type: HashMap<_, TypeStats> = HashMap::new();
        let mut events_since = 0;
        for e in inner.events.values() {
            if e.timestamp > since {
                events_since += 1;
            }
            let row = by_type.entry(e.event_type).or_insert(TypeStats {
                event_type: e.event_type,
                count: 0,
                last_seen: e.timestamp,
            });
            row.count += 1;
            // Events are in seq order: the last one seen is the newest.
            row.last_seen = e.timestamp;
        }
        let mut by_type: Vec<_> = by_type.into_values().collect();
        TypeStats::sort(&mut by_type);
        Ok(Stats {
            total_events: inner.events.len() as u64,
            events_since,
            by_type,
        })
    }

    async fn delete_some(&self, what: Deletion, limit: usize) -> Result<u64, StoreError> {
        let mut inner = self.checked()?;
        let doomed: Vec<(u64, EventId)> = inner
            .events
            .range(..=what.through_seq)
            .map(|(_, e)| e)
            .filter(|e| what.selects(e))
            .take(limit)
            .map(|e| (e.seq, e.id.clone()))
            .collect();
        let inner = &mut *inner;
        for (seq, id) in &doomed {
            inner.events.remove(seq);
            inner.by_id.remove(id);
            if let Some(key) = inner.key_of.remove(seq) {
                if let Some(seqs) = inner.by_key.get_mut(&key) {
                    seqs.retain(|s| s != seq);
                    if seqs.is_empty() {
                        inner.by_key.remove(&key);
                    }
                }
            }
        }
        Ok(doomed.len() as u64)
    }

    async fn last_seq(&self) -> Result<u64, StoreError> {
        self.checked().map(|inner| inner.last_seq)
    }

    /// Memory is one process's own.
    fn shared_by_nodes(&self) -> bool {
        false
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        self.checked().map(drop)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.checked().map(drop)
    }

    /// Nothing to put anywhere: the events live as long as the value, and
    /// calls after it answer as before.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    ep_conformance::conformance_suite!(async { (MemoryStore::new(), ()) });
    ep_conformance::job_state_suite!(async { (MemoryStore::new(), ()) });

    #[tokio::test]
    async fn deleted_events_leave_no_idempotency_key_behind() {
        let store = MemoryStore::new();
        let keyed = |n: i64, key: &str| NewEvent {
            idempotency: Some(IdempotencyKey {
                key: key.into(),
                since: ep_conformance::at(-10),
            }),
            ..ep_conformance::new_event(n, ep_ports::EventType::TIMER_TICK, None, None)
        };
        store
            .append(vec![keyed(0, "a"), keyed(1, "b")])
            .await
            .expect("append");
        let what = |through_seq| Deletion {
            before: Some(ep_conformance::at(1)),
            event_type: None,
            user_id: None,
            through_seq,
        };
        assert_eq!(store.delete_some(what(2), 10).await.expect("delete"), 1);
        {
            let inner = store.lock();
            assert_eq!(inner.by_key.keys().collect::<Vec<_>>(), ["b"]);
            assert_eq!(inner.key_of.len(), 1);
        }
        // The deleted event's key is free again; the kept one still holds.
        let again = store
            .append(vec![keyed(2, "a"), keyed(3, "b")])
            .await
            .expect("append");
        assert_eq!(again[0].seq, 3, "stored anew");
        assert_eq!(again[1].seq, 2, "the holder answers");
        store
            .delete_some(
                Deletion {
                    before: None,
                    ..what(3)
                },
                10,
            )
            .await
            .expect("delete all");
        let inner = store.lock();
        assert!(inner.by_key.is_empty() && inner.key_of.is_empty());
    }

    #[tokio::test]
    async fn an_injected_failure_fails_every_operation_until_cleared() {
        let store = MemoryStore::new();
        store.inject_failure(Some(StoreError::Unavailable("test".into())));
        assert!(store.ping().await.is_err());
        assert!(store.probe_write().await.is_err());
        assert!(store.query(EventQuery::latest(1)).await.is_err());
        assert!(store.append(Vec::new()).await.is_err());
        assert!(store.append_unless_held(Vec::new()).await.is_err());
        store.inject_failure(None);
        assert!(store.ping().await.is_ok());
        assert!(store.probe_write().await.is_ok());
    }

    #[test]
    fn memory_is_one_process_own() {
        assert!(!MemoryStore::new().shared_by_nodes());
    }
}
