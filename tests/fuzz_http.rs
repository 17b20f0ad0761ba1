//! Property tests over real HTTP and WebSocket: arbitrary bodies, query
//! parameters and WebSocket messages never get a 5xx, never panic the
//! server, and are always answered with a JSON `detail` or a contract reply.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use serde_json::Value;
use support::TestServer;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;

/// One server for every case (cases run one after another per test).
fn harness() -> &'static (Runtime, TestServer) {
    static HARNESS: OnceLock<(Runtime, TestServer)> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(TestServer::start(&[
            ("MAX_BODY_BYTES", "4096"),
            ("MAX_WS_MESSAGE_BYTES", "2048"),
            ("MAX_PAYLOAD_KEYS", "5"),
            ("MAX_PAYLOAD_BYTES", "512"),
            ("MAX_WS_CONNECTIONS_PER_IP", "1000"),
        ]));
        (runtime, server)
    })
}

/// A guard against a hang, never what a case waits for.
const PATIENCE: Duration = Duration::from_secs(10);

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json")),
        Just(Some("text/plain")),
        Just(Some("application/cloudevents+json")),
        Just(Some("")),
    ]
}

/// JSON-ish text that often gets past the parser: fragments of real events.
fn publish_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        (
            prop::sample::select(vec!["timer_tick", "quiz_started", "nope", "", "TIMER_TICK"]),
            ".{0,120}",
            prop::option::of(".{0,250}"),
            "[{}\\[\\]\":,0-9a-z ]{0,600}",
        )
            .prop_map(|(t, source, session, payload)| {
                format!(
                    r#"{{"event_type":{},"source":{},"session_id":{},"payload":{}}}"#,
                    Value::from(t),
                    Value::from(source),
                    session.map_or(Value::Null, Value::from),
                    payload
                )
                .into_bytes()
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_publish_bodies_get_201_or_a_json_4xx(body in publish_body(), ct in content_type()) {
        let (runtime, server) = harness();
        let (status, answer) = runtime.block_on(async {
            let mut request = server.client.post(server.url("/api/v1/events")).body(body.clone());
            if let Some(ct) = ct {
                request = request.header("content-type", ct);
            }
            let response = tokio::time::timeout(PATIENCE, request.send()).await.expect("in time").expect("response");
            TestServer::answer(response).await
        });
        prop_assert!([201, 413, 422].contains(&status), "{} → {}", String::from_utf8_lossy(&body), status);
        if status != 201 {
            prop_assert!(answer.get("detail").is_some(), "{}", answer);
        }
    }

    #[test]
    fn arbitrary_query_parameters_get_200_or_a_json_4xx(
        pairs in prop::collection::vec(
            (prop::sample::select(vec!["event_type", "session_id", "user_id", "limit", "since", "before", "x"]), ".{0,300}"),
            0..6,
        ),
        path in prop::sample::select(vec!["/api/v1/events", "/events", "/api/v1/stats"]),
    ) {
        let (runtime, server) = harness();
        let (status, answer) = runtime.block_on(async {
            let request = server.client.get(server.url(path)).query(&pairs);
            let response = tokio::time::timeout(PATIENCE, request.send()).await.expect("in time").expect("response");
            TestServer::answer(response).await
        });
        prop_assert!([200, 400, 414, 422].contains(&status), "{:?} → {}", pairs, status);
        if status != 200 {
            prop_assert!(answer.get("detail").is_some(), "{}", answer);
        }
    }

    #[test]
    fn arbitrary_websocket_messages_get_contract_replies_and_never_end_the_session(
        messages in prop::collection::vec(
            prop_oneof![
                ".{0,200}".prop_map(Message::text),
                prop::collection::vec(any::<u8>(), 0..300).prop_map(Message::binary),
                "[{}\\[\\]\":,a-z_ ]{0,100}".prop_map(|s| Message::text(format!(r#"{{"type":"update_filters","filters":{s}}}"#))),
                Just(Message::text("x".repeat(3000))),
            ],
            1..6,
        ),
    ) {
        let (runtime, server) = harness();
        runtime.block_on(async {
            let url = server.ws_url("/ws/publish");
            let (mut publisher, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await.expect("publish handshake");
            let (mut subscriber, _) = tokio_tungstenite::connect_async_with_config(server.ws_url("/ws/subscribe"), None, true).await.expect("subscribe handshake");
            subscriber.send(Message::text(r#"{"session_id":"fuzz-nobody"}"#)).await.expect("filter");
            let ack = next_json(&mut subscriber).await;
            assert_eq!(ack["status"], "subscribed");
            for message in &messages {
                publisher.send(message.clone()).await.expect("send");
                let reply = next_json(&mut publisher).await;
                assert!(reply["status"] == "ok" || reply["status"] == "error", "{reply}");
                if reply["status"] == "error" {
                    assert!(reply["message"].is_string(), "{reply}");
                }
                subscriber.send(message.clone()).await.expect("send");
                subscriber.send(Message::text(r#"{"type":"ping"}"#)).await.expect("ping");
                // Whatever came before, the pong must come: the session lives on.
                loop {
                    let frame = next_json(&mut subscriber).await;
                    if frame == serde_json::json!({"type": "pong"}) {
                        break;
                    }
                    let known = frame["status"] == "error" || frame["status"] == "filters_updated" || frame["id"].is_string();
                    assert!(known, "unexpected frame {frame}");
                }
            }
        });
    }
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).expect("JSON frame")
            }
            Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
}
