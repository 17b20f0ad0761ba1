//! Scoped access over real sockets: every operation against every kind of
//! credential (none, the legacy key, a named key with restrictions, a token
//! in and out of its scope, expired, badly signed, `alg: none`, wrong
//! `aud` / `iss`), per-key limits, live token expiry and refresh, and the
//! SIGHUP reload of the keys.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::process::Process;
use support::TestServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A guard against a test hanging forever; never what a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

const SECRET: &str = "a-test-secret-of-at-least-32-bytes-0123";
const LEGACY: &str = "legacy-key-1";
const QUIZ_ENGINE: &str = "qe-secret-key-1";
const READER: &str = "district-reader-key-1";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `API_KEYS_FILE` text for these keys: (name, secret, roles, extra TOML lines).
fn keys_file(keys: &[(&str, &str, &str, &str)]) -> String {
    keys.iter()
        .map(|(name, secret, roles, extra)| {
            format!(
                "[[keys]]\nname = \"{name}\"\nsha256 = \"{}\"\nroles = {roles}\n{extra}\n",
                ep_auth_apikey::key_sha256(secret)
            )
        })
        .collect()
}

fn standard_keys() -> String {
    keys_file(&[
        (
            "quiz-engine",
            QUIZ_ENGINE,
            r#"["publish"]"#,
            r#"sources = ["quiz-engine"]"#,
        ),
        (
            "district-reader",
            READER,
            r#"["read"]"#,
            r#"session_ids = ["s1"]"#,
        ),
    ])
}

