//! An `EventStore` that measures the store it wraps: commit batch sizes and
//! durations, publish-to-commit latency (from each event's receive time),
//! and errors by operation. Every store is measured the same way, in one
//! place.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ep_ports::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, EventStore, NewEvent, Stats,
    StoreError, Timestamp,
};

/// Events per committed batch.
pub(crate) const COMMIT_BATCH_SIZE: &str = "event_pipeline_commit_batch_size";
/// Time one batch took to commit.
const COMMIT_SECONDS: &str = "event_pipeline_commit_duration_seconds";
/// From an event's receipt to its commit.
const PUBLISH_TO_COMMIT_SECONDS: &str = "event_pipeline_publish_to_commit_seconds";
/// Store operations that failed, by operation and error kind.
const STORE_ERRORS: &str = "event_pipeline_store_errors_total";

pub(crate) fn describe() {
    metrics::describe_histogram!(COMMIT_BATCH_SIZE, "Events per committed batch");
    metrics::describe_histogram!(
        COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time one batch took to commit"
    );
    metrics::describe_histogram!(
        PUBLISH_TO_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time from an event's receipt to its commit"
    );
    metrics::describe_counter!(
        STORE_ERRORS,
        "Event store operations that failed, by operation and kind"
    );
}

fn kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Full(_) => "full",
        StoreError::Corrupt(_) => "corrupt",
        StoreError::DuplicateId(_) => "duplicate_id",
    }
}

/// Counts a failed operation.
fn counted<T>(operation: &'static str, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(e) = &outcome {
        metrics::counter!(STORE_ERRORS, "operation" => operation, "kind" => kind(e)).increment(1);
    }
    outcome
}

/// Records a committed batch of `size` events, begun at `started`.
fn committed(size: usize, started: Instant, stored: &[Event]) {
    metrics::histogram!(COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    metrics::histogram!(COMMIT_BATCH_SIZE).record(size as f64);
    let now = Timestamp::now().as_micros();
    let latency = metrics::histogram!(PUBLISH_TO_COMMIT_SECONDS);
    for event in stored {
        let micros = now.saturating_sub(event.timestamp.as_micros()).max(0);
        latency.record(micros as f64 / 1e6);
    }
}

/// Wraps a store; measures it.
pub struct MeteredStore(pub Arc<dyn EventStore>);

#[async_trait]
impl EventStore for MeteredStore {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let size = batch.len();
        let started = Instant::now();
        let outcome = counted("append", self.0.append(batch).await);
        if let Ok(stored) = &outcome {
            committed(size, started, stored);
        }
        outcome
    }

    async fn append_unless_held(&self, batch: Vec<NewEvent>) -> Result<Appended, StoreError> {
        let size = batch.len();
        let started = Instant::now();
        let outcome = counted("append", self.0.append_unless_held(batch).await);
        if let Ok(Appended::Stored(stored)) = &outcome {
            committed(size, started, stored);
        }
        outcome
    }

    async fn get(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        counted("get", self.0.get(id).await)
    }

    async fn query(&self, query: EventQuery) -> Result<Vec<Event>, StoreError> {
        counted("query", self.0.query(query).await)
    }

    async fn after(
        &self,
        after_seq: u64,
        filter: EventFilter,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        counted("after", self.0.after(after_seq, filter, limit).await)
    }

    async fn stats(&self, since: Timestamp) -> Result<Stats, StoreError> {
        counted("stats", self.0.stats(since).await)
    }

    async fn delete_some(&self, what: Deletion, limit: usize) -> Result<u64, StoreError> {
        counted("delete_some", self.0.delete_some(what, limit).await)
    }

    async fn last_seq(&self) -> Result<u64, StoreError> {
        counted("last_seq", self.0.last_seq().await)
    }

    fn shared_by_nodes(&self) -> bool {
        self.0.shared_by_nodes()
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        counted("probe_write", self.0.probe_write().await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        counted("ping", self.0.ping().await)
    }

    async fn close(&self) -> Result<(), StoreError> {
        counted("close", self.0.close().await)
    }
}

#[cfg(test)]
mod tests {
    use ep_store_memory::MemoryStore;

    use super::*;

    // A wrapped store is still a store in every respect.
    ep_conformance::conformance_suite!(async { (MeteredStore(Arc::new(MemoryStore::new())), ()) });

    #[test]
    fn commits_and_errors_are_recorded() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let store = MeteredStore(Arc::new(MemoryStore::new()));
        let batch = (0..3)
            .map(|n| ep_conformance::new_event(n, ep_ports::EventType::TIMER_TICK, None, None))
            .collect::<Vec<_>>();
        metrics::with_local_recorder(&recorder, || {
            futures_block_on(async {
                store.append(batch.clone()).await.expect("append");
                store.append(batch).await.expect_err("duplicates");
            });
        });
        let text = handle.render();
        assert!(
            text.contains("event_pipeline_commit_batch_size_count 1"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"event_pipeline_store_errors_total{operation="append",kind="duplicate_id"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("event_pipeline_publish_to_commit_seconds_count 3"),
            "{text}"
        );
    }

    /// Runs a future that needs no reactor (the memory store) to completion.
    fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }
}
