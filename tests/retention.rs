//! Retention (`RETENTION`): each type's events older than its age are
//! deleted in the background and counted in /metrics, other types' stay;
//! a rule naming no registered type stops start-up (a typo would keep a
//! type's events for ever).

mod support;

use std::process::Command;

use serde_json::Value;
use support::example;
use support::process::{Process, BIN};

async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

async fn text(base: &str, path: &str) -> String {
    reqwest::get(format!("{base}{path}"))
        .await
        .expect("request")
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_types_older_events_are_deleted_in_the_background_and_others_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = vec![
        (
            "DATABASE_PATH",
            dir.path().join("e.db").display().to_string(),
        ),
        ("RETENTION", "timer_tick=1s, *=365d".to_owned()),
        ("RETENTION_INTERVAL_SECONDS", "1".to_owned()),
        ("LOG_FORMAT", "text".to_owned()),
    ];
    let node = tokio::task::spawn_blocking(move || Process::start_with(&vars))
        .await
        .expect("join");
    node.wait_for_log("retention on", 1).await;
    let client = reqwest::Client::new();
    for event_type in [
        "timer_tick",
        "timer_tick",
        "timer_tick",
        "quiz_started",
        "answer_submitted",
    ] {
        let status = client
            .post(format!("{}/api/v1/events", node.base))
            .json(&example(event_type))
            .send()
            .await
            .expect("publish")
            .status();
        assert_eq!(status, 201);
    }
    // A tick is a second old at the first pass after it: then it goes.
    let deleted = node.wait_for_log("retention deleted events", 1).await;
    assert!(
        deleted[0].contains("event_type=\"timer_tick\""),
        "{deleted:?}"
    );
    // The three ticks may fall on both sides of a pass: until all are gone.
    let gone = "event_pipeline_retention_deleted_total{event_type=\"timer_tick\"} 3";
    let mut every = tokio::time::interval(std::time::Duration::from_millis(50));
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = text(&node.base, "/api/v1/metrics").await;
        if metrics.contains(gone) {
            break;
        }
        every.tick().await;
    }
    assert!(metrics.contains(gone), "{metrics}");
    let ticks = get(&node.base, "/api/v1/events?event_type=timer_tick").await;
    assert_eq!(ticks.as_array().map(Vec::len), Some(0), "{ticks}");
    let all = get(&node.base, "/api/v1/events").await;
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(2),
        "kept for 365 days: {all}"
    );
    let stats = get(&node.base, "/api/v1/stats").await;
    assert_eq!(stats["total_events"], 2, "{stats}");
    let metrics = text(&node.base, "/api/v1/metrics").await;
    assert!(
        metrics.contains("event_pipeline_retention_deleted_total{event_type=\"timer_tick\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("event_pipeline_retention_passes_total"),
        "{metrics}"
    );
}

#[test]
fn a_rule_for_no_registered_type_or_a_bad_age_stops_start_up_naming_it() {
    for (value, named) in [
        ("timer_tik=7d", "'timer_tik' is not a registered event type"),
        ("timer_tick=7 days", "'7 days' is not an age"),
        ("timer_tick", "'timer_tick' is not TYPE=AGE"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(BIN)
            .env("RETENTION", value)
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("DATABASE_PATH", dir.path().join("e.db"))
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains("RETENTION") && stderr.contains(named),
            "{value}: {stderr}"
        );
    }
}