/// A token signed with `secret` (HS256) carrying `claims`.
fn token_with(secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// The teacher's claims: read, sessions s1 and s2, valid for `ttl` seconds.
fn teacher_claims(ttl: i64) -> Value {
    json!({
        "sub": "teacher-7", "exp": now() + ttl, "iss": "platform", "aud": "event-pipeline",
        "roles": ["read"], "session_ids": ["s1", "s2"],
    })
}

fn teacher_token(ttl: i64) -> String {
    token_with(SECRET, &teacher_claims(ttl))
}

/// An unsigned token (`alg: none`).
fn unsigned(claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

struct Setup {
    server: TestServer,
    _keys: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> Setup {
    let keys = tempfile::tempdir().expect("tempdir");
    let path = keys.path().join("keys.toml");
    std::fs::write(&path, standard_keys()).expect("write keys");
    let path = path.to_str().expect("utf-8").to_owned();
    let mut vars = vec![
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", LEGACY),
        ("API_KEYS_FILE", path.as_str()),
        ("JWT_HS256_SECRET", SECRET),
        ("JWT_ISSUER", "platform"),
        ("JWT_AUDIENCE", "event-pipeline"),
        ("JWT_LEEWAY_SECONDS", "0"),
    ];
    vars.extend_from_slice(extra);
    Setup {
        server: TestServer::start(&vars).await,
        _keys: keys,
    }
}

fn event(source: &str, session: &str, user: &str) -> Value {
    json!({"event_type": "answer_submitted", "source": source, "session_id": session,
           "user_id": user, "payload": {"question_id": "q1", "correct": true}})
}

/// How a credential is presented.
#[derive(Debug, Clone)]
enum Cred {
    None,
    Key(String),
    Bearer(String),
}

impl Cred {
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Cred::None => Vec::new(),
            Cred::Key(k) => vec![("X-API-Key", k.clone())],
            Cred::Bearer(t) => vec![("Authorization", format!("Bearer {t}"))],
        }
    }
}

async fn rest(
    server: &TestServer,
    cred: &Cred,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let headers = cred.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = server.call(method, path, &headers, body).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    // `/metrics` answers text; everything else JSON.
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ws_connect(server: &TestServer, path: &str, cred: &Cred) -> Ws {
    let mut request = server.ws_url(path).into_client_request().expect("request");
    for (k, v) in cred.headers() {
        request
            .headers_mut()
            .insert(k, v.parse().expect("header value"));
    }
    tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .expect("handshake")
        .0
}

/// The next text frame as JSON, or the close code as `{"closed": code, "reason": ...}`.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).expect("JSON frame")
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                return json!({"closed": u16::from(frame.code), "reason": frame.reason.to_string()})
            }
            Some(Ok(_)) => continue,
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, value: &Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// `/ws/publish` of one in-scope event: `ok`, the error text, or the close code.
async fn ws_publish(server: &TestServer, cred: &Cred) -> String {
    let mut ws = ws_connect(server, "/ws/publish", cred).await;
    send(&mut ws, &event("quiz-engine", "s1", "u1")).await;
    let reply = next(&mut ws).await;
    match (reply.get("closed"), reply["status"].as_str()) {
        (Some(code), _) => code.to_string(),
        (None, Some("ok")) => "ok".into(),
        _ => format!("error: {}", reply["message"]),
    }
}

/// `/ws/subscribe` with `filter`: `subscribed`, the error text, or the close code.
async fn ws_subscribe(server: &TestServer, cred: &Cred, filter: &Value) -> String {
    let mut ws = ws_connect(server, "/ws/subscribe", cred).await;
    send(&mut ws, filter).await;
    let reply = next(&mut ws).await;
    if let Some(code) = reply.get("closed") {
        return code.to_string();
    }
    match reply["status"].as_str() {
        Some("subscribed") => "subscribed".into(),
        _ => {
            // A refusal is an error reply, then the close.
            let close = next(&mut ws).await;
            close["closed"].to_string()
        }
    }
}

#[tokio::test]
async fn every_operation_answers_every_credential_as_its_roles_and_scope_say() {
    let setup = start(&[]).await;
    let server = &setup.server;
    let legacy = Cred::Key(LEGACY.into());
    let (_, inside) = rest(
        server,
        &legacy,
        "POST",
        "/api/v1/events",
        Some(&event("quiz-engine", "s1", "u1")),
    )
    .await;
    let (_, outside) = rest(
        server,
        &legacy,
        "POST",
        "/api/v1/events",
        Some(&event("quiz-engine", "s3", "u3")),
    )
    .await;
    let inside = format!("/api/v1/events/{}", inside["id"].as_str().expect("id"));
    let outside = format!("/api/v1/events/{}", outside["id"].as_str().expect("id"));

    let claims = teacher_claims(3600);
    let with = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let rows: Vec<(&str, Cred, [&str; 10])> = vec![
        (
            "anonymous",
            Cred::None,
            [
                "401", "401", "401", "401", "401", "401", "401", "401", "4001", "4001",
            ],
        ),
        (
            "legacy key",
            legacy.clone(),
            [
                "201",
                "200",
                "200",
                "200",
                "200",
                "200",
                "200",
                "200",
                "ok",
                "subscribed",
            ],
        ),
        (
            "wrong key",
            Cred::Key("nope".into()),
            [
                "401", "401", "401", "401", "401", "401", "401", "401", "4001", "4001",
            ],
        ),
        (
            "named key: publish from quiz-engine",
            Cred::Key(QUIZ_ENGINE.into()),
            [
                "201", "403", "403", "403", "403", "403", "403", "403", "ok", "4003",
            ],
        ),
        (
            "named key: read session s1",
            Cred::Key(READER.into()),
            [
                "403",
                "200",
                "403",
                "200",
                "404",
                "403",
                "403",
                "403",
                "4003",
                "subscribed",
            ],
        ),
        (
            "teacher token (sessions s1, s2)",
            Cred::Bearer(teacher_token(3600)),
            [
                "403",
                "200",
                "403",
                "200",
                "404",
                "403",
                "403",
                "403",
                "4003",
                "subscribed",
            ],
        ),
        (
            "expired token",
            Cred::Bearer(token_with(SECRET, &with("exp", json!(now() - 60)))),
            [
                "401", "401", "401", "401", "401", "401", "401", "401", "4001", "4001",
            ],
        ),
        (
            "token with a bad signature",
            Cred::Bearer(token_with("another-secret-of-32-bytes-or-more!!", &claims)),
            [
                "401", "401", "401", "401", "401", "401", "401", "401", "4001", "4001",
            ],
        ),
        (
            "alg: none",
            Cred::Bearer(unsigned(&claims)),
            [
                "401", "401", "401", "401", "401", "401", "401", "401", "4001", "4001",
            ],
        ),
        (
            "wrong aud",
            Cred::Bearer(token_with(SECRET, &with("aud", json!("someone-else")))),
            [
                "401", "401", "401", "401", "401", "401", "401", "401", "4001", "4001",
            ],
        ),
        (
            "wrong iss",
            Cred::Bearer(token_with(SECRET, &with("iss", json!("someone-else")))),
            [
                "401", "401", "401", "401", "401", "401", "401", "401", "4001", "4001",
            ],
        ),
    ];
    let publish = event("quiz-engine", "s1", "u1");
    let requests: [(&str, &str, Option<&Value>); 8] = [
        ("POST", "/api/v1/events", Some(&publish)),
        ("GET", "/api/v1/events", None),
        ("GET", "/api/v1/events?session_id=s3", None),
        ("GET", &inside, None),
        ("GET", &outside, None),
        ("GET", "/api/v1/stats", None),
        ("GET", "/api/v1/metrics", None),
        ("DELETE", "/api/v1/events?before=2000-01-01T00:00:00Z", None),
    ];
    for (name, cred, want) in rows {
        let mut got = Vec::new();
        for (method, path, body) in requests {
            got.push(rest(server, &cred, method, path, body).await.0.to_string());
        }
        got.push(ws_publish(server, &cred).await);
        got.push(ws_subscribe(server, &cred, &json!({})).await);
        assert_eq!(got, want.map(str::to_owned), "{name}");
    }
}

#[tokio::test]
async fn refusals_say_why_in_detail() {
    let setup = start(&[]).await;
    let server = &setup.server;
    let (status, body) = rest(
        server,
        &Cred::Bearer(teacher_token(-60)),
        "GET",
        "/api/v1/events",
        None,
    )
    .await;
    assert_eq!((status, body), (401, json!({"detail": "Token expired"})));
    let (status, body) = rest(
        server,
        &Cred::Key(QUIZ_ENGINE.into()),
        "POST",
        "/api/v1/events",
        Some(&event("timer", "s1", "u1")),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"detail": "source 'timer' is outside this credential's scope"})
    );
    let (status, body) = rest(
        server,
        &Cred::Bearer(teacher_token(3600)),
        "GET",
        "/api/v1/events?session_id=s3",
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("session_id 's3'"),
        "{body}"
    );
}

