//! Starting and stopping the service: the adapters chosen by configuration,
//! the domain service, the HTTP server, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ep_domain::{EventService, Hub, HubConfig, RetentionPolicy};
use ep_http::{AppState, CorsPolicy, HttpConfig, MetricsText, RefusalLog, Shared, WsShared};
use ep_ports::{Authenticator, EventStore, JobState};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{BroadcasterKind, Config};
use crate::delivery::Delivery;
use crate::pipeline::Pipeline;
pub use crate::start_error::StartError;

/// How long shutdown waits for open HTTP requests before it stops waiting.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long new requests are answered 503 before the listener closes: clients
/// busy on keep-alive connections learn of the shutdown from an answer rather
/// than from a closed connection.
const REFUSAL_WINDOW: Duration = Duration::from_millis(100);
/// How long shutdown waits for WebSocket sessions to close.
const WS_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A started service.
pub struct Running {
    addr: SocketAddr,
    service: Arc<EventService>,
    ws: Arc<WsShared>,
    gate: Arc<crate::access::Gate>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
    /// Background jobs (retention, the xAPI connector): stopped first at
    /// shutdown, and their leases given up so another node takes over at once.
    background: Vec<JoinHandle<()>>,
    /// Where the jobs' leases are, and this node's name as their holder.
    jobs: (Arc<dyn JobState>, String),
    /// The hub's dispatcher, which reads the store whenever the feed is
    /// quiet: stopped once no subscriber is left and every accepted event is
    /// committed, before the store closes.
    hub: JoinHandle<()>,
    /// Closed last, once every accepted event is committed.
    store: Arc<dyn EventStore>,
    /// Stops the publish path's runtime when dropped, after `shutdown`.
    _pipeline: Pipeline,
    /// Stops the subscribers' runtime when dropped, after `shutdown`.
    _delivery: Delivery,
}

impl Running {
    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Open WebSocket sessions and per-address connection counts.
    pub fn websockets(&self) -> &WsShared {
        &self.ws
    }

    /// Reads `API_KEYS_FILE` again (SIGHUP): the new keys are in force for
    /// new requests, and live connections of a key removed or changed are
    /// closed with 4001. A file that is unusable now is logged and the keys
    /// in force stay.
    pub fn reload_keys(&self) {
        match self.gate.reload_keys() {
            Ok(count) => {
                tracing::info!(keys = count, "API_KEYS_FILE reloaded");
                self.ws.keys_reloaded();
            }
            Err(e) => {
                tracing::error!(error = %e, "API_KEYS_FILE not reloaded; the keys in force stay")
            }
        }
    }

    /// Ends deletes under way at their next step (each answers 503 with its
    /// count), answers new requests 503, closes WebSocket sessions with 1001 (a
    /// publisher first gets the replies to everything it sent), stops
    /// accepting connections, lets open requests finish (at most
    /// [`DRAIN_TIMEOUT`]), commits every event already accepted, stops the
    /// hub, then closes the store (SQLite: the database file alone then
    /// holds every event, with no WAL left for the next start to copy).
    pub async fn shutdown(self) {
        // New requests get a clear 503 from now on; WebSockets close with
        // 1001 (publishers first get the replies to all they sent); then the
        // listener closes and open requests finish.
        for job in &self.background {
            job.abort();
        }
        // A long delete (an erasure, `DELETE /api/v1/events`, retention's)
        // ends at its next step and answers 503 with its count, well before
        // the open connections are given up on.
        self.service.stop_deletes();
        let (jobs, node) = &self.jobs;
        for job in [ep_domain::RETENTION_JOB, ep_export_xapi::JOB] {
            if let Err(e) = jobs.release_lease(job, node).await {
                tracing::warn!(job, error = %e, "could not give up a job's lease; another node takes it when it expires");
            }
        }
        self.ws.start_draining();
        let refusing = tokio::time::sleep(REFUSAL_WINDOW);
        self.ws.sessions.close_all(WS_CLOSE_TIMEOUT).await;
        refusing.await;
        let _ = self.stop.send(());
        let mut server = self.server;
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("open connections did not finish in time; closing them");
            server.abort();
        }
        self.service.shutdown().await;
        tracing::info!("every accepted event is committed");
        // No subscriber is left to deliver to, and a read of a closing store
        // would only log a failure.
        self.hub.abort();
        let _ = self.hub.await;
        if let Err(e) = self.store.close().await {
            tracing::warn!(error = %e, "the event store did not close cleanly; the next start recovers what it holds");
        }
        tracing::info!("stopped");
    }
}

/// This node's name as the holder of a background job's lease: the host
/// and the configured port, so that a node restarted where it ran takes
/// its lease back at once, while two nodes of one host (different ports)
/// differ; with port 0 (any free port) a random part instead.
fn node_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".to_owned());
    if port != 0 {
        return format!("{host}:{port}");
    }
    let mut random = [0_u8; 4];
    // Without randomness the process id still tells nodes of one host apart.
    let _ = getrandom::fill(&mut random);
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        u32::from_be_bytes(random)
    )
}

