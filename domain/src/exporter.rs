//! The export job: follows the store by seq (not the live bus, so that it
//! survives restarts and never skips) and hands each page of events to an
//! [`EventExport`] (an xAPI LRS), saving how far it came in the shared
//! store; one node at a time holds its lease, another takes over when it
//! stops. At least once: a page whose answer was lost is sent again, and
//! the receiver keeps it once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ep_ports::{EventExport, EventFilter, EventStore, JobState, Timestamp};
use tokio::time::Instant;

/// Events sent at once.
pub(crate) const PAGE: usize = 100;
/// How long an idle job waits before it looks for new events.
pub(crate) const IDLE: Duration = Duration::from_secs(1);
/// How long the job's lease lasts: a node that stops hands over within it.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often the holder renews its lease, and a node without it asks
/// again: a third of its time. An idle holder writes nothing in between.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(10);
/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the export job has done on this node, for the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportReport {
    /// Events the receiver kept (or already held).
    pub delivered: u64,
    /// Events of types with no mapping, skipped.
    pub unmapped: u64,
    /// Events the receiver refused for their content, skipped.
    pub refused: u64,
    /// Tries that failed (each retried).
    pub failures: u64,
    /// The seq delivered through, as saved (`None` before this node held
    /// the lease).
    pub cursor: Option<u64>,
    /// Events stored after the cursor, at the last look.
    pub lag_events: u64,
    /// Age of the oldest event not yet settled, at the last look (0 when
    /// none is waiting).
    pub lag_seconds: f64,
    /// Whether this node holds the job's lease.
    pub holding: bool,
    /// Whether the job runs on this node at all.
    pub running: bool,
}

/// The export job of one receiver.
pub(crate) struct Exporter {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) jobs: Arc<dyn JobState>,
    pub(crate) export: Arc<dyn EventExport>,
    /// This node's name as a lease holder.
    pub(crate) node: String,
    pub(crate) report: Arc<Mutex<ExportReport>>,
    /// When this node last asked for the lease it then held.
    pub(crate) renewed: Option<Instant>,
}

