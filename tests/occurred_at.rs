//! `occurred_at` over real sockets: the producer's clock, stored and
//! returned beside `timestamp` (REST, by id, live over WebSocket), filtered
//! with `occurred_since` / `occurred_before`, and refused when it is further
//! ahead of the server's clock than `MAX_CLOCK_SKEW_SECONDS`.

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::TestServer;
use tokio_tungstenite::tungstenite::Message;

fn tick(n: u64, occurred_at: Option<&str>) -> Value {
    let mut event = json!({"event_type": "timer_tick", "source": "timer-service",
                           "session_id": "s-occ", "payload": {"n": n}});
    if let Some(at) = occurred_at {
        event["occurred_at"] = json!(at);
    }
    event
}

fn ns(events: &Value) -> Vec<u64> {
    events
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["payload"]["n"].as_u64().expect("n"))
        .collect()
}

#[tokio::test]
async fn occurred_at_is_stored_returned_delivered_and_filtered() {
    let server = TestServer::start(&[]).await;
    let (mut sub, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/subscribe"))
        .await
        .expect("handshake");
    sub.send(Message::text(json!({"session_id": "s-occ"}).to_string()))
        .await
        .expect("send");
    let _ack = sub.next().await;

    let first = server
        .publish(&tick(1, Some("2026-12-01T09:00:00+01:00")))
        .await;
    assert_eq!(
        first["occurred_at"], "2026-12-01T08:00:00.000000Z",
        "normalized to UTC"
    );
    assert!(first["timestamp"].as_str().expect("ts") > "2026-12-03");
    server.publish(&tick(2, Some("2026-12-01T08:30:00Z"))).await;
    let without = server.publish(&tick(3, None)).await;
    assert!(
        without.get("occurred_at").is_none(),
        "absent when not given: {without}"
    );

    let (_, by_id) = server
        .get(&format!(
            "/api/v1/events/{}",
            first["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(by_id["occurred_at"], first["occurred_at"]);
    let live = loop {
        match sub.next().await.expect("open").expect("frame") {
            Message::Text(t) => break serde_json::from_str::<Value>(&t).expect("JSON"),
            _ => continue,
        }
    };
    assert_eq!(live["occurred_at"], first["occurred_at"]);

    let (_, since) = server
        .get("/api/v1/events?occurred_since=2026-12-01T08:30:00Z")
        .await;
    assert_eq!(ns(&since), [2], "inclusive, and never an event without one");
    let (_, before) = server
        .get("/api/v1/events?occurred_before=2026-12-01T08:30:00Z")
        .await;
    assert_eq!(ns(&before), [1], "exclusive");
    let (status, body) = server.get("/api/v1/events?occurred_since=yesterday").await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("occurred_since"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_occurred_at_too_far_ahead_or_unreadable_is_refused() {
    let server = TestServer::start(&[("MAX_CLOCK_SKEW_SECONDS", "60")]).await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    server.publish(&tick(1, Some(&soon))).await;
    let later = (chrono::Utc::now() + chrono::Duration::seconds(600)).to_rfc3339();
    for (at, kind) in [
        (later.as_str(), "datetime_future"),
        ("not a time", "datetime_parsing"),
    ] {
        let (status, body) = server.post("/api/v1/events", &tick(2, Some(at))).await;
        assert_eq!(status, 422, "{at}: {body}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "occurred_at"]));
        assert_eq!(body["detail"][0]["type"], kind);
    }
    let (status, body) = server
        .post(
            "/api/v1/events",
            &json!({"event_type": "timer_tick", "source": "t", "occurred_at": 5}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "string_type");
    // Long ago is fine: a retried or imported event happened earlier.
    server.publish(&tick(3, Some("1999-01-01T00:00:00Z"))).await;
    server.stop().await;
}