/// Binds the listening socket with `TCP_NODELAY` set, which Linux passes on
/// to every accepted connection: small frames (WebSocket replies and events)
/// must leave at once, not wait for the previous one's acknowledgement.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Opens the configured store, starts the domain and serves HTTP on the
/// configured address.
///
/// # Errors
/// `StartError` when the store cannot be opened or the address bound.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let (store, jobs) = crate::connect::open_store(&config).await?;
    start_with_stores(config, store, jobs).await
}

/// Like [`start`], on a store the caller built (another adapter, or one
/// with faults injected for tests). `EVENT_STORE` and `DATABASE_PATH` are
/// ignored; the broadcaster is the configured one.
///
/// # Errors
/// `StartError` when the broadcaster cannot be reached or the address
/// cannot be bound.
pub async fn start_with_store(
    config: Config,
    store: Arc<dyn EventStore>,
) -> Result<Running, StartError> {
    // Background jobs' leases and cursors in this process only.
    start_with_stores(config, store, Arc::new(ep_store_memory::MemoryStore::new())).await
}

/// Like [`start_with_store`], with the background jobs' leases and cursors
/// kept in `jobs`.
///
/// # Errors
/// As [`start_with_store`].
pub async fn start_with_stores(
    config: Config,
    store: Arc<dyn EventStore>,
    jobs: Arc<dyn JobState>,
) -> Result<Running, StartError> {
    let (store, metrics): (Arc<dyn EventStore>, Option<MetricsText>) = if config.metrics {
        let metrics = ep_metrics::Metrics::install();
        ep_http::describe_metrics();
        (
            Arc::new(ep_metrics::MeteredStore(store)),
            Some(Arc::new(move || metrics.render())),
        )
    } else {
        (store, None)
    };
    let broadcaster = crate::connect::open_broadcaster(&config).await?;
    if config.broadcaster != BroadcasterKind::Local && !store.shared_by_nodes() {
        return Err(StartError::Inconsistent(
            "this store is one process's own: a broadcaster between nodes needs a store they share (EVENT_STORE=postgres)",
        ));
    }
    let gate = Arc::new(crate::access::Gate::from_config(&config)?);
    let event_types = crate::event_types::load(
        config.event_types_file.as_deref().map(std::path::Path::new),
        config.schema_mode.mode(),
    )?;
    let declared = event_types.declarations().len();
    let retention = match &config.retention {
        Some(text) => {
            RetentionPolicy::parse(text, |name| event_types.get(name), || event_types.names())?
        }
        None => RetentionPolicy::default(),
    };
    let auth: Arc<dyn Authenticator> = gate.clone();
    // The writer (spawned by `EventService::start`) and the hub run on the
    // publish path's own thread: see `pipeline.rs`.
    let pipeline = Pipeline::start().map_err(StartError::Thread)?;
    let service = {
        let _on_pipeline = pipeline.handle().enter();
        Arc::new(
            EventService::start(
                Arc::clone(&store),
                Arc::clone(&broadcaster),
                config.limits(),
                config.rate_limits(),
            )
            .with_event_types(Arc::new(event_types)),
        )
    };
    let node = node_name(config.port);
    let retention_task = {
        let _on_pipeline = pipeline.handle().enter();
        if let Some(text) = &config.retention {
            tracing::info!(
                policy = %text,
                interval_s = config.retention_interval.as_secs(),
                node = %node,
                "retention on: older events are deleted by one node at a time"
            );
        }
        service.start_retention(
            retention,
            Arc::clone(&jobs),
            config.retention_interval,
            node.clone(),
        )
    };
    let export_task = match &config.xapi_lrs_url {
        Some(url) => {
            let lrs = ep_export_xapi::XapiLrs::new(ep_export_xapi::XapiConfig {
                endpoint: url.clone(),
                username: config.xapi_lrs_username.clone(),
                password: config
                    .xapi_lrs_password
                    .clone()
                    .map(secrecy::SecretString::from),
                version: config.xapi_version.clone(),
                home_page: config.xapi_account_homepage.clone(),
            })
            .map_err(StartError::Export)?;
            tracing::info!(
                lrs = %crate::config::redact_url(url),
                node = %node,
                "xAPI connector on: stored events go to the LRS as statements, from the saved cursor"
            );
            // On the main runtime: it waits on the LRS, not on the publish path.
            Some(service.start_export(Arc::new(lrs), Arc::clone(&jobs), node.clone()))
        }
        None => None,
    };
    let hub = Hub::new(
        Arc::clone(&store),
        service.subscriber_gauge(),
        HubConfig {
            max_subscribers: config.max_subscribers,
            queue_len: config.ws_subscriber_queue,
        },
        Box::new(ep_http::event_frame),
    );
    // The hub runs on the pipeline thread; subscribers are woken from the
    // runtime their connections run on: see `delivery.rs`.
    let delivery = Delivery::start(config.delivery_threads()).map_err(StartError::Thread)?;
    hub.announce_on(delivery.handle().clone());
    let hub_task = pipeline
        .handle()
        .spawn(hub.clone().run(broadcaster.subscribe().await?));
    let ws = Arc::new(
        WsShared::new(config.max_ws_connections_per_ip)
            .with_subscribers_on(delivery.handle().clone()),
    );
    let state = AppState::new(Shared {
        service: Arc::clone(&service),
        hub,
        auth,
        config: HttpConfig {
            max_body_bytes: config.max_body_bytes,
            max_ws_message_bytes: config.max_ws_message_bytes,
            ws_filter_timeout: config.ws_filter_timeout,
            ws_keepalive: config.ws_keepalive,
            cors: CorsPolicy::new(&config.cors_origins),
            trusted_proxies: config.trusted_proxies.clone(),
            tokens: config.jwt_hs256_secret.is_some() || config.jwt_public_keys.is_some(),
            version: env!("CARGO_PKG_VERSION"),
            broadcaster: config.broadcaster.bus_name(),
            caliper_stripped: config.caliper_strip_fields.clone(),
            node: node.clone(),
        },
        ws: Arc::clone(&ws),
        refusals: RefusalLog::default(),
        metrics,
    });
    let addr = SocketAddr::new(config.host, config.port);
    let listener = listen(addr).map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(ep_http::serve(listener, state, async {
        let _ = stopped.await;
    }));
    if !config.require_auth && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "listening beyond this host with REQUIRE_AUTH=false: anyone who can reach \
             this address can publish, read and DELETE events; set REQUIRE_AUTH=true with \
             API_KEY, API_KEYS_FILE or JWT_* (or HOST=127.0.0.1)"
        );
    }
    tracing::info!(
        %addr,
        version = env!("CARGO_PKG_VERSION"),
        event_types = declared,
        schema_mode = ?config.schema_mode,
        "event-pipeline listening"
    );
    Ok(Running {
        addr,
        service,
        ws,
        gate,
        stop,
        server,
        background: retention_task.into_iter().chain(export_task).collect(),
        jobs: (jobs, node),
        hub: hub_task,
        store,
        _pipeline: pipeline,
        _delivery: delivery,
    })
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::connect_async;
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// The next text frame, as JSON.
    async fn next_json(ws: &mut Ws) -> serde_json::Value {
        loop {
            match ws.next().await.expect("a frame").expect("a good frame") {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    async fn send(ws: &mut Ws, value: serde_json::Value) {
        ws.send(Message::text(value.to_string()))
            .await
            .expect("sent");
    }

    fn event(session: &str) -> serde_json::Value {
        serde_json::json!({
            "event_type": "quiz_started",
            "source": "quiz-engine",
            "session_id": session,
            "user_id": "stu-1042",
            "payload": {"quiz_id": "algebra-unit-3", "total_questions": 12, "time_limit_seconds": 1800}
        })
    }

    #[tokio::test]
    async fn subscriber_connections_run_on_the_subscribers_runtime_and_publishers_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("events.db");
        let config = Config::from_vars([
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("DATABASE_PATH", db.to_str().expect("utf-8 path")),
        ])
        .expect("config");
        let running = start(config).await.expect("starts");
        let base = format!("ws://{}/ws", running.local_addr());
        let tasks = running._delivery.handle().metrics();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(tasks.num_workers(), (cores / 2).max(1), "half the cores");
        assert_eq!(tasks.num_alive_tasks(), 0, "nothing runs there at start");

        let (mut publisher, _) = connect_async(format!("{base}/publish"))
            .await
            .expect("publisher");
        send(&mut publisher, event("s-before")).await;
        assert_eq!(next_json(&mut publisher).await["status"], "ok");
        assert_eq!(
            tasks.num_alive_tasks(),
            0,
            "a publisher's connection runs on the runtime that accepted it"
        );

        let (mut subscriber, _) = connect_async(format!("{base}/subscribe"))
            .await
            .expect("subscriber");
        send(&mut subscriber, serde_json::json!({"session_id": "s-1"})).await;
        assert_eq!(next_json(&mut subscriber).await["status"], "subscribed");
        assert_eq!(
            tasks.num_alive_tasks(),
            1,
            "the subscriber's connection runs on the subscribers' runtime"
        );

        // And it is delivered to from there.
        send(&mut publisher, event("s-1")).await;
        assert_eq!(next_json(&mut publisher).await["status"], "ok");
        let delivered = next_json(&mut subscriber).await;
        assert_eq!(delivered["session_id"], "s-1", "{delivered}");

        running.shutdown().await;
    }
}
