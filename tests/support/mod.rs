//! Shared helpers for the end-to-end tests: a real server on 127.0.0.1:0 and
//! an HTTP client pointed at it.

#![allow(dead_code)]

pub mod cluster;
pub mod process;
pub mod raw_ws;

use std::sync::Arc;

use ep_ports::EventStore;
use event_pipeline::{Config, Running};
use serde_json::Value;

/// The realistic example events, one per type (from shared/examples).
pub fn examples() -> Vec<Value> {
    include_str!("../fixtures/events.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("example is JSON"))
        .collect()
}

/// The example of one type.
pub fn example(event_type: &str) -> Value {
    examples()
        .into_iter()
        .find(|e| e["event_type"] == event_type)
        .expect("an example of every type")
}

/// A running server and a client for it.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    running: Option<Running>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server on a fresh SQLite file with these extra variables.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("events.db");
        let config = Self::config(vars, db.to_str().expect("utf-8 path"));
        let running = event_pipeline::start(config).await.expect("server starts");
        Self::around(running, dir)
    }

    /// A server on the given store.
    pub async fn with_store(vars: &[(&str, &str)], store: Arc<dyn EventStore>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Self::config(vars, "unused.db");
        let running = event_pipeline::start_with_store(config, store)
            .await
            .expect("server starts");
        Self::around(running, dir)
    }

    fn config(vars: &[(&str, &str)], db: &str) -> Config {
        // Rate limits are raised unless a test sets its own (later entries win).
        let mut all = vec![
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("DATABASE_PATH", db),
            ("RATE_LIMIT_PUBLISH", "1000000/second"),
            ("RATE_LIMIT_QUERY", "1000000/second"),
            ("RATE_LIMIT_ADMIN", "1000000/second"),
            ("RATE_LIMIT_WS_PUBLISH", "1000000/second"),
        ];
        all.extend_from_slice(vars);
        Config::from_vars(all).expect("test config is valid")
    }

    fn around(running: Running, dir: tempfile::TempDir) -> Self {
        Self {
            base: format!("http://{}", running.local_addr()),
            client: reqwest::Client::new(),
            running: Some(running),
            dir,
        }
    }

    /// The running service (WebSocket bookkeeping, address).
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running until stopped")
    }

    /// `ws://host:port{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.running().local_addr(), path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        Self::answer(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.client
                .delete(self.url(path))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    /// Any request, with extra headers and an optional JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, self.url(path));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// Any request with an optional `X-API-Key`: status and JSON body.
    pub async fn call_with_key(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = key.map(|k| ("X-API-Key", k)).into_iter().collect();
        Self::answer(self.call(method, path, &headers, body).await).await
    }

    /// Publishes and returns the stored event, asserting 201.
    pub async fn publish(&self, body: &Value) -> Value {
        let (status, event) = self.post("/api/v1/events", body).await;
        assert_eq!(status, 201, "publish failed: {event}");
        event
    }

    pub async fn answer(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("body is not JSON ({status}): {text:?}"));
        (status, value)
    }

    /// Graceful shutdown, as on SIGTERM.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    /// Graceful shutdown, keeping the server's folder (its database) for
    /// the caller to look at.
    pub async fn stop_keeping_files(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        self.dir
    }
}

/// Opens the SQLite database at `db` and asserts that it holds every
/// acknowledged event id.
pub async fn assert_all_stored(db: &std::path::Path, acknowledged: &[String]) {
    let store = ep_store_sqlite::SqliteStore::open(db, ep_store_sqlite::Durability::Normal)
        .await
        .expect("reopen");
    for id in acknowledged {
        assert!(
            store
                .get(&ep_ports::EventId::new(id.as_str()))
                .await
                .expect("get")
                .is_some(),
            "{id} was acknowledged but is lost"
        );
    }
}

/// A WebSocket to `path` on `server`.
pub async fn ws_connect(server: &TestServer, path: &str) -> cluster::Ws {
    tokio_tungstenite::connect_async(server.ws_url(path))
        .await
        .expect("handshake")
        .0
}

/// Sends `value` as one text message.
pub async fn ws_send(ws: &mut cluster::Ws, value: &Value) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        value.to_string(),
    ))
    .await
    .expect("send");
}