impl Exporter {
    fn report(&self) -> std::sync::MutexGuard<'_, ExportReport> {
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs for ever.
    pub(crate) async fn run(mut self) {
        let job = self.export.name();
        self.report().running = true;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.step(job).await {
                Ok(Step::Sent) => backoff = FIRST_BACKOFF,
                Ok(Step::Idle) => {
                    backoff = FIRST_BACKOFF;
                    tokio::time::sleep(IDLE).await;
                }
                Ok(Step::NotHolding) => tokio::time::sleep(RENEW_EVERY).await,
                Err(reason) => {
                    let failures = {
                        let mut report = self.report();
                        report.failures += 1;
                        report.failures
                    };
                    tracing::warn!(
                        job,
                        failures,
                        retry_in_s = backoff.as_secs(),
                        reason = %reason,
                        "export: a try failed; the same events go again"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One page: the lease, the cursor, the events after it, sent, the
    /// cursor saved.
    pub(crate) async fn step(&mut self, job: &'static str) -> Result<Step, String> {
        let holding = match self.renewed {
            // Held until at least LEASE_TTL after that ask.
            Some(at) if at.elapsed() < RENEW_EVERY => true,
            _ => {
                let asked = Instant::now();
                let holding = self
                    .jobs
                    .try_lease(job, &self.node, LEASE_TTL)
                    .await
                    .map_err(|e| e.to_string())?;
                self.renewed = holding.then_some(asked);
                holding
            }
        };
        let was_holding = std::mem::replace(&mut self.report().holding, holding);
        if !holding {
            return Ok(Step::NotHolding);
        }
        let cursor = self
            .jobs
            .cursor(job)
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or(0);
        if !was_holding {
            tracing::info!(job, node = %self.node, cursor, "export: this node delivers, from the saved cursor");
        }
        let page = self
            .store
            .after(cursor, EventFilter::default(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let last_seq = self.store.last_seq().await.map_err(|e| e.to_string())?;
        {
            let mut report = self.report();
            report.cursor = Some(cursor);
            report.lag_events = last_seq.saturating_sub(cursor);
            report.lag_seconds = page.first().map_or(0.0, |e| {
                let micros = Timestamp::now().as_micros() - e.timestamp.as_micros();
                micros.max(0) as f64 / 1e6
            });
        }
        let Some(through) = page.last().map(|e| e.seq) else {
            return Ok(Step::Idle);
        };
        let exported = self.export.export(&page).await.map_err(|e| e.to_string())?;
        self.jobs
            .save_cursor(job, through)
            .await
            .map_err(|e| e.to_string())?;
        let mut report = self.report();
        report.delivered += exported.delivered;
        report.unmapped += exported.unmapped;
        report.refused += exported.refused;
        report.cursor = Some(through);
        report.lag_events = last_seq.saturating_sub(through);
        Ok(Step::Sent)
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A page was settled and the cursor saved.
    Sent,
    /// Nothing after the cursor.
    Idle,
    /// Another node holds the lease.
    NotHolding,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use ep_ports::{
        Event, EventId, EventType, ExportError, Exported, MockEventExport, MockEventStore,
        MockJobState, Payload,
    };

    use super::*;

    fn event(seq: u64) -> Event {
        Event {
            id: EventId::new(format!("evt_{seq:032x}")),
            event_type: EventType::ANSWER_SUBMITTED,
            source: "quiz-engine".into(),
            session_id: None,
            user_id: Some("stu-1".into()),
            payload: Payload::empty(),
            timestamp: Timestamp::now(),
            occurred_at: None,
            seq,
        }
    }

    /// A store holding events 1..=`last`.
    fn store(last: u64) -> MockEventStore {
        let mut store = MockEventStore::new();
        store.expect_after().returning(move |after, _, limit| {
            Ok((after + 1..=last).take(limit).map(event).collect())
        });
        store.expect_last_seq().returning(move || Ok(last));
        store
    }

    /// Leases always held; the cursor kept in `saved`.
    fn jobs(saved: Arc<AtomicU64>) -> MockJobState {
        let mut jobs = MockJobState::new();
        jobs.expect_try_lease().returning(|_, _, _| Ok(true));
        let read = Arc::clone(&saved);
        jobs.expect_cursor()
            .returning(move |_| Ok(Some(read.load(Ordering::SeqCst)).filter(|s| *s > 0)));
        jobs.expect_save_cursor().returning(move |job, seq| {
            assert_eq!(job, "xapi");
            saved.store(seq, Ordering::SeqCst);
            Ok(())
        });
        jobs
    }

    fn exporter(store: MockEventStore, jobs: MockJobState, export: MockEventExport) -> Exporter {
        Exporter {
            store: Arc::new(store),
            jobs: Arc::new(jobs),
            export: Arc::new(export),
            node: "node-a".into(),
            report: Arc::default(),
            renewed: None,
        }
    }

    #[tokio::test]
    async fn pages_go_in_seq_order_from_the_saved_cursor_and_the_cursor_follows() {
        let saved = Arc::new(AtomicU64::new(100));
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut export = MockEventExport::new();
        export.expect_name().return_const("xapi");
        let seen = Arc::clone(&sent);
        export.expect_export().returning(move |events| {
            seen.lock()
                .expect("sent")
                .extend(events.iter().map(|e| e.seq));
            Ok(Exported {
                delivered: events.len() as u64 - 2,
                unmapped: 1,
                refused: 1,
            })
        });
        let mut x = exporter(store(250), jobs(Arc::clone(&saved)), export);
        assert_eq!(x.step("xapi").await, Ok(Step::Sent));
        assert_eq!(saved.load(Ordering::SeqCst), 200, "a page of 100 after 100");
        assert_eq!(x.step("xapi").await, Ok(Step::Sent));
        assert_eq!(x.step("xapi").await, Ok(Step::Idle));
        assert_eq!(saved.load(Ordering::SeqCst), 250);
        let sent = sent.lock().expect("sent").clone();
        assert_eq!(sent, (101..=250).collect::<Vec<_>>(), "each once, in order");
        let report = x.report().clone();
        assert_eq!(
            (report.delivered, report.unmapped, report.refused),
            (146, 2, 2)
        );
        assert_eq!((report.cursor, report.lag_events), (Some(250), 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_page_goes_again_after_a_back_off_and_the_cursor_waits_for_it() {
        let saved = Arc::new(AtomicU64::new(0));
        let tries = Arc::new(AtomicU64::new(0));
        let mut export = MockEventExport::new();
        export.expect_name().return_const("xapi");
        let counted = Arc::clone(&tries);
        export.expect_export().returning(move |events| {
            if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(ExportError::Unavailable("503".into()));
            }
            Ok(Exported {
                delivered: events.len() as u64,
                ..Exported::default()
            })
        });
        let x = exporter(store(3), jobs(Arc::clone(&saved)), export);
        let report = Arc::clone(&x.report);
        let task = tokio::spawn(x.run());
        while saved.load(Ordering::SeqCst) < 3 {
            assert_eq!(
                saved.load(Ordering::SeqCst),
                0,
                "no cursor before the page is settled"
            );
            tokio::time::advance(FIRST_BACKOFF).await;
            tokio::task::yield_now().await;
        }
        task.abort();
        let report = report.lock().expect("report").clone();
        assert_eq!((report.failures, report.delivered), (2, 3));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_lag_is_what_waits_after_the_cursor_and_the_age_of_the_oldest() {
        let mut store = MockEventStore::new();
        store.expect_after().returning(|after, _, _| {
            let mut first = event(after + 1);
            first.timestamp = Timestamp::now().minus_micros(90_000_000);
            Ok(vec![first, event(after + 2)])
        });
        store.expect_last_seq().returning(|| Ok(40));
        let mut export = MockEventExport::new();
        export.expect_name().return_const("xapi");
        export
            .expect_export()
            .returning(|_| Err(ExportError::Unavailable("503".into())));
        let mut x = exporter(store, jobs(Arc::new(AtomicU64::new(10))), export);
        assert!(x.step("xapi").await.is_err());
        let report = x.report().clone();
        assert_eq!((report.cursor, report.lag_events), (Some(10), 30));
        assert!(
            (90.0..91.0).contains(&report.lag_seconds),
            "{}",
            report.lag_seconds
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_failed_try_doubles_the_wait_before_the_next() {
        let tries = Arc::new(AtomicU64::new(0));
        let mut export = MockEventExport::new();
        export.expect_name().return_const("xapi");
        let counted = Arc::clone(&tries);
        export.expect_export().returning(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Err(ExportError::Unavailable("503".into()))
        });
        let x = exporter(store(3), jobs(Arc::new(AtomicU64::new(0))), export);
        let task = tokio::spawn(x.run());
        let settle = || async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        };
        settle().await;
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        // Waits of 1 s, 2 s, 4 s: tries at 1 s, 3 s and 7 s.
        for (wait, tries_after) in [(1, 2), (2, 3), (4, 4)] {
            tokio::time::advance(Duration::from_secs(wait) - Duration::from_millis(1)).await;
            settle().await;
            assert_eq!(tries.load(Ordering::SeqCst), tries_after - 1, "not yet");
            tokio::time::advance(Duration::from_millis(1)).await;
            settle().await;
            assert_eq!(tries.load(Ordering::SeqCst), tries_after);
        }
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_without_the_lease_asks_for_it_again_every_third_of_its_time() {
        let asked = Arc::new(AtomicU64::new(0));
        let mut jobs = MockJobState::new();
        let counted = Arc::clone(&asked);
        jobs.expect_try_lease().returning(move |_, _, ttl| {
            assert_eq!(ttl, LEASE_TTL);
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(false)
        });
        let mut export = MockEventExport::new();
        export.expect_name().return_const("xapi");
        let x = exporter(MockEventStore::new(), jobs, export);
        let task = tokio::spawn(x.run());
        tokio::task::yield_now().await;
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // A holder that died is replaced well within its lease's time.
        tokio::time::advance(RENEW_EVERY - Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_holder_renews_its_lease_every_third_of_its_time_not_at_each_look() {
        let asked = Arc::new(AtomicU64::new(0));
        let mut jobs = jobs(Arc::new(AtomicU64::new(0)));
        jobs.checkpoint();
        let counted = Arc::clone(&asked);
        jobs.expect_try_lease().returning(move |_, _, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        });
        jobs.expect_cursor().returning(|_| Ok(None));
        let mut export = MockEventExport::new();
        export.expect_name().return_const("xapi");
        let looked = Arc::new(AtomicU64::new(0));
        let mut store = store(0);
        store.checkpoint();
        let counting = Arc::clone(&looked);
        store.expect_after().returning(move |_, _, _| {
            counting.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        });
        store.expect_last_seq().returning(|| Ok(0));
        let task = tokio::spawn(exporter(store, jobs, export).run());
        for _ in 0..25 {
            tokio::task::yield_now().await;
            tokio::time::advance(IDLE).await;
        }
        tokio::task::yield_now().await;
        // It looked for events every second, and asked at 0, 10 and 20 s.
        assert!(looked.load(Ordering::SeqCst) >= 25);
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        task.abort();
    }

    #[tokio::test]
    async fn a_node_without_the_lease_reads_and_sends_nothing() {
        let mut jobs = MockJobState::new();
        jobs.expect_try_lease().returning(|_, _, _| Ok(false));
        // No expectation on the store or the export: a call fails the test.
        let mut export = MockEventExport::new();
        export.expect_name().return_const("xapi");
        let mut x = exporter(MockEventStore::new(), jobs, export);
        assert_eq!(x.step("xapi").await, Ok(Step::NotHolding));
        assert!(!x.report().holding);
    }
}
