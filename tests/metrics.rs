//! `/metrics` after known traffic: the counts match what was done, it is
//! protected like `/stats`, and it is absent with `METRICS=false`.

mod support;

use std::collections::BTreeMap;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::example;
use support::process::Process;
use tokio_tungstenite::tungstenite::Message;

/// Samples of the Prometheus text format: (name, labels) → value.
fn samples(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label=value");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        out.insert((name, labels), value.parse().expect("a number"));
    }
    out
}

fn value(
    samples: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let key = (name.to_owned(), labels);
    samples
        .get(&key)
        .copied()
        .unwrap_or_else(|| panic!("no {key:?} in the scrape"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_known_traffic_counts_it_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = vec![
        (
            "DATABASE_PATH",
            dir.path().join("e.db").display().to_string(),
        ),
        ("REQUIRE_AUTH", "true".to_owned()),
        ("API_KEY", "k-metrics".to_owned()),
        // REST's own bucket; WebSocket publishes have theirs (raised by Process).
        ("RATE_LIMIT_PUBLISH", "4/minute".to_owned()),
    ];
    let node = tokio::task::spawn_blocking(move || Process::start_with(&vars))
        .await
        .expect("join");
    let client = reqwest::Client::new();
    let key = "k-metrics";

    let (mut sub, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/subscribe?api_key={key}", node.addr))
            .await
            .expect("handshake");
    sub.send(Message::text("{}")).await.expect("filter");
    let _ack = sub.next().await;

    let post = |body: serde_json::Value| {
        client
            .post(format!("{}/api/v1/events", node.base))
            .header("X-API-Key", key)
            .json(&body)
            .send()
    };
    for _ in 0..4 {
        assert_eq!(
            post(example("timer_tick")).await.expect("request").status(),
            201
        );
    }
    assert_eq!(
        post(json!({"event_type": "quiz_begun", "source": "q"}))
            .await
            .expect("request")
            .status(),
        422
    );
    let (mut publisher, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/publish?api_key={key}", node.addr))
            .await
            .expect("handshake");
    for _ in 0..2 {
        publisher
            .send(Message::text(example("answer_submitted").to_string()))
            .await
            .expect("send");
        let reply = publisher.next().await.expect("reply").expect("frame");
        assert!(reply.to_text().expect("text").contains("\"ok\""), "{reply}");
    }
    assert_eq!(
        post(example("timer_tick")).await.expect("request").status(),
        429
    );
    // The subscriber has all six before the scrape.
    let mut delivered = 0;
    while delivered < 6 {
        if let Some(Ok(Message::Text(_))) = sub.next().await {
            delivered += 1;
        }
    }

    let refused = client
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), 401, "protected like /stats");
    let scrape = client
        .get(format!("{}/metrics", node.base))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("request");
    assert_eq!(scrape.status(), 200);
    assert!(scrape.headers()["content-type"]
        .to_str()
        .expect("text")
        .starts_with("text/plain"));
    let s = samples(&scrape.text().await.expect("body"));
    let events = "event_pipeline_events_total";
    assert_eq!(
        value(
            &s,
            events,
            &[
                ("event_type", "timer_tick"),
                ("transport", "rest"),
                ("outcome", "committed")
            ]
        ),
        4.0
    );
    assert_eq!(
        value(
            &s,
            events,
            &[
                ("event_type", "answer_submitted"),
                ("transport", "ws"),
                ("outcome", "committed")
            ]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            events,
            &[
                ("event_type", "unknown"),
                ("transport", "rest"),
                ("outcome", "invalid")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            events,
            &[
                ("event_type", "timer_tick"),
                ("transport", "rest"),
                ("outcome", "rate_limited")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "event_pipeline_rate_limited_total",
            &[("class", "publish"), ("caller", "api_key")]
        ),
        1.0
    );
    assert_eq!(
        value(&s, "event_pipeline_publish_to_commit_seconds_count", &[]),
        6.0
    );
    assert_eq!(value(&s, "event_pipeline_commit_batch_size_sum", &[]), 6.0);
    assert!(value(&s, "event_pipeline_commit_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(value(&s, "event_pipeline_deliveries_total", &[]), 6.0);
    // Stage samples are writes to the subscriber (a write may carry more
    // than one event), each taken from the queue before it is written; of
    // these six only the write that starts with seq 1 is sampled.
    let writes = value(&s, "event_pipeline_publish_to_write_seconds_count", &[]);
    assert!((1.0..=6.0).contains(&writes), "{writes} writes");
    assert_eq!(writes, 1.0, "seq 1 is sampled, 2 to 6 are not");
    assert_eq!(
        value(&s, "event_pipeline_publish_to_dequeue_seconds_count", &[]),
        writes
    );
    assert!(
        value(&s, "event_pipeline_publish_to_write_seconds_sum", &[])
            >= value(&s, "event_pipeline_publish_to_dequeue_seconds_sum", &[])
    );
    assert_eq!(
        value(
            &s,
            "event_pipeline_websocket_connections",
            &[("endpoint", "/ws/subscribe")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "event_pipeline_websocket_connections",
            &[("endpoint", "/ws/publish")]
        ),
        1.0
    );
    assert_eq!(value(&s, "event_pipeline_subscribers", &[]), 1.0);
    assert_eq!(value(&s, "event_pipeline_queue_depth", &[]), 0.0);
    // The in-process bus takes every batch.
    assert_eq!(
        value(&s, "event_pipeline_bus_skipped_events_total", &[]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_metrics_off_the_route_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = vec![
        (
            "DATABASE_PATH",
            dir.path().join("e.db").display().to_string(),
        ),
        ("METRICS", "false".to_owned()),
    ];
    let node = tokio::task::spawn_blocking(move || Process::start_with(&vars))
        .await
        .expect("join");
    let r = reqwest::get(format!("{}/metrics", node.base))
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("JSON");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("METRICS")),
        "{body}"
    );
}