#[tokio::test]
async fn a_credential_that_fails_is_refused_even_without_require_auth() {
    let setup = start(&[("REQUIRE_AUTH", "false")]).await;
    let server = &setup.server;
    assert_eq!(
        rest(server, &Cred::None, "GET", "/api/v1/stats", None)
            .await
            .0,
        200
    );
    assert_eq!(
        rest(
            server,
            &Cred::Key("nope".into()),
            "GET",
            "/api/v1/events",
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        rest(
            server,
            &Cred::Bearer("a.b.c".into()),
            "GET",
            "/api/v1/events",
            None
        )
        .await
        .0,
        401
    );
    // A valid restricted credential keeps its restrictions with auth off.
    assert_eq!(
        rest(
            server,
            &Cred::Bearer(teacher_token(3600)),
            "GET",
            "/api/v1/stats",
            None
        )
        .await
        .0,
        403
    );
}

#[tokio::test]
async fn a_teacher_sees_only_the_sessions_of_the_token() {
    let setup = start(&[]).await;
    let server = &setup.server;
    let legacy = Cred::Key(LEGACY.into());
    for session in ["s1", "s2", "s3", "s1", "s3"] {
        rest(
            server,
            &legacy,
            "POST",
            "/api/v1/events",
            Some(&event("quiz-engine", session, "u1")),
        )
        .await;
    }
    let teacher = Cred::Bearer(teacher_token(3600));
    let (status, events) = rest(server, &teacher, "GET", "/api/v1/events", None).await;
    assert_eq!(status, 200);
    let sessions: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["session_id"].as_str().expect("session"))
        .collect();
    assert_eq!(sessions, ["s1", "s2", "s1"], "newest first, s3 never");

    // Live: `{}` is the token's sessions; a filter outside is refused with 4003.
    let mut ws = ws_connect(server, "/ws/subscribe", &teacher).await;
    send(&mut ws, &json!({})).await;
    assert_eq!(next(&mut ws).await["status"], "subscribed");
    send(
        &mut ws,
        &json!({"type": "update_filters", "filters": {"session_id": "s3"}}),
    )
    .await;
    let refused = next(&mut ws).await;
    assert_eq!(refused["status"], "error", "{refused}");
    for session in ["s3", "s2"] {
        rest(
            server,
            &legacy,
            "POST",
            "/api/v1/events",
            Some(&event("quiz-engine", session, "u1")),
        )
        .await;
    }
    let delivered = next(&mut ws).await;
    assert_eq!(
        delivered["session_id"], "s2",
        "the old filter stays; s3 is never delivered"
    );
    assert_eq!(
        ws_subscribe(server, &teacher, &json!({"session_id": "s3"})).await,
        "4003"
    );

    // Resume replays only what the scope allows.
    let mut ws = ws_connect(server, "/ws/subscribe", &teacher).await;
    send(&mut ws, &json!({"since_seq": 0})).await;
    assert_eq!(next(&mut ws).await["status"], "subscribed");
    let mut replayed = Vec::new();
    for _ in 0..4 {
        replayed.push(
            next(&mut ws).await["session_id"]
                .as_str()
                .expect("event")
                .to_owned(),
        );
    }
    assert_eq!(replayed, ["s1", "s2", "s1", "s2"]);
}

