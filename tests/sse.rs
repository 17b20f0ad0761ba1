//! Server-Sent Events (`GET /api/v1/stream`), held to what WebSocket
//! subscribers get: delivery in seq order with the filter, resume after a
//! seq (`Last-Event-ID`, `since_seq`) without gap or duplicate, the
//! credential's scope, and a reader that does not keep up ended with an
//! `error` event naming the seq to resume from.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::{example, TestServer};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes-0123";

/// One server-sent event: its fields as sent (`id`, `event`, `data`,
/// `retry`), comments left out.
#[derive(Debug, Default, Clone, PartialEq)]
struct Sse {
    id: Option<String>,
    event: Option<String>,
    data: String,
    retry: Option<String>,
}

impl Sse {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("data is JSON")
    }
}

/// Reads a `text/event-stream` body event by event.
struct Reader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Reader {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{:?}",
            response.headers()
        );
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event with a field (comments, keepalives, skipped); `None`
    /// when the stream ends.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut sse = Sse::default();
                let mut any = false;
                for line in block.lines() {
                    let Some((field, value)) = line.split_once(':') else {
                        continue;
                    };
                    let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                    any |= !field.is_empty();
                    match field {
                        "id" => sse.id = Some(value),
                        "event" => sse.event = Some(value),
                        "retry" => sse.retry = Some(value),
                        "data" => {
                            if !sse.data.is_empty() {
                                sse.data.push('\n');
                            }
                            sse.data.push_str(&value);
                        }
                        _ => {}
                    }
                }
                if any {
                    return Some(sse);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("a chunk in time")?
                .expect("read");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next `n` events (asserting each is one).
    async fn events(&mut self, n: usize) -> Vec<Sse> {
        let mut out = Vec::new();
        while out.len() < n {
            let sse = self.next().await.expect("the stream goes on");
            if sse.retry.is_some() && sse.event.is_none() {
                continue;
            }
            out.push(sse);
        }
        out
    }
}

async fn open(server: &TestServer, query: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server
        .client
        .get(server.url(&format!("/api/v1/stream{query}")));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("request")
}

fn event(event_type: &str, session: &str) -> Value {
    let mut e = example(event_type);
    e["session_id"] = json!(session);
    e
}

#[tokio::test]
async fn events_arrive_in_seq_order_with_the_filter_and_resume_without_gap() {
    let server = TestServer::start(&[]).await;
    let first = open(
        &server,
        "?event_types=answer_submitted,quiz_started&session_id=s1",
        &[],
    )
    .await;
    let mut stream = Reader::new(first);
    let hello = stream.next().await.expect("the retry hint");
    assert_eq!(hello.retry.as_deref(), Some("3000"));
    let mut published = Vec::new();
    for (t, s) in [
        ("answer_submitted", "s1"),
        ("timer_tick", "s1"),
        ("quiz_started", "s1"),
        ("answer_submitted", "s2"),
        ("answer_submitted", "s1"),
    ] {
        published.push(server.publish(&event(t, s)).await);
    }
    let wanted: Vec<&Value> = [0, 2, 4].iter().map(|&i| &published[i]).collect();
    let got = stream.events(3).await;
    for (sse, stored) in got.iter().zip(&wanted) {
        assert_eq!(sse.id.as_deref(), Some(stored["seq"].to_string().as_str()));
        assert_eq!(sse.event.as_deref(), stored["event_type"].as_str());
        assert_eq!(sse.json(), **stored, "data is the stored event");
    }

    // A browser reconnecting sends the last id: it resumes right after,
    // replayed from the store, then live.
    let after = got[0].id.clone().expect("id");
    let again = open(
        &server,
        "?event_types=answer_submitted,quiz_started&session_id=s1",
        &[("Last-Event-ID", &after)],
    )
    .await;
    let mut resumed = Reader::new(again);
    let replayed = resumed.events(2).await;
    assert_eq!(replayed[0].json()["id"], published[2]["id"]);
    assert_eq!(replayed[1].json()["id"], published[4]["id"]);
    let live = server.publish(&event("quiz_started", "s1")).await;
    assert_eq!(resumed.events(1).await[0].json()["id"], live["id"]);
    // `since_seq` in the query does the same.
    let by_query = open(
        &server,
        &format!("?since_seq={after}&event_types=quiz_started"),
        &[],
    )
    .await;
    let mut by_query = Reader::new(by_query);
    let ids: Vec<Value> = by_query
        .events(2)
        .await
        .iter()
        .map(|e| e.json()["id"].clone())
        .collect();
    assert_eq!(ids, vec![published[2]["id"].clone(), live["id"].clone()]);
}

