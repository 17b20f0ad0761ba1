//! The WebSocket endpoints over real sockets: publish with pipelining,
//! subscribe with filters, updates, limits, slow consumers, resume, shutdown.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{example, examples, TestServer};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A guard against a test hanging forever; never what a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer, path: &str) -> Ws {
    tokio_tungstenite::connect_async_with_config(server.ws_url(path), None, true)
        .await
        .expect("handshake")
        .0
}

async fn send(ws: &mut Ws, value: &Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// The next text frame as JSON; panics on close.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads until the close frame and returns its code and reason.
async fn closed(ws: &mut Ws) -> (u16, String) {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (frame.code.into(), frame.reason.to_string())
            }
            Some(Ok(Message::Close(None))) | None => panic!("closed without a close frame"),
            Some(Err(e)) => panic!("connection failed without a close frame: {e}"),
            Some(Ok(_)) => continue,
        }
    }
}

async fn subscribe(server: &TestServer, filter: Value) -> Ws {
    let mut ws = connect(server, "/ws/subscribe").await;
    send(&mut ws, &filter).await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["status"], "subscribed", "{ack}");
    assert!(
        ack["subscriber_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sub_")),
        "{ack}"
    );
    assert_eq!(ack["filters"], filter, "filters are echoed as sent");
    ws
}

fn event(event_type: &str, session: &str, user: &str) -> Value {
    let mut e = example(event_type);
    e["session_id"] = json!(session);
    e["user_id"] = json!(user);
    e
}

#[tokio::test]
async fn ws_publish_replies_in_order_to_pipelined_messages_and_commits_them() {
    let server = TestServer::start(&[]).await;
    let mut ws = connect(&server, "/ws/publish").await;
    let events: Vec<Value> = examples().into_iter().cycle().take(600).collect();
    for e in &events {
        ws.feed(Message::text(e.to_string())).await.expect("feed");
    }
    ws.flush().await.expect("flush");
    let mut ids = Vec::new();
    for _ in &events {
        let reply = recv(&mut ws).await;
        assert_eq!(reply["status"], "ok", "{reply}");
        ids.push(reply["event_id"].as_str().expect("event_id").to_owned());
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "replies come in message order");
    for (id, sent) in ids.iter().zip(&events).step_by(97) {
        let (status, stored) = server.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(stored["payload"], sent["payload"]);
    }
    assert_eq!(server.get("/stats").await.1["total_events"], 600);
}

#[tokio::test]
async fn ws_publish_errors_are_replies_that_never_close_the_connection() {
    let server = TestServer::start(&[("MAX_WS_MESSAGE_BYTES", "400")]).await;
    let mut ws = connect(&server, "/ws/publish").await;
    ws.send(Message::text("{not json")).await.expect("send");
    assert_eq!(
        recv(&mut ws).await,
        json!({"status": "error", "message": "Invalid JSON"})
    );
    send(
        &mut ws,
        &json!({"event_type": "quiz_begun", "source": "quiz-engine"}),
    )
    .await;
    let reply = recv(&mut ws).await;
    assert_eq!(reply["status"], "error");
    assert!(
        reply["message"]
            .as_str()
            .is_some_and(|m| m.contains("quiz_begun")),
        "{reply}"
    );
    send(
        &mut ws,
        &json!({"event_type": "timer_tick", "source": "t", "payload": {"pad": "x".repeat(500)}}),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"status": "error", "message": "Message too large"})
    );
    send(&mut ws, &json!([1, 2])).await;
    assert_eq!(recv(&mut ws).await["status"], "error");
    send(&mut ws, &example("timer_tick")).await;
    assert_eq!(recv(&mut ws).await["status"], "ok");
}

