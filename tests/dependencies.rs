//! The service and the servers it depends on (PostgreSQL, NATS, Redis):
//! one that is down at start-up is retried, then start-up fails with exit 2
//! naming it; one that comes up meanwhile is waited for; a store that goes
//! down at run time gives 503 with Retry-After and readiness 503 until it
//! is back, then the service goes on by itself.

mod support;

use std::process::Command;
use std::time::Duration;

use ep_conformance::services::{server, unique_name, unreachable, Service};
use ep_conformance::Link;
use ep_store_postgres::testing::TempSchema;
use serde_json::Value;
use support::example;
use support::process::{Process, BIN};

/// A guard against a hang; never what a test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

async fn schema() -> Option<TempSchema> {
    let base = server(Service::Postgres).await?;
    match TempSchema::create(&base, unique_name("ep_deps")).await {
        Ok(schema) => Some(schema),
        Err(e) => {
            unreachable(Service::Postgres, &base, e);
            None
        }
    }
}

/// The address of the server of the database at `url`.
fn postgres_addr(url: &str) -> std::net::SocketAddr {
    let authority = url
        .split_once('@')
        .map_or(url, |(_, rest)| rest)
        .trim_start_matches("postgres://");
    let host_port = authority.split('/').next().expect("host:port");
    host_port
        .parse()
        .expect("the test database's URL names IP:PORT")
}

/// The database URL `url` with its host and port replaced by `addr`.
fn via(url: &str, addr: std::net::SocketAddr) -> String {
    let real = postgres_addr(url).to_string();
    url.replace(&real, &addr.to_string())
}

#[tokio::test]
async fn a_dependency_down_at_start_up_is_retried_then_start_up_fails_with_exit_2_naming_it() {
    let Some(schema) = schema().await else { return };
    let cases = [
        (
            "PostgreSQL",
            vec![
                ("EVENT_STORE", "postgres".to_owned()),
                (
                    "DATABASE_URL",
                    "postgres://app:s3cret@127.0.0.1:1/events".to_owned(),
                ),
            ],
            "127.0.0.1:1",
        ),
        (
            "NATS",
            vec![
                ("EVENT_STORE", "postgres".to_owned()),
                ("DATABASE_URL", schema.url()),
                ("BROADCASTER", "nats".to_owned()),
                ("NATS_URL", "nats://127.0.0.1:1".to_owned()),
            ],
            "nats://127.0.0.1:1",
        ),
        (
            "Redis",
            vec![
                ("EVENT_STORE", "postgres".to_owned()),
                ("DATABASE_URL", schema.url()),
                ("BROADCASTER", "redis".to_owned()),
                ("REDIS_URL", "redis://127.0.0.1:1".to_owned()),
            ],
            "redis://127.0.0.1:1",
        ),
    ];
    for (dependency, vars, target) in cases {
        let mut command = Command::new(BIN);
        command
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("STARTUP_TIMEOUT_SECONDS", "2");
        for (k, v) in &vars {
            command.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("join")
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{dependency}: {stderr}");
        assert!(
            stderr.contains(dependency) && stderr.contains(target),
            "{stderr}"
        );
        assert!(
            stderr.contains("retrying"),
            "{dependency}: the retries are logged: {stderr}"
        );
        assert!(
            !stderr.contains("s3cret"),
            "no password in the messages: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_comes_up_during_start_up_is_waited_for() {
    let Some(schema) = schema().await else { return };
    let link = Link::to(postgres_addr(&schema.url())).await.expect("link");
    link.cut();
    let vars = vec![
        ("EVENT_STORE", "postgres".to_owned()),
        ("DATABASE_URL", via(&schema.url(), link.addr())),
        ("STARTUP_TIMEOUT_SECONDS", "60".to_owned()),
    ];
    let starting = tokio::task::spawn_blocking(move || Process::start_with(&vars));
    // Wait until the service has tried twice, then let PostgreSQL "come up".
    let mut every = tokio::time::interval(Duration::from_millis(20));
    tokio::time::timeout(PATIENCE, async {
        while link.attempts() < 2 {
            every.tick().await;
        }
    })
    .await
    .expect("the service retries");
    link.restore();
    let node = tokio::time::timeout(PATIENCE, starting)
        .await
        .expect("starts in time")
        .expect("join");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/events", node.base))
        .json(&example("timer_tick"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_at_run_time_is_503_with_retry_after_until_it_is_back() {
    let Some(schema) = schema().await else { return };
    let link = Link::to(postgres_addr(&schema.url())).await.expect("link");
    let vars = vec![
        ("EVENT_STORE", "postgres".to_owned()),
        ("DATABASE_URL", via(&schema.url(), link.addr())),
    ];
    let node = tokio::task::spawn_blocking(move || Process::start_with(&vars))
        .await
        .expect("join");
    let client = reqwest::Client::new();
    let publish = || {
        client
            .post(format!("{}/api/v1/events", node.base))
            .json(&example("timer_tick"))
            .send()
    };
    assert_eq!(publish().await.expect("request").status(), 201);
    link.cut();
    let r = publish().await.expect("request");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.expect("JSON");
    assert!(body["detail"].is_string(), "{body}");
    let ready = client
        .get(format!("{}/readiness", node.base))
        .send()
        .await
        .expect("request");
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.expect("JSON");
    assert_eq!(ready["database"], "disconnected", "{ready}");
    link.restore();
    // Back by itself: the pool makes new connections.
    let mut every = tokio::time::interval(Duration::from_millis(50));
    tokio::time::timeout(PATIENCE, async {
        loop {
            every.tick().await;
            if publish().await.is_ok_and(|r| r.status() == 201) {
                return;
            }
        }
    })
    .await
    .expect("publishing works again once PostgreSQL is back");
}