#[tokio::test]
async fn a_browser_passes_its_token_in_the_query_of_the_handshake() {
    let setup = start(&[]).await;
    let server = &setup.server;
    let url = format!("/ws/subscribe?token={}", teacher_token(3600));
    assert_eq!(
        ws_subscribe(server, &Cred::None, &json!({"session_id": "s2"})).await,
        "4001"
    );
    let mut ws = ws_connect(server, &url, &Cred::None).await;
    send(&mut ws, &json!({"session_id": "s2"})).await;
    assert_eq!(next(&mut ws).await["status"], "subscribed");
}

#[tokio::test]
async fn each_key_has_its_own_limits_whatever_the_address() {
    let keys = tempfile::tempdir().expect("tempdir");
    let path = keys.path().join("keys.toml");
    std::fs::write(
        &path,
        keys_file(&[
            (
                "small",
                "small-key-1",
                r#"["publish"]"#,
                r#"rate_limit_publish = "2/minute""#,
            ),
            ("default", "default-key-1", r#"["publish"]"#, ""),
            (
                "reader",
                "reader-key-1",
                r#"["read"]"#,
                r#"rate_limit_query = "1/minute""#,
            ),
        ]),
    )
    .expect("write keys");
    let server = TestServer::start(&[
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", LEGACY),
        ("API_KEYS_FILE", path.to_str().expect("utf-8")),
        ("RATE_LIMIT_PUBLISH", "3/minute"),
        ("RATE_LIMIT_WS_PUBLISH", "3/minute"),
    ])
    .await;
    let publish = |key: &'static str| {
        let server = &server;
        async move {
            rest(
                server,
                &Cred::Key(key.into()),
                "POST",
                "/api/v1/events",
                Some(&event("quiz-engine", "s1", "u1")),
            )
            .await
            .0
        }
    };
    assert_eq!(
        [
            publish("small-key-1").await,
            publish("small-key-1").await,
            publish("small-key-1").await
        ],
        [201, 201, 429]
    );
    // Same address, other keys: untouched allowances.
    assert_eq!(
        [
            publish("default-key-1").await,
            publish("default-key-1").await,
            publish("default-key-1").await,
            publish("default-key-1").await
        ],
        [201, 201, 201, 429]
    );
    assert_eq!(publish(LEGACY).await, 201);
    // The key's own limit covers WebSocket publishes too: it is used up.
    let mut ws = ws_connect(&server, "/ws/publish", &Cred::Key("small-key-1".into())).await;
    send(&mut ws, &event("quiz-engine", "s1", "u1")).await;
    let refused = next(&mut ws).await;
    assert_eq!(refused["status"], "error");
    assert_eq!(refused["message"], "Rate limit exceeded. Try again later.");
    assert!(
        refused["retry_after"].as_u64().is_some_and(|s| s >= 1),
        "{refused}"
    );
    // A key's own query limit; its refusals are counted under its name.
    let reader = Cred::Key("reader-key-1".into());
    let query = || rest(&server, &reader, "GET", "/api/v1/events", None);
    assert_eq!([query().await.0, query().await.0], [200, 429]);
    let scrape = reqwest::Client::new()
        .get(format!("{}/metrics", server.base))
        .header("X-API-Key", LEGACY)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    for (class, caller) in [("query", "reader"), ("publish", "small")] {
        let counted = scrape.lines().any(|l| {
            l.starts_with("event_pipeline_rate_limited_total{")
                && l.contains(&format!("class=\"{class}\""))
                && l.contains(&format!("caller=\"{caller}\""))
                && l.ends_with("} 1")
        });
        assert!(counted, "{class} refusal of {caller} in:\n{scrape}");
    }
}