#[tokio::test]
async fn each_subscriber_gets_exactly_its_matching_events_from_rest_and_ws_publishers() {
    let server = TestServer::start(&[]).await;
    let filters = [
        json!({"session_id": "s1"}),
        json!({"user_id": "u2"}),
        json!({"event_types": ["quiz_started", "answer_submitted"]}),
        json!({"event_types": ["timer_tick"], "session_id": "s1", "user_id": "u1"}),
        json!({}),
    ];
    let mut subs = Vec::new();
    for f in &filters {
        subs.push(subscribe(&server, f.clone()).await);
    }
    let traffic = [
        event("quiz_started", "s1", "u1"),
        event("timer_tick", "s1", "u1"),
        event("timer_tick", "s2", "u2"),
        event("answer_submitted", "s2", "u1"),
        event("timer_tick", "s1", "u2"),
        event("mastery_updated", "s3", "u3"),
    ];
    let expected: [&[usize]; 5] = [&[0, 1, 4], &[2, 4], &[0, 3], &[1], &[0, 1, 2, 3, 4, 5]];
    let mut publisher = connect(&server, "/ws/publish").await;
    let mut sent_ids = Vec::new();
    for (i, e) in traffic.iter().enumerate() {
        // Alternate REST and WebSocket publishing.
        let id = if i % 2 == 0 {
            server.publish(e).await["id"]
                .as_str()
                .expect("id")
                .to_owned()
        } else {
            send(&mut publisher, e).await;
            recv(&mut publisher).await["event_id"]
                .as_str()
                .expect("id")
                .to_owned()
        };
        sent_ids.push(id);
    }
    // Markers end the traffic: in-order delivery means that once a
    // subscriber has its marker, everything before it has arrived and nothing
    // else will. m1 matches subscribers 0, 3, 4; m2 matches 1, 2, 4.
    let m1 = server.publish(&event("timer_tick", "s1", "u1")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let m2 = server.publish(&event("answer_submitted", "s9", "u2")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let markers: [&[&str]; 5] = [&[&m1], &[&m2], &[&m2], &[&m1], &[&m1, &m2]];
    for (i, ws) in subs.iter_mut().enumerate() {
        let mut want: Vec<&str> = expected[i].iter().map(|&k| sent_ids[k].as_str()).collect();
        want.extend_from_slice(markers[i]);
        let mut got = Vec::new();
        while got.len() < want.len() {
            let e = recv(ws).await;
            assert!(e["seq"].as_u64().is_some(), "events carry seq: {e}");
            assert!(e.get("status").is_none(), "bare events, no envelope: {e}");
            got.push(e["id"].as_str().expect("id").to_owned());
        }
        assert_eq!(got, want, "subscriber {} ({})", i, filters[i]);
    }
}

#[tokio::test]
async fn update_filters_changes_what_arrives_and_other_messages_never_end_the_subscription() {
    let server = TestServer::start(&[]).await;
    let mut ws = subscribe(&server, json!({"session_id": "s1"})).await;
    for junk in [
        "not json",
        "[1,2]",
        "\"ping\"",
        "42",
        r#"{"type":"dance"}"#,
        r#"{"no_type":1}"#,
    ] {
        ws.send(Message::text(junk)).await.expect("send");
    }
    send(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    send(&mut ws, &json!({"type": "update_filters", "filters": {"session_id": "s2", "event_types": ["timer_tick"]}}))
        .await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"status": "filters_updated", "filters": {"session_id": "s2", "event_types": ["timer_tick"]}})
    );
    server.publish(&event("timer_tick", "s1", "u")).await;
    server.publish(&event("quiz_started", "s2", "u")).await;
    let wanted = server.publish(&event("timer_tick", "s2", "u")).await;
    assert_eq!(recv(&mut ws).await["id"], wanted["id"]);
    send(
        &mut ws,
        &json!({"type": "update_filters", "filters": {"event_types": "timer_tick"}}),
    )
    .await;
    let reply = recv(&mut ws).await;
    assert_eq!(
        reply["status"], "error",
        "a string where a list belongs is an error: {reply}"
    );
    send(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn a_subscriber_s_messages_larger_than_its_read_buffer_arrive_whole() {
    // A subscriber's connection reads 512 bytes at a time; its filter and
    // filter updates may still be as large as any WebSocket message.
    let server = TestServer::start(&[]).await;
    let padding = " ".repeat(6_000);
    let mut ws = connect(&server, "/ws/subscribe").await;
    ws.send(Message::text(format!(
        r#"{{{padding}"session_id": "big-1"}}"#
    )))
    .await
    .expect("send");
    assert_eq!(recv(&mut ws).await["status"], "subscribed");
    ws.send(Message::text(format!(
        r#"{{"type": "update_filters",{padding}"filters": {{"session_id": "big-2"}}}}"#
    )))
    .await
    .expect("send");
    assert_eq!(
        recv(&mut ws).await,
        json!({"status": "filters_updated", "filters": {"session_id": "big-2"}})
    );
    let wanted = server.publish(&event("timer_tick", "big-2", "u")).await;
    assert_eq!(recv(&mut ws).await["id"], wanted["id"]);
}

#[tokio::test]
async fn bad_filter_messages_get_an_error_reply_then_a_close_code() {
    let server = TestServer::start(&[("MAX_WS_MESSAGE_BYTES", "100")]).await;
    for (first, code) in [
        (Message::text("{nope"), 1007),
        (
            Message::text(json!({"event_types": "timer_tick"}).to_string()),
            1008,
        ),
        (Message::text(json!({"session_id": 5}).to_string()), 1008),
        (
            Message::text(json!({"session_id": "x".repeat(150)}).to_string()),
            1009,
        ),
        (
            Message::text(json!({"last_event_id": "evt_unknown"}).to_string()),
            1008,
        ),
    ] {
        let mut ws = connect(&server, "/ws/subscribe").await;
        ws.send(first.clone()).await.expect("send");
        assert_eq!(recv(&mut ws).await["status"], "error", "{first:?}");
        assert_eq!(closed(&mut ws).await.0, code, "{first:?}");
    }
}

#[tokio::test]
async fn subscribers_beyond_capacity_are_refused_with_the_contract_error() {
    let server = TestServer::start(&[("MAX_SUBSCRIBERS", "1")]).await;
    let first = subscribe(&server, json!({})).await;
    let mut second = connect(&server, "/ws/subscribe").await;
    send(&mut second, &json!({})).await;
    assert_eq!(
        recv(&mut second).await,
        json!({"status": "error", "message": "Server at subscriber capacity"})
    );
    assert_eq!(closed(&mut second).await.0, 1013);
    drop(first);

    let zero = TestServer::start(&[("MAX_SUBSCRIBERS", "0")]).await;
    let mut ws = connect(&zero, "/ws/subscribe").await;
    send(&mut ws, &json!({})).await;
    assert_eq!(
        recv(&mut ws).await["message"],
        "Server at subscriber capacity"
    );
}

#[tokio::test]
async fn a_subscriber_that_sends_no_filter_is_closed_with_4003() {
    let server = TestServer::start(&[("WS_FILTER_TIMEOUT_SECONDS", "1")]).await;
    let mut ws = connect(&server, "/ws/subscribe").await;
    assert_eq!(closed(&mut ws).await.0, 4003);
}

#[tokio::test]
async fn a_silent_subscriber_gets_keepalives() {
    let server = TestServer::start(&[("WS_KEEPALIVE_SECONDS", "1")]).await;
    let mut ws = subscribe(&server, json!({"session_id": "quiet"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "keepalive"}));
}

#[tokio::test]
async fn connections_per_address_are_limited_across_both_endpoints_and_freed_on_close() {
    let server = TestServer::start(&[("MAX_WS_CONNECTIONS_PER_IP", "2")]).await;
    let a = connect(&server, "/ws/publish").await;
    let _b = subscribe(&server, json!({})).await;
    for path in ["/ws/publish", "/ws/subscribe"] {
        let mut refused = connect(&server, path).await;
        assert_eq!(
            closed(&mut refused).await,
            (4002, "Too many connections".into())
        );
    }
    drop(a);
    let ip = "127.0.0.1".parse().expect("ip");
    // The slot frees when the server sees the close: wait for that, not for a time.
    for _ in 0..10_000 {
        if server.running().websockets().limiter.open_from(ip) < 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let mut again = connect(&server, "/ws/publish").await;
    send(&mut again, &example("timer_tick")).await;
    assert_eq!(recv(&mut again).await["status"], "ok");
}

#[tokio::test]
async fn with_auth_on_both_endpoints_need_the_key_in_the_query_or_a_header() {
    let server = TestServer::start(&[("REQUIRE_AUTH", "true"), ("API_KEY", "k-ws")]).await;
    for path in ["/ws/publish", "/ws/subscribe"] {
        for bad in ["", "?api_key=wrong"] {
            let mut ws = connect(&server, &format!("{path}{bad}")).await;
            assert_eq!(
                closed(&mut ws).await,
                (4001, "Unauthorized".into()),
                "{path}{bad}"
            );
        }
        let mut request = server.ws_url(path).into_client_request().expect("request");
        request
            .headers_mut()
            .insert("X-API-Key", "wrong".parse().expect("header"));
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .expect("handshake");
        assert_eq!(closed(&mut ws).await.0, 4001);
    }
    let mut publisher = connect(&server, "/ws/publish?api_key=k-ws").await;
    send(&mut publisher, &example("timer_tick")).await;
    assert_eq!(recv(&mut publisher).await["status"], "ok");
    let mut request = server
        .ws_url("/ws/subscribe")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("X-API-Key", "k-ws".parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .expect("handshake");
    send(&mut ws, &json!({})).await;
    assert_eq!(recv(&mut ws).await["status"], "subscribed");
}

#[tokio::test]
async fn a_plain_http_request_to_a_websocket_endpoint_is_426_with_detail() {
    let server = TestServer::start(&[]).await;
    let (status, body) = server.get("/ws/subscribe").await;
    assert_eq!(status, 426);
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_with_4008_while_a_fast_one_gets_everything() {
    let server = TestServer::start(&[("WS_SUBSCRIBER_QUEUE", "1024")]).await;
    // The slow one: a tiny receive buffer, and it never reads.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(2048).expect("rcvbuf");
    let stream = socket
        .connect(server.running().local_addr())
        .await
        .expect("connect");
    let (mut slow, _) = tokio_tungstenite::client_async(
        server.ws_url("/ws/subscribe"),
        MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("handshake");
    send(&mut slow, &json!({"session_id": "busy"})).await;
    let mut fast = subscribe(&server, json!({"session_id": "busy"})).await;
    assert_eq!(recv(&mut slow).await["status"], "subscribed");

    let mut publisher = connect(&server, "/ws/publish").await;
    // Far more than the slow one's queue and socket buffers can hold. Chunks
    // are smaller than a queue, and the next is sent only when the fast one
    // has read the last: however busy the machine, the fast one never lags.
    let (chunks, chunk) = (8, 500);
    let mut body = event("timer_tick", "busy", "u");
    body["payload"] = json!({"pad": "x".repeat(4_000)});
    let mut last = 0;
    for _ in 0..chunks {
        for _ in 0..chunk {
            publisher
                .feed(Message::text(body.to_string()))
                .await
                .expect("feed");
        }
        publisher.flush().await.expect("flush");
        for _ in 0..chunk {
            assert_eq!(recv(&mut publisher).await["status"], "ok");
        }
        for _ in 0..chunk {
            let seq = recv(&mut fast).await["seq"].as_u64().expect("seq");
            assert!(seq > last, "in order, no duplicates");
            last = seq;
        }
    }
    let (code, reason) = closed(&mut slow).await;
    assert_eq!(code, 4008, "{reason}");
    assert!(reason.contains("since_seq="), "{reason}");
}

#[tokio::test]
async fn resuming_with_since_seq_delivers_exactly_what_was_missed_then_live_events() {
    let server = std::sync::Arc::new(TestServer::start(&[]).await);
    let mut ws = subscribe(&server, json!({"session_id": "resume"})).await;
    let first = server.publish(&event("timer_tick", "resume", "u")).await;
    let got = recv(&mut ws).await;
    assert_eq!(got["id"], first["id"]);
    let last_seen = got["seq"].as_u64().expect("seq");
    drop(ws);

    // Missed while away, plus unrelated traffic that must not be replayed.
    let mut published = Vec::new();
    for i in 0..20 {
        published.push(
            server.publish(&event("timer_tick", "resume", "u")).await["seq"]
                .as_u64()
                .expect("seq"),
        );
        server
            .publish(&event("timer_tick", &format!("other-{i}"), "u"))
            .await;
    }
    // Publishing keeps running across the hand-over.
    let background = tokio::spawn({
        let server = std::sync::Arc::clone(&server);
        async move {
            let mut seqs = Vec::new();
            for _ in 0..200 {
                seqs.push(
                    server.publish(&event("timer_tick", "resume", "u")).await["seq"]
                        .as_u64()
                        .expect("seq"),
                );
            }
            seqs
        }
    });
    let mut ws = subscribe(
        &server,
        json!({"session_id": "resume", "since_seq": last_seen}),
    )
    .await;
    let live = background.await.expect("background publisher");
    published.extend(live);
    let mut received = Vec::new();
    while received.len() < published.len() {
        received.push(recv(&mut ws).await["seq"].as_u64().expect("seq"));
    }
    assert_eq!(received, published, "no gap, no duplicate, in order");
    let after = server.publish(&event("timer_tick", "resume", "u")).await;
    assert_eq!(recv(&mut ws).await["id"], after["id"]);
    let unique: HashSet<_> = received.iter().collect();
    assert_eq!(unique.len(), received.len());
}

#[tokio::test]
async fn resuming_with_last_event_id_starts_after_that_event() {
    let server = TestServer::start(&[]).await;
    let seen = server.publish(&event("quiz_started", "s", "u")).await;
    let missed = server.publish(&event("answer_submitted", "s", "u")).await;
    let mut ws = subscribe(
        &server,
        json!({"session_id": "s", "last_event_id": seen["id"]}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["id"], missed["id"]);
}

#[tokio::test]
async fn active_subscribers_counts_confirmed_subscriptions_and_drops_after_close() {
    let server = TestServer::start(&[]).await;
    let pending = connect(&server, "/ws/subscribe").await;
    let a = subscribe(&server, json!({})).await;
    let _b = subscribe(&server, json!({"session_id": "s"})).await;
    assert_eq!(
        server.get("/readiness").await.1["router"]["active_subscribers"],
        2
    );
    assert_eq!(
        server.get("/stats").await.1["router"]["active_subscribers"],
        2
    );
    drop(a);
    drop(pending);
    let mut count = 2;
    for _ in 0..10_000 {
        count = server.get("/readiness").await.1["router"]["active_subscribers"]
            .as_u64()
            .expect("count");
        if count == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(count, 1);
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001() {
    let server = TestServer::start(&[]).await;
    let mut subscriber = subscribe(&server, json!({})).await;
    let mut publisher = connect(&server, "/ws/publish").await;
    send(&mut publisher, &example("timer_tick")).await;
    assert_eq!(recv(&mut publisher).await["status"], "ok");
    assert!(recv(&mut subscriber).await["id"].is_string());
    let stopping = tokio::spawn(server.stop());
    assert_eq!(closed(&mut subscriber).await.0, 1001);
    assert_eq!(closed(&mut publisher).await.0, 1001);
    stopping.await.expect("stopped");
}
