//! What the hub's tests share: a store that only holds events and answers
//! `after` (the hub never appends or writes).

#![allow(dead_code)]

use std::sync::Mutex;

use async_trait::async_trait;
use ep_ports::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, EventStore, NewEvent, Stats,
    StoreError, Timestamp,
};

/// A store that only holds events and answers `after`.
#[derive(Default)]
pub struct Log(pub Mutex<Vec<Event>>);

#[async_trait]
impl EventStore for Log {
    async fn append(&self, _: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        unreachable!("the hub never appends")
    }
    async fn append_unless_held(&self, _: Vec<NewEvent>) -> Result<Appended, StoreError> {
        unreachable!("the hub never appends")
    }
    async fn get(&self, _: &EventId) -> Result<Option<Event>, StoreError> {
        Ok(None)
    }
    async fn query(&self, _: EventQuery) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }
    async fn after(
        &self,
        after_seq: u64,
        filter: EventFilter,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let log = self.0.lock().expect("lock");
        Ok(log
            .iter()
            .filter(|e| e.seq > after_seq && filter.matches(e))
            .take(limit)
            .cloned()
            .collect())
    }
    async fn stats(&self, _: Timestamp) -> Result<Stats, StoreError> {
        Ok(Stats {
            total_events: 0,
            events_since: 0,
            by_type: Vec::new(),
        })
    }
    async fn delete_some(&self, _: Deletion, _: usize) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.0.lock().expect("lock").last().map_or(0, |e| e.seq))
    }
    fn shared_by_nodes(&self) -> bool {
        false
    }
    async fn probe_write(&self) -> Result<(), StoreError> {
        unreachable!("the hub never writes")
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