#[tokio::test]
async fn websocket_publishes_have_their_own_bucket_with_a_retry_hint() {
    let server = TestServer::start(&[
        ("RATE_LIMIT_PUBLISH", "1/minute"),
        ("RATE_LIMIT_WS_PUBLISH", "3/minute"),
    ])
    .await;
    assert_eq!(
        server
            .post("/api/v1/events", &event("quiz-engine", "s1", "u1"))
            .await
            .0,
        201
    );
    assert_eq!(
        server
            .post("/api/v1/events", &event("quiz-engine", "s1", "u1"))
            .await
            .0,
        429
    );
    let mut ws = ws_connect(&server, "/ws/publish", &Cred::None).await;
    for _ in 0..3 {
        send(&mut ws, &event("quiz-engine", "s1", "u1")).await;
        assert_eq!(next(&mut ws).await["status"], "ok");
    }
    send(&mut ws, &event("quiz-engine", "s1", "u1")).await;
    let refused = next(&mut ws).await;
    assert_eq!(refused["message"], "Rate limit exceeded. Try again later.");
    assert_eq!(
        refused["retry_after"], 20,
        "3/minute refills one every 20 s"
    );
    send(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut ws).await["status"],
        "error",
        "the connection stays open"
    );
}

#[tokio::test]
async fn a_live_subscriber_is_closed_when_its_token_expires() {
    let setup = start(&[]).await;
    let server = &setup.server;
    let mut ws = ws_connect(server, "/ws/subscribe", &Cred::Bearer(teacher_token(1))).await;
    send(&mut ws, &json!({})).await;
    assert_eq!(next(&mut ws).await["status"], "subscribed");
    // The server closes it at `exp`: awaited, not slept on.
    assert_eq!(
        next(&mut ws).await,
        json!({"closed": 4001, "reason": "Token expired"})
    );
}

