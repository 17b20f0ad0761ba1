//! Idempotent publish over real sockets: a repeat with the same key and
//! content answers the first event (REST 200, WebSocket `ok` with the same
//! id, a batch item marked `repeat`) and stores and delivers nothing; the
//! same key with other content is 409; keys are each caller's own (the
//! window's end is a store conformance case).

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{example, TestServer};
use tokio_tungstenite::tungstenite::Message;

fn answer(question: &str) -> Value {
    let mut e = example("answer_submitted");
    e["session_id"] = json!("s-idem");
    e["payload"]["question_id"] = json!(question);
    e
}

async fn post_with_key(server: &TestServer, key: &str, body: &Value) -> (u16, Value) {
    TestServer::answer(
        server
            .call(
                "POST",
                "/api/v1/events",
                &[("Idempotency-Key", key)],
                Some(body),
            )
            .await,
    )
    .await
}

async fn stored(server: &TestServer) -> Vec<Value> {
    let (_, events) = server.get("/api/v1/events?session_id=s-idem").await;
    events.as_array().expect("list").clone()
}

#[tokio::test]
async fn a_repeat_answers_the_first_event_and_other_content_is_409() {
    let server = TestServer::start(&[]).await;
    let (mut sub, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/subscribe"))
        .await
        .expect("handshake");
    sub.send(Message::text(json!({"session_id": "s-idem"}).to_string()))
        .await
        .expect("send");
    let _ack = sub.next().await;

    let (status, first) = post_with_key(&server, "retry-1", &answer("q1")).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post_with_key(&server, "retry-1", &answer("q1")).await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "the first event, as stored"
    );
    // The body field works the same, for REST and WebSocket.
    let mut in_body = answer("q1");
    in_body["idempotency_key"] = json!("retry-1");
    let (status, by_body) = server.post("/api/v1/events", &in_body).await;
    assert_eq!((status, by_body["id"].clone()), (200, first["id"].clone()));
    let (status, conflict) = post_with_key(&server, "retry-1", &answer("q2")).await;
    assert_eq!(status, 409, "{conflict}");
    assert!(conflict["detail"]
        .as_str()
        .expect("detail")
        .contains(first["id"].as_str().expect("id")));

    let (mut publisher, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/publish"))
        .await
        .expect("handshake");
    publisher
        .send(Message::text(in_body.to_string()))
        .await
        .expect("send");
    let reply: Value = loop {
        if let Message::Text(t) = publisher.next().await.expect("open").expect("frame") {
            break serde_json::from_str(&t).expect("JSON");
        }
    };
    assert_eq!(
        (reply["status"].clone(), reply["event_id"].clone()),
        (json!("ok"), first["id"].clone())
    );

    let (status, batch) = server
        .post("/api/v1/events/batch", &json!([in_body, answer("q3")]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(batch[0]["repeat"], true);
    assert_eq!(batch[0]["event"]["id"], first["id"]);

    assert_eq!(stored(&server).await.len(), 2, "q1 once, and q3");
    // Subscribers got each stored event once: q1, then q3, nothing between.
    let mut live = Vec::new();
    while live.len() < 2 {
        if let Message::Text(t) = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame")
        {
            live.push(
                serde_json::from_str::<Value>(&t).expect("JSON")["payload"]["question_id"].clone(),
            );
        }
    }
    assert_eq!(live, [json!("q1"), json!("q3")]);
    let (status, bad) = post_with_key(&server, &"k".repeat(201), &answer("q4")).await;
    assert_eq!(status, 422, "{bad}");
    server.stop().await;
}

#[tokio::test]
async fn keys_are_each_caller_s_own() {
    let dir = tempfile::tempdir().expect("dir");
    let keys = dir.path().join("keys.toml");
    let entry = |name: &str, secret: &str| {
        format!(
            "[[keys]]\nname = \"{name}\"\nsha256 = \"{}\"\nroles = [\"publish\", \"read\"]\n",
            ep_auth_apikey::key_sha256(secret)
        )
    };
    std::fs::write(
        &keys,
        entry("engine-a", "secret-a") + &entry("engine-b", "secret-b"),
    )
    .expect("write");
    let server = TestServer::start(&[
        ("REQUIRE_AUTH", "true"),
        ("API_KEYS_FILE", keys.to_str().expect("utf-8")),
    ])
    .await;
    let post = |secret: &'static str, body: Value| {
        let server = &server;
        async move {
            TestServer::answer(
                server
                    .call(
                        "POST",
                        "/api/v1/events",
                        &[("X-API-Key", secret), ("Idempotency-Key", "7")],
                        Some(&body),
                    )
                    .await,
            )
            .await
        }
    };
    let (status, a) = post("secret-a", answer("q1")).await;
    assert_eq!(status, 201, "{a}");
    // Another producer's key "7" is its own: a new event, not A's (nor 409).
    let (status, b) = post("secret-b", answer("q2")).await;
    assert_eq!(status, 201, "{b}");
    let (status, again) = post("secret-a", answer("q1")).await;
    assert_eq!((status, again["id"].clone()), (200, a["id"].clone()));
    server.stop().await;
}
