//! Security and limits over real HTTP and WebSocket: the auth matrix with an
//! admin key, CORS, security headers and HSTS, rate limits, size limits.

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{example, TestServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const USER: &str = "user-key-7c1";
const ADMIN: &str = "admin-key-93e";

#[tokio::test]
async fn the_auth_matrix_with_an_admin_key_holds_on_every_protected_route() {
    let server = TestServer::start(&[
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", USER),
        ("ADMIN_API_KEY", ADMIN),
    ])
    .await;
    let event = example("quiz_started");
    let id = {
        let (s, e) = server
            .call_with_key("POST", "/api/v1/events", Some(USER), Some(&event))
            .await;
        assert_eq!(s, 201);
        e["id"].as_str().expect("id").to_owned()
    };
    let one = format!("/api/v1/events/{id}");
    // (method, path, body, status with the user key, status with the admin key)
    let routes: [(&str, &str, Option<&Value>, u16, u16); 5] = [
        ("POST", "/api/v1/events", Some(&event), 201, 201),
        ("GET", "/api/v1/events", None, 200, 200),
        ("GET", &one, None, 200, 200),
        ("GET", "/api/v1/stats", None, 200, 200),
        (
            "DELETE",
            "/api/v1/events?before=2000-01-01T00:00:00Z",
            None,
            403,
            200,
        ),
    ];
    for (method, path, body, user_status, admin_status) in routes {
        for prefix_free in [false, true] {
            let path = if prefix_free {
                path.replacen("/api/v1", "", 1)
            } else {
                path.to_owned()
            };
            for key in [None, Some("wrong-key")] {
                assert_eq!(
                    server.call_with_key(method, &path, key, body).await,
                    (401, json!({"detail": "Invalid or missing API key"})),
                    "{method} {path} {key:?}"
                );
            }
            let (s, answer) = server.call_with_key(method, &path, Some(USER), body).await;
            assert_eq!(s, user_status, "{method} {path} user key: {answer}");
            if s == 403 {
                assert!(answer["detail"].is_string());
            }
            assert_eq!(
                server
                    .call_with_key(method, &path, Some(ADMIN), body)
                    .await
                    .0,
                admin_status,
                "{method} {path} admin"
            );
        }
    }
    for path in ["/health", "/readiness", "/event-types"] {
        assert_eq!(
            server.call_with_key("GET", path, None, None).await.0,
            200,
            "{path} stays open"
        );
    }
}

async fn ws_close_code(server: &TestServer, path: &str, key: Option<&str>) -> Option<u16> {
    let mut request = server.ws_url(path).into_client_request().expect("request");
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("X-API-Key", key.parse().expect("header"));
    }
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .expect("handshake");
    if path.contains("subscribe") {
        let _ = ws.send(Message::text("{}")).await;
    } else {
        let _ = ws
            .send(Message::text(example("timer_tick").to_string()))
            .await;
    }
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next());
        match next.await.expect("a frame in time") {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("json");
                assert!(v["status"] == "ok" || v["status"] == "subscribed", "{v}");
                return None;
            }
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_endpoints_accept_the_user_and_admin_keys_and_close_others_with_4001() {
    let server = TestServer::start(&[
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", USER),
        ("ADMIN_API_KEY", ADMIN),
    ])
    .await;
    for path in ["/ws/publish", "/ws/subscribe"] {
        assert_eq!(
            ws_close_code(&server, path, None).await,
            Some(4001),
            "{path}"
        );
        assert_eq!(
            ws_close_code(&server, path, Some("wrong")).await,
            Some(4001),
            "{path}"
        );
        assert_eq!(
            ws_close_code(&server, path, Some(USER)).await,
            None,
            "{path}"
        );
        assert_eq!(
            ws_close_code(&server, path, Some(ADMIN)).await,
            None,
            "{path}"
        );
        assert_eq!(
            ws_close_code(&server, &format!("{path}?api_key={USER}"), None).await,
            None,
            "{path}"
        );
    }
}