/// The refreshed lease is the one in force: nothing closes the subscriber
/// at the first token's `exp`. Awaited: the keepalive (3 s) comes after
/// that `exp` (at most 2 s away).
#[tokio::test]
async fn a_refreshed_subscriber_outlives_its_first_token() {
    let setup = start(&[("WS_KEEPALIVE_SECONDS", "3")]).await;
    let server = &setup.server;
    let mut ws = ws_connect(server, "/ws/subscribe", &Cred::Bearer(teacher_token(2))).await;
    send(&mut ws, &json!({})).await;
    assert_eq!(next(&mut ws).await["status"], "subscribed");
    send(
        &mut ws,
        &json!({"type": "refresh_token", "token": teacher_token(3600)}),
    )
    .await;
    assert_eq!(next(&mut ws).await["status"], "token_refreshed");
    assert_eq!(next(&mut ws).await, json!({"type": "keepalive"}));
}

#[tokio::test]
async fn a_fresh_token_keeps_a_subscriber_and_a_narrower_one_closes_it() {
    let setup = start(&[]).await;
    let server = &setup.server;
    let mut ws = ws_connect(server, "/ws/subscribe", &Cred::Bearer(teacher_token(60))).await;
    send(&mut ws, &json!({"session_id": "s2"})).await;
    assert_eq!(next(&mut ws).await["status"], "subscribed");

    let later = now() + 7200;
    let mut fresh = teacher_claims(0);
    fresh["exp"] = json!(later);
    send(
        &mut ws,
        &json!({"type": "refresh_token", "token": token_with(SECRET, &fresh)}),
    )
    .await;
    let reply = next(&mut ws).await;
    assert_eq!(reply["status"], "token_refreshed", "{reply}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(reply["expires_at"].as_str().expect("expires_at"))
            .expect("RFC 3339");
    assert_eq!(expires.timestamp(), later);

    // Another sub is refused; the connection stays.
    let mut other = fresh.clone();
    other["sub"] = json!("someone-else");
    send(
        &mut ws,
        &json!({"type": "refresh_token", "token": token_with(SECRET, &other)}),
    )
    .await;
    assert_eq!(next(&mut ws).await["status"], "error");
    send(&mut ws, &json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");

    // A token whose sessions no longer cover the filter: 4003.
    let mut narrower = fresh.clone();
    narrower["session_ids"] = json!(["s1"]);
    send(
        &mut ws,
        &json!({"type": "refresh_token", "token": token_with(SECRET, &narrower)}),
    )
    .await;
    assert_eq!(next(&mut ws).await["status"], "error");
    assert_eq!(next(&mut ws).await["closed"], 4003);
}

#[tokio::test]
async fn sighup_reloads_the_keys_and_closes_connections_of_a_removed_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, standard_keys()).expect("write keys");
    let db = dir.path().join("events.db");
    let process = Process::start_with(&[
        ("DATABASE_PATH", db.to_string_lossy().into_owned()),
        ("REQUIRE_AUTH", "true".into()),
        ("API_KEYS_FILE", keys.to_string_lossy().into_owned()),
    ]);
    let url = format!("ws://{}/ws/subscribe", process.addr);
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("X-API-Key", READER.parse().expect("value"));
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .expect("handshake");
    send(&mut ws, &json!({})).await;
    assert_eq!(next(&mut ws).await["status"], "subscribed");

    // A bad file is logged and changes nothing.
    std::fs::write(&keys, "[[keys]\n").expect("write");
    process.signal("HUP");
    process.wait_for_log("API_KEYS_FILE not reloaded", 1).await;
    let client = reqwest::Client::new();
    let stats = |key: &'static str| {
        client
            .get(format!("{}/api/v1/events", process.base))
            .header("X-API-Key", key)
            .send()
    };
    assert_eq!(stats(READER).await.expect("request").status(), 200);

    // The reader's key removed, a new one added.
    std::fs::write(
        &keys,
        keys_file(&[("newcomer", "newcomer-key-1", r#"["read"]"#, "")]),
    )
    .expect("write");
    process.signal("HUP");
    assert_eq!(
        next(&mut ws).await,
        json!({"closed": 4001, "reason": "Key revoked"})
    );
    assert_eq!(stats(READER).await.expect("request").status(), 401);
    assert_eq!(
        stats("newcomer-key-1").await.expect("request").status(),
        200
    );
}

#[tokio::test]
async fn a_bad_keys_file_stops_start_up_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        "\n[[keys]]\nname = \"x\"\nsha256 = \"short\"\nroles = []\n",
    )
    .expect("write");
    let output = std::process::Command::new(support::process::BIN)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_PATH", dir.path().join("events.db"))
        .env("API_KEYS_FILE", &keys)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("keys.toml") && stderr.contains("line 2"),
        "{stderr}"
    );
}

