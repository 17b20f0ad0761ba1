//! The service as operators run it: start-up refusals, readiness when the
//! store fails, back-pressure when the queue is full, graceful shutdown on
//! SIGTERM and restart on the same database.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ep_ports::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, EventStore, NewEvent, Stats,
    StoreError, Timestamp,
};
use ep_store_memory::MemoryStore;
use serde_json::{json, Value};
use support::process::Process;
use support::{example, TestServer};
use tokio::sync::{Notify, Semaphore};

use support::process::BIN;

#[test]
fn a_bad_variable_stops_start_up_naming_it_without_a_panic() {
    for (var, value) in [
        ("PORT", "abc"),
        ("RATE_LIMIT_PUBLISH", "lots"),
        ("LOG_LEVEL", "chatty"),
        ("MAX_QUEUE_SIZE", "0"),
    ] {
        let out = Command::new(BIN).env(var, value).output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(var) && stderr.contains("expected"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = Command::new(BIN)
        .env("REQUIRE_AUTH", "true")
        .env_remove("API_KEY")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("API_KEY"));
}

#[test]
fn an_unusable_database_path_stops_start_up_with_a_message() {
    let out = Command::new(BIN)
        .env("DATABASE_PATH", "/proc/nope/events.db")
        .env("PORT", "0")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/proc/nope/events.db"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_port_in_use_stops_start_up_with_exit_2_like_every_start_up_failure() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .env("HOST", "127.0.0.1")
        .env("PORT", &port)
        .env("DATABASE_PATH", dir.path().join("events.db"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert_eq!(
        stderr.matches("cannot listen on").count(),
        1,
        "said once: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn sigterm_commits_everything_acknowledged_and_exits_zero_then_a_restart_serves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("events.db");
    let mut process = Process::start(&db);
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for _ in 0..25 {
        let response = client
            .post(format!("{}/api/v1/events", process.base))
            .json(&example("timer_tick"))
            .send()
            .await
            .expect("publish");
        assert_eq!(response.status(), 201);
        let event: Value = response.json().await.expect("json");
        acknowledged.push(event["id"].as_str().expect("id").to_owned());
    }
    process.signal("TERM");
    let status = tokio::task::spawn_blocking(move || process.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(status.code(), Some(0));

    let mut again = Process::start(&db);
    for id in &acknowledged {
        let response = client
            .get(format!("{}/api/v1/events/{id}", again.base))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{id} lost across restart");
    }
    again.signal("INT");
    let status = tokio::task::spawn_blocking(move || again.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

/// A graceful stop closes the store before it returns: the WAL is copied
/// into the database file and removed, so the file alone (what an operator
/// copies as a backup once the service is stopped) holds every event, and
/// the next start has nothing to recover.
#[tokio::test]
async fn a_graceful_stop_leaves_every_event_in_the_database_file_alone() {
    let server = TestServer::start(&[]).await;
    let mut acknowledged = Vec::new();
    for _ in 0..25 {
        let event = server.publish(&example("timer_tick")).await;
        acknowledged.push(event["id"].as_str().expect("id").to_owned());
    }
    let wal = server.dir.path().join("events.db-wal");
    assert!(wal.exists(), "the commits are in the WAL while it runs");
    let dir = server.stop_keeping_files().await;
    assert!(!wal.exists(), "a graceful stop leaves no WAL");
    let backup = tempfile::tempdir().expect("tempdir");
    let copy = backup.path().join("events.db");
    std::fs::copy(dir.path().join("events.db"), &copy).expect("copy the file alone");
    support::assert_all_stored(&copy, &acknowledged).await;
}

#[tokio::test]
async fn readiness_is_503_while_the_store_is_unreachable() {
    let store = Arc::new(MemoryStore::new());
    let server = TestServer::with_store(&[], store.clone()).await;
    assert_eq!(server.get("/readiness").await.0, 200);
    store.inject_failure(Some(StoreError::Unavailable("disk detached".into())));
    let (status, body) = server.get("/api/v1/readiness").await;
    assert_eq!(status, 503);
    assert_eq!(
        (&body["ready"], &body["database"]),
        (&json!(false), &json!("disconnected"))
    );
    let (status, body) = server.get("/api/v1/events").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].is_string());
    let (status, body) = server.post("/api/v1/events", &example("timer_tick")).await;
    assert_eq!(status, 503, "{body}");
    store.inject_failure(None);
    assert_eq!(server.get("/readiness").await.0, 200);
    server.publish(&example("timer_tick")).await;
}

/// A store whose appends wait for the test to let them through, and which
/// notes any use once it has begun to close.
struct GatedStore {
    inner: MemoryStore,
    gate: Arc<Semaphore>,
    closed: AtomicBool,
    /// Signalled by a use after `close` began.
    used_after_close: Notify,
    /// How long `close` waits for such a use before it returns.
    linger: Duration,
    /// When set, every delete step finds as many rows as it may take (a
    /// delete that never ends by itself), and the first one signals this.
    endless_deletes: Option<Notify>,
}

impl GatedStore {
    fn new(gate: Arc<Semaphore>, linger: Duration) -> Self {
        Self {
            inner: MemoryStore::new(),
            gate,
            closed: AtomicBool::new(false),
            used_after_close: Notify::new(),
            linger,
            endless_deletes: None,
        }
    }

    /// The same store, with deletes that never end by themselves.
    fn with_endless_deletes(mut self) -> Self {
        self.endless_deletes = Some(Notify::new());
        self
    }

    /// Fails a use of the store once it is closing, and says so to `close`.
    fn open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            self.used_after_close.notify_one();
            return Err(StoreError::Unavailable("closed".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for GatedStore {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        self.gate.acquire().await.expect("gate").forget();
        self.open()?;
        self.inner.append(batch).await
    }
    async fn append_unless_held(&self, batch: Vec<NewEvent>) -> Result<Appended, StoreError> {
        self.gate.acquire().await.expect("gate").forget();
        self.open()?;
        self.inner.append_unless_held(batch).await
    }
    async fn get(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        self.open()?;
        self.inner.get(id).await
    }
    async fn query(&self, q: EventQuery) -> Result<Vec<Event>, StoreError> {
        self.open()?;
        self.inner.query(q).await
    }
    async fn after(
        &self,
        after_seq: u64,
        filter: EventFilter,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.open()?;
        self.inner.after(after_seq, filter, limit).await
    }
    async fn stats(&self, since: Timestamp) -> Result<Stats, StoreError> {
        self.open()?;
        self.inner.stats(since).await
    }
    async fn delete_some(&self, what: Deletion, limit: usize) -> Result<u64, StoreError> {
        self.open()?;
        if let Some(step) = &self.endless_deletes {
            step.notify_one();
            return Ok(limit as u64);
        }
        self.inner.delete_some(what, limit).await
    }
    async fn last_seq(&self) -> Result<u64, StoreError> {
        self.open()?;
        self.inner.last_seq().await
    }
    fn shared_by_nodes(&self) -> bool {
        false
    }
    async fn probe_write(&self) -> Result<(), StoreError> {
        self.open()?;
        self.inner.probe_write().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.open()?;
        self.inner.ping().await
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        if tokio::time::timeout(self.linger, self.used_after_close.notified())
            .await
            .is_ok()
        {
            panic!("the store was used after it began to close");
        }
        self.inner.close().await
    }
}

/// Nothing reads the store once it closes: the hub, which reads it
/// whenever the feed has been quiet for half a second, is stopped first
/// (it logged a failed read of a closed store at the end of most stops).
/// `close` waits for a use for three such periods.
#[tokio::test]
async fn a_graceful_stop_uses_the_store_no_more_once_it_closes() {
    let store = Arc::new(GatedStore::new(
        Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        Duration::from_millis(1_500),
    ));
    let server = TestServer::with_store(&[], store.clone()).await;
    let (status, _) = server.post("/api/v1/events", &example("timer_tick")).await;
    assert_eq!(status, 201);
    server.stop().await;
    assert!(store.closed.load(Ordering::Acquire), "the stop closed it");
}

/// A long delete (here one that never ends by itself) does not hold the
/// stop for the open connections' 10 s and then lose its answer: it ends at
/// its next step and answers 503 with how far it got.
#[tokio::test]
async fn a_delete_under_way_when_the_server_stops_answers_503_with_its_count() {
    let store = Arc::new(
        GatedStore::new(
            Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            Duration::ZERO,
        )
        .with_endless_deletes(),
    );
    let server = TestServer::with_store(&[], store.clone()).await;
    let url = server.url("/api/v1/events");
    let deleting = tokio::spawn(async move { reqwest::Client::new().delete(url).send().await });
    store
        .endless_deletes
        .as_ref()
        .expect("endless")
        .notified()
        .await;
    server.stop().await;
    let response = deleting
        .await
        .expect("joined")
        .expect("an answer, not a closed connection");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("JSON");
    let detail = body["detail"].as_str().expect("detail");
    let deleted: u64 = detail
        .split("after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {detail:?}"));
    assert!(deleted >= 1_000, "at least the first step's rows: {detail}");
    assert!(
        detail.contains("shutting down") && detail.contains("send it again"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_accepted_events_still_commit() {
    let gate = Arc::new(Semaphore::new(0));
    let store = Arc::new(GatedStore::new(gate.clone(), Duration::ZERO));
    let server = Arc::new(TestServer::with_store(&[("MAX_QUEUE_SIZE", "2")], store).await);
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let server = Arc::clone(&server);
            tokio::spawn(async move { server.post("/api/v1/events", &example("timer_tick")).await })
        })
        .collect();
    // Wait until both are accepted (the queue reports them), not for a
    // time; the timeout only guards against a hang.
    let accepted = async {
        loop {
            let (_, ready) = server.get("/readiness").await;
            if ready["router"]["queue_size"] == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), accepted)
        .await
        .expect("both publishes are accepted");
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .json(&example("timer_tick"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.expect("json");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("queue")),
        "{body}"
    );
    gate.add_permits(1_000);
    for task in waiting {
        assert_eq!(task.await.expect("join").0, 201);
    }
    assert_eq!(server.get("/stats").await.1["total_events"], 2);
}