fn token(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn a_scoped_token_sees_only_its_sessions_and_a_filter_outside_is_refused() {
    let server = TestServer::start(&[
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", "k-sse-publisher"),
        ("JWT_HS256_SECRET", SECRET),
    ])
    .await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let teacher = token(
        &json!({"sub": "teacher-7", "exp": exp, "roles": ["read"], "session_ids": ["s1", "s2"]}),
    );
    let (status, body) = server
        .call_with_key("GET", "/api/v1/stream", None, None)
        .await;
    assert_eq!(status, 401, "{body}");
    let outside = open(&server, &format!("?token={teacher}&session_id=s3"), &[]).await;
    assert_eq!(outside.status(), 403);
    let mut stream = Reader::new(open(&server, &format!("?token={teacher}"), &[]).await);
    for s in ["s3", "s1", "s4", "s2"] {
        let (status, _) = server
            .call_with_key(
                "POST",
                "/api/v1/events",
                Some("k-sse-publisher"),
                Some(&event("timer_tick", s)),
            )
            .await;
        assert_eq!(status, 201);
    }
    let got = stream.events(2).await;
    let sessions: Vec<Value> = got.iter().map(|e| e.json()["session_id"].clone()).collect();
    assert_eq!(sessions, vec![json!("s1"), json!("s2")]);
    // A bearer header works too.
    let with_header = open(
        &server,
        "",
        &[("Authorization", &format!("Bearer {teacher}"))],
    )
    .await;
    assert_eq!(with_header.status(), 200);
}

#[tokio::test]
async fn a_token_that_expires_ends_the_stream_with_an_error_naming_where_to_resume() {
    let server = TestServer::start(&[("JWT_HS256_SECRET", SECRET)]).await;
    let exp = chrono::Utc::now().timestamp() + 2;
    let short = token(&json!({"sub": "viewer", "exp": exp, "roles": ["read"]}));
    let mut stream = Reader::new(open(&server, &format!("?token={short}"), &[]).await);
    let stored = server.publish(&event("timer_tick", "s1")).await;
    assert_eq!(stream.events(1).await[0].json()["id"], stored["id"]);
    let end = stream.events(1).await.remove(0);
    assert_eq!(end.event.as_deref(), Some("error"));
    assert_eq!(end.json()["error"], "token_expired");
    assert_eq!(end.json()["resume_from"], stored["seq"]);
    assert!(stream.next().await.is_none(), "the stream ends");
}

/// A graceful stop ends an open stream with an `error` event naming the
/// seq to resume from (on another node, or this one restarted), after
/// everything delivered before it.
#[tokio::test]
async fn a_stop_ends_the_stream_with_an_error_naming_where_to_resume() {
    let server = TestServer::start(&[]).await;
    let mut stream = Reader::new(open(&server, "?event_types=timer_tick", &[]).await);
    let stored = server.publish(&event("timer_tick", "s1")).await;
    assert_eq!(stream.events(1).await[0].json()["id"], stored["id"]);
    let stopping = tokio::spawn(server.stop());
    let end = stream.events(1).await.remove(0);
    assert_eq!(end.event.as_deref(), Some("error"));
    assert_eq!(end.json()["error"], "shutting_down");
    assert_eq!(end.json()["resume_from"], stored["seq"]);
    assert!(stream.next().await.is_none(), "the stream ends");
    stopping.await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_gets_an_error_naming_the_seq_to_resume_from() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(&[("WS_SUBSCRIBER_QUEUE", "16")]).await;
    let addr: std::net::SocketAddr = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    // A client with a small receive buffer that does not read for a while
    // (HTTP/1.0: the body ends when the server closes, no chunks to undo).
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut client = socket.connect(addr).await.expect("connect");
    client
        .write_all(b"GET /api/v1/stream?event_types=timer_tick HTTP/1.0\r\n\r\n")
        .await
        .expect("request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0_u8; 1];
        client.read_exact(&mut byte).await.expect("head");
        head.push(byte[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // Far more than the socket, the stream's queue and the subscriber's
    // queue (16) hold.
    for _ in 0..5 {
        let batch: Vec<Value> = (0..1000).map(|_| event("timer_tick", "s1")).collect();
        let (status, _) = server
            .post("/api/v1/events/batch", &Value::Array(batch))
            .await;
        assert_eq!(status, 200);
    }
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(30), client.read_to_string(&mut body))
        .await
        .expect("the stream ends")
        .expect("read");
    let blocks: Vec<&str> = body
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    let ids: Vec<u64> = blocks
        .iter()
        .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("id:")))
        .map(|id| id.trim().parse().expect("a seq"))
        .collect();
    let gaps: Vec<&[u64]> = ids.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(
        gaps.is_empty(),
        "gap-free up to the end: {gaps:?} of {} ({})",
        ids.len(),
        body.split("\n\n")
            .filter(|b| !b.contains("event:timer_tick"))
            .collect::<Vec<_>>()
            .join(" || ")
            .chars()
            .take(3000)
            .collect::<String>()
    );
    assert!(ids.len() < 5000, "it fell behind: {} delivered", ids.len());
    let last = blocks.last().expect("a final event");
    assert!(
        last.contains("event: error") || last.contains("event:error"),
        "{last}"
    );
    let data = last
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .expect("data");
    let end: Value = serde_json::from_str(data.trim()).expect("JSON");
    assert_eq!(end["error"], "slow_consumer");
    let resume_from = end["resume_from"].as_u64().expect("a seq");
    // After the last event received; one evicted before its first event
    // resumes after the last one committed before it subscribed (none here).
    assert_eq!(
        resume_from,
        ids.last().copied().unwrap_or(0),
        "resume after the last event received"
    );

    // Resuming from there gives the rest, gap-free.
    let mut resumed = Reader::new(
        open(
            &server,
            "?event_types=timer_tick",
            &[("Last-Event-ID", &resume_from.to_string())],
        )
        .await,
    );
    let rest = resumed.events(5000 - ids.len()).await;
    let first = ids.first().copied().unwrap_or(resume_from + 1);
    let seqs: Vec<u64> = rest
        .iter()
        .map(|e| e.id.as_deref().expect("id").parse().expect("seq"))
        .collect();
    assert_eq!(seqs.first().copied(), Some(resume_from + 1));
    assert_eq!(seqs.last().copied(), Some(first + 4999));
}

#[tokio::test]
async fn streams_count_against_the_subscriber_and_per_address_limits() {
    let full = TestServer::start(&[("MAX_SUBSCRIBERS", "1")]).await;
    let _first = Reader::new(open(&full, "", &[]).await);
    let second = open(&full, "", &[]).await;
    assert_eq!(second.status(), 503);
    let body: Value = second.json().await.expect("JSON");
    assert_eq!(body["detail"], "Server at subscriber capacity");

    let per_ip = TestServer::start(&[("MAX_WS_CONNECTIONS_PER_IP", "1")]).await;
    let first = Reader::new(open(&per_ip, "", &[]).await);
    let second = open(&per_ip, "", &[]).await;
    assert_eq!(second.status(), 429);
    drop(first);
    // Its slot is free as soon as the server sees the connection closed,
    // with no event or keepalive (WS_KEEPALIVE_SECONDS, 30) written to it.
    let mut every = tokio::time::interval(Duration::from_millis(20));
    let mut status = 429;
    for _ in 0..100 {
        every.tick().await;
        status = open(&per_ip, "", &[]).await.status().as_u16();
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200);
    let bad = open(&per_ip, "?since_seq=soon", &[]).await;
    assert_eq!(bad.status(), 422);
}