/// The binary with `args` and these variables: status, stdout, stderr.
fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = std::process::Command::new(support::process::BIN);
    command
        .args(args)
        .env_remove("JWT_HS256_SECRET")
        .env_remove("JWT_ISSUER")
        .env_remove("JWT_AUDIENCE");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn keys_new_and_token_make_credentials_the_service_accepts() {
    let (status, out, err) = run_cli(
        &[
            "keys",
            "new",
            "--name",
            "quiz-engine",
            "--roles",
            "publish",
            "--sources",
            "quiz-engine",
            "--rate-limit-publish",
            "50/second",
        ],
        &[],
    );
    assert_eq!(status, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let key = lines[1].to_owned();
    assert!(key.len() >= 40, "a long random key: {key}");
    let entry: String = lines[3..].join("\n");
    assert!(!entry.contains(&key), "the entry holds no secret");
    let (_, again, _) = run_cli(&["keys", "new", "--name", "x", "--roles", "read"], &[]);
    assert_ne!(
        again.lines().nth(1),
        Some(key.as_str()),
        "every key is fresh"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, &entry).expect("write keys");
    let process = Process::start_with(&[
        (
            "DATABASE_PATH",
            dir.path().join("events.db").to_string_lossy().into_owned(),
        ),
        ("REQUIRE_AUTH", "true".into()),
        ("API_KEYS_FILE", keys.to_string_lossy().into_owned()),
        ("JWT_HS256_SECRET", SECRET.into()),
    ]);
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("{}/api/v1/events", process.base))
            .header("X-API-Key", key.as_str())
            .json(&body)
            .send()
    };
    assert_eq!(
        post(event("quiz-engine", "s1", "u1"))
            .await
            .expect("request")
            .status(),
        201
    );
    assert_eq!(
        post(event("grader", "s1", "u1"))
            .await
            .expect("request")
            .status(),
        403
    );

    let (status, token, err) = run_cli(
        &[
            "token",
            "--sub",
            "teacher-7",
            "--roles",
            "read",
            "--session-ids",
            "s1,s2",
            "--ttl",
            "1h",
        ],
        &[("JWT_HS256_SECRET", SECRET)],
    );
    assert_eq!(status, Some(0), "{err}");
    let get = |path: &str| {
        client
            .get(format!("{}{path}", process.base))
            .header("Authorization", format!("Bearer {}", token.trim()))
            .send()
    };
    assert_eq!(get("/api/v1/events").await.expect("request").status(), 200);
    assert_eq!(
        get("/api/v1/events?session_id=s3")
            .await
            .expect("request")
            .status(),
        403
    );
    assert_eq!(get("/api/v1/stats").await.expect("request").status(), 403);
}

#[test]
fn the_credential_commands_refuse_what_would_not_work() {
    let (status, _, err) = run_cli(&["keys", "new", "--name", "x", "--roles", "root"], &[]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("root"), "{err}");
    let (status, _, err) = run_cli(
        &["keys", "new", "--name", "bad name", "--roles", "read"],
        &[],
    );
    assert_eq!(status, Some(2), "{err}");
    let (status, _, err) = run_cli(&["token", "--sub", "t", "--roles", "read"], &[]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("JWT_HS256_SECRET"), "{err}");
    let (status, _, err) = run_cli(
        &["token", "--sub", "t", "--roles", "read", "--ttl", "soon"],
        &[("JWT_HS256_SECRET", SECRET)],
    );
    assert_eq!(status, Some(2), "{err}");
}