#[tokio::test]
async fn cors_allows_any_origin_by_default_and_answers_preflights() {
    let server = TestServer::start(&[]).await;
    for path in ["/health", "/api/v1/events", "/nope"] {
        let r = server
            .call(
                "GET",
                path,
                &[("Origin", "https://dash.school.example")],
                None,
            )
            .await;
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
    }
    let r = server
        .call(
            "OPTIONS",
            "/api/v1/events",
            &[
                ("Origin", "https://dash.school.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-max-age"], "600");
    for m in ["GET", "POST", "DELETE"] {
        assert!(h["access-control-allow-methods"]
            .to_str()
            .expect("text")
            .contains(m));
    }
    let allowed_headers = h["access-control-allow-headers"]
        .to_str()
        .expect("text")
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("content-type")
            && allowed_headers.contains("x-api-key")
            && allowed_headers.contains("authorization")
            && allowed_headers.contains("idempotency-key"),
        "a browser may send each header the API reads: {allowed_headers}"
    );
    assert!(h.get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn configured_origins_are_echoed_and_others_are_served_without_cors_headers() {
    let server =
        TestServer::start(&[("CORS_ORIGINS", "https://a.example, https://b.example")]).await;
    let r = server
        .call("GET", "/health", &[("Origin", "https://b.example")], None)
        .await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://b.example"
    );
    assert!(r.headers().get_all("vary").iter().any(|v| v == "Origin"));
    let r = server
        .call(
            "GET",
            "/health",
            &[("Origin", "https://evil.example")],
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "still served");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let preflight = |origin: &'static str| {
        let server = &server;
        async move {
            server
                .call(
                    "OPTIONS",
                    "/api/v1/events",
                    &[
                        ("Origin", origin),
                        ("Access-Control-Request-Method", "DELETE"),
                    ],
                    None,
                )
                .await
        }
    };
    let ok = preflight("https://a.example").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://a.example"
    );
    let refused = preflight("https://evil.example").await;
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert!(refused
        .headers()
        .get("access-control-allow-methods")
        .is_none());
    // An OPTIONS that is not a preflight is an ordinary wrong method.
    assert_eq!(
        server
            .call("OPTIONS", "/api/v1/events", &[], None)
            .await
            .status(),
        405
    );
}

#[tokio::test]
async fn hsts_is_sent_only_for_https_as_told_by_a_trusted_proxy() {
    let plain = TestServer::start(&[]).await;
    let r = plain
        .call("GET", "/health", &[("X-Forwarded-Proto", "https")], None)
        .await;
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "untrusted peers cannot claim HTTPS"
    );
    let proxied = TestServer::start(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let r = proxied
        .call("GET", "/nope", &[("X-Forwarded-Proto", "https")], None)
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let r = proxied
        .call("GET", "/health", &[("X-Forwarded-Proto", "http")], None)
        .await;
    assert!(r.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn the_publish_limit_allows_a_burst_then_429_with_retry_after_and_bad_requests_do_not_count()
{
    let server = TestServer::start(&[
        ("RATE_LIMIT_PUBLISH", "3/minute"),
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", USER),
    ])
    .await;
    let event = example("answer_submitted");
    // Refused for auth or validation: these use up nothing.
    for _ in 0..5 {
        assert_eq!(
            server
                .call_with_key("POST", "/api/v1/events", None, Some(&event))
                .await
                .0,
            401
        );
        assert_eq!(
            server
                .call_with_key(
                    "POST",
                    "/api/v1/events",
                    Some(USER),
                    Some(&json!({"event_type": "x"}))
                )
                .await
                .0,
            422
        );
    }
    for _ in 0..3 {
        assert_eq!(
            server
                .call_with_key("POST", "/events", Some(USER), Some(&event))
                .await
                .0,
            201
        );
    }
    let r = server
        .call(
            "POST",
            "/api/v1/events",
            &[("X-API-Key", USER)],
            Some(&event),
        )
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "20");
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"detail": "Rate limit exceeded. Try again later."})
    );
    // Other classes have their own allowance.
    assert_eq!(
        server
            .call_with_key("GET", "/api/v1/events", Some(USER), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn the_query_limit_covers_events_and_stats_but_not_health_readiness_or_event_types() {
    let server = TestServer::start(&[("RATE_LIMIT_QUERY", "2/minute")]).await;
    assert_eq!(server.get("/api/v1/events").await.0, 200);
    assert_eq!(server.get("/api/v1/stats").await.0, 200);
    assert_eq!(
        server
            .get("/api/v1/events/evt_00000000000000000000000000000000")
            .await
            .0,
        429
    );
    assert_eq!(server.get("/stats").await.0, 429);
    // A request refused for its parameters does not count, but is still refused.
    assert_eq!(server.get("/api/v1/events?limit=0").await.0, 422);
    for path in ["/health", "/readiness", "/event-types", "/api/v1/health"] {
        assert_eq!(server.get(path).await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn the_admin_limit_applies_to_delete() {
    let server = TestServer::start(&[("RATE_LIMIT_ADMIN", "1/hour")]).await;
    assert_eq!(server.delete("/api/v1/events").await.0, 200);
    assert_eq!(server.delete("/api/v1/events?before=garbage").await.0, 400);
    let (s, body) = server.delete("/api/v1/events").await;
    assert_eq!(s, 429, "{body}");
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let direct = TestServer::start(&[("RATE_LIMIT_QUERY", "1/minute")]).await;
    let with_xff = |server: &'static str| [("X-Forwarded-For", server)];
    assert_eq!(
        direct
            .call("GET", "/stats", &with_xff("1.1.1.1"), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        direct
            .call("GET", "/stats", &with_xff("2.2.2.2"), None)
            .await
            .status(),
        429,
        "spoofed header ignored"
    );

    let proxied = TestServer::start(&[
        ("RATE_LIMIT_QUERY", "1/minute"),
        ("TRUSTED_PROXIES", "127.0.0.0/8"),
    ])
    .await;
    assert_eq!(
        proxied
            .call("GET", "/stats", &with_xff("1.1.1.1"), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        proxied
            .call("GET", "/stats", &with_xff("2.2.2.2"), None)
            .await
            .status(),
        200
    );
    assert_eq!(
        proxied
            .call("GET", "/stats", &with_xff("1.1.1.1"), None)
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn over_long_query_strings_and_deep_payloads_get_a_clear_4xx() {
    let server = TestServer::start(&[]).await;
    let (s, body) = server
        .get(&format!("/api/v1/events?session_id={}", "x".repeat(9_000)))
        .await;
    assert_eq!(s, 414);
    assert!(body["detail"].is_string());
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({ "a": deep });
    }
    let mut event = example("error_occurred");
    event["payload"] = deep;
    let (s, body) = server.post("/api/v1/events", &event).await;
    assert_eq!(s, 422, "{body}");
    // Deeper than serde_json's own limit: still a 422 with detail, not a 500.
    let text = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let raw = server
        .client
        .post(server.url("/api/v1/events"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"event_type":"timer_tick","source":"t","payload":{{"x":{text}}}}}"#
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(TestServer::answer(raw).await.0, 422);
}

/// Sends `head` (a request head without the blank line) over a raw socket
/// and returns the status, the content type and the body of the answer.
async fn raw_request(server: &TestServer, head: &str) -> (u16, Option<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.running().local_addr())
        .await
        .expect("connect");
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer in time")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let content_type = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-type: ")
            .map(str::to_owned)
    });
    (status, content_type, body.to_owned())
}

#[tokio::test]
async fn too_many_or_too_large_headers_get_a_json_431_up_to_hyper_s_own_ceiling() {
    let server = TestServer::start(&[]).await;
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("X-Filler-{i}: {i}"))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let cases = [
        ("101 header fields", many(101)),
        // With Host and Connection: as many as hyper parses.
        (
            "hyper's most header fields",
            many(ep_http::HYPER_MAX_HEADERS - 2),
        ),
        ("one 70 KB header", format!("X-Big: {}", "b".repeat(70_000))),
        (
            "one header just under hyper's buffer",
            format!(
                "X-Big: {}",
                "b".repeat(ep_http::HYPER_MAX_HEAD_BYTES - 10_000)
            ),
        ),
    ];
    for path in ["/health", "/api/v1/events", "/ws/subscribe"] {
        for (what, headers) in &cases {
            let (status, content_type, body) = raw_request(
                &server,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}"),
            )
            .await;
            assert_eq!(status, 431, "{path}, {what}");
            assert_eq!(
                content_type.as_deref(),
                Some("application/json"),
                "{path}, {what}"
            );
            let body: Value = serde_json::from_str(&body).expect("JSON body");
            assert!(body["detail"].is_string(), "{body}");
        }
    }
    // Within the limits: served as usual.
    let (status, _, _) = raw_request(
        &server,
        &format!("GET /health HTTP/1.1\r\nHost: x\r\n{}", many(90)),
    )
    .await;
    assert_eq!(status, 200);
}

/// Publishes over a WebSocket and returns the reply.
async fn ws_publish(ws: &mut support::raw_ws::RawWs, event: &Value) -> Value {
    ws.send(&[support::raw_ws::Frame::text(event.to_string())])
        .await;
    serde_json::from_str(&ws.text().await).expect("JSON reply")
}

#[tokio::test]
async fn websocket_publishes_from_one_address_share_their_own_limit_apart_from_rest() {
    let server = TestServer::start(&[
        ("RATE_LIMIT_PUBLISH", "2/minute"),
        ("RATE_LIMIT_WS_PUBLISH", "3/minute"),
    ])
    .await;
    let addr = server.running().local_addr();
    let event = example("answer_submitted");
    let mut ws = support::raw_ws::RawWs::connect(addr, "/ws/publish", &[]).await;
    // Refused messages use up nothing.
    for _ in 0..10 {
        let reply = ws_publish(&mut ws, &json!({"event_type": "x"})).await;
        assert_eq!(reply["status"], "error", "{reply}");
        assert_ne!(reply["message"], "Rate limit exceeded. Try again later.");
    }
    for round in 0..2 {
        assert_eq!(
            server.post("/api/v1/events", &event).await.0,
            201,
            "{round}"
        );
    }
    let (status, body) = server.post("/api/v1/events", &event).await;
    assert_eq!(
        (status, body["detail"].clone()),
        (429, json!("Rate limit exceeded. Try again later."))
    );
    // REST's limit is used up; the WebSocket bucket is whole.
    for round in 0..3 {
        assert_eq!(ws_publish(&mut ws, &event).await["status"], "ok", "{round}");
    }
    let limited = json!({"status": "error", "message": "Rate limit exceeded. Try again later.", "retry_after": 20});
    for _ in 0..3 {
        assert_eq!(ws_publish(&mut ws, &event).await, limited);
    }
    // The connection stays open, a second one shares the allowance, and
    // nothing over the limits was stored.
    let mut other = support::raw_ws::RawWs::connect(addr, "/ws/publish", &[]).await;
    assert_eq!(ws_publish(&mut other, &event).await, limited);
    assert_eq!(server.get("/api/v1/stats").await.1["total_events"], 5);
}

#[tokio::test]
async fn websocket_connections_are_counted_per_forwarded_client_behind_a_trusted_proxy() {
    let server = TestServer::start(&[
        ("MAX_WS_CONNECTIONS_PER_IP", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let addr = server.running().local_addr();
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    let mut open = Vec::new();
    for path in ["/ws/publish", "/ws/subscribe"] {
        open.push(support::raw_ws::RawWs::connect(addr, path, &from("203.0.113.5")).await);
    }
    let mut third =
        support::raw_ws::RawWs::connect(addr, "/ws/publish", &from("203.0.113.5")).await;
    assert_eq!(third.close_code().await, Some(4002));
    // Another student behind the same balancer has its own allowance.
    for _ in 0..2 {
        let mut ws =
            support::raw_ws::RawWs::connect(addr, "/ws/publish", &from("203.0.113.6")).await;
        assert_eq!(
            ws_publish(&mut ws, &example("timer_tick")).await["status"],
            "ok"
        );
        open.push(ws);
    }
    // A client cannot claim another address past the proxy.
    let mut spoofed = support::raw_ws::RawWs::connect(
        addr,
        "/ws/publish",
        &[("X-Forwarded-For", "203.0.113.9, 203.0.113.5")],
    )
    .await;
    assert_eq!(spoofed.close_code().await, Some(4002));

    // Without trusted proxies the header is ignored: every connection is the peer's.
    let direct = TestServer::start(&[("MAX_WS_CONNECTIONS_PER_IP", "1")]).await;
    let addr = direct.running().local_addr();
    let _first = support::raw_ws::RawWs::connect(addr, "/ws/publish", &from("198.51.100.1")).await;
    let mut second =
        support::raw_ws::RawWs::connect(addr, "/ws/publish", &from("198.51.100.2")).await;
    assert_eq!(second.close_code().await, Some(4002));
}

#[tokio::test]
async fn a_websocket_handshake_from_a_foreign_origin_is_refused_with_403_when_origins_are_listed() {
    let server = TestServer::start(&[(
        "CORS_ORIGINS",
        "https://school.example, https://admin.school.example",
    )])
    .await;
    let addr = server.running().local_addr();
    for path in ["/ws/publish", "/ws/subscribe"] {
        let (status, mut refused) =
            support::raw_ws::RawWs::handshake(addr, path, &[("Origin", "https://evil.example")])
                .await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(
            refused.header("content-type").as_deref(),
            Some("application/json")
        );
        let body: Value = serde_json::from_str(&refused.body().await).expect("JSON");
        assert_eq!(body, json!({"detail": "Origin not allowed"}));

        for origin in [Some("https://admin.school.example"), None] {
            let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
            let (status, _) = support::raw_ws::RawWs::handshake(addr, path, &headers).await;
            assert_eq!(status, 101, "{path} from {origin:?}");
        }
    }
    // With the default `*`, any origin may connect.
    let open = TestServer::start(&[]).await;
    let (status, _) = support::raw_ws::RawWs::handshake(
        open.running().local_addr(),
        "/ws/subscribe",
        &[("Origin", "https://anywhere.example")],
    )
    .await;
    assert_eq!(status, 101);
}
