//! Every REST row of the contract over real HTTP, against the server started
//! on 127.0.0.1:0 with a fresh SQLite file.

mod support;

use serde_json::{json, Value};
use support::{example, examples, TestServer};

const PREFIXES: [&str; 2] = ["/api/v1", ""];

#[tokio::test]
async fn health_answers_ok_with_service_and_version_on_both_paths() {
    let server = TestServer::start(&[]).await;
    for prefix in PREFIXES {
        let (status, body) = server.get(&format!("{prefix}/health")).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["service"], "event-pipeline");
        assert!(body["version"].is_string());
    }
}

#[tokio::test]
async fn readiness_reports_the_database_and_router() {
    let server = TestServer::start(&[]).await;
    for prefix in PREFIXES {
        let (status, body) = server.get(&format!("{prefix}/readiness")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"ready": true, "database": "connected", "router": {"active_subscribers": 0, "queue_size": 0}})
        );
    }
}

#[tokio::test]
async fn every_example_event_is_published_with_201_and_stored_as_sent() {
    let server = TestServer::start(&[]).await;
    let mut last_seq = 0;
    for sent in examples() {
        let stored = server.publish(&sent).await;
        for field in ["event_type", "source", "session_id", "user_id", "payload"] {
            assert_eq!(
                stored[field], sent[field],
                "{field} of {}",
                sent["event_type"]
            );
        }
        let id = stored["id"].as_str().expect("id");
        assert!(id.starts_with("evt_") && id.len() == 36, "{id}");
        let ts = stored["timestamp"].as_str().expect("timestamp");
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
        let seq = stored["seq"].as_u64().expect("seq");
        assert!(seq > last_seq);
        last_seq = seq;
        let (status, fetched) = server.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!((status, &fetched), (200, &stored));
    }
}

#[tokio::test]
async fn publishing_works_on_the_alias_path_and_extra_fields_are_ignored() {
    let server = TestServer::start(&[]).await;
    let mut body = example("timer_tick");
    body["unexpected"] = json!({"x": 1});
    let (status, stored) = server.post("/events", &body).await;
    assert_eq!(status, 201);
    assert!(stored.get("unexpected").is_none());
    let (_, fetched) = server
        .get(&format!("/events/{}", stored["id"].as_str().expect("id")))
        .await;
    assert_eq!(fetched, stored);
}

#[tokio::test]
async fn ids_are_time_ordered_and_unique() {
    let server = TestServer::start(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(
            server.publish(&example("timer_tick")).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
}

#[tokio::test]
async fn a_missing_payload_defaults_to_an_empty_object_and_ids_may_be_null() {
    let server = TestServer::start(&[]).await;
    let stored = server
        .publish(
            &json!({"event_type": "session_ended", "source": "quiz-engine", "session_id": null}),
        )
        .await;
    assert_eq!(stored["payload"], json!({}));
    assert_eq!(stored["session_id"], Value::Null);
    assert_eq!(stored["user_id"], Value::Null);
}

async fn assert_422(server: &TestServer, body: Value, field: &str) -> Value {
    let (status, answer) = server.post("/api/v1/events", &body).await;
    assert_eq!(status, 422, "{body} → {answer}");
    let detail = answer["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("detail list: {answer}"));
    assert!(
        detail.iter().any(|d| d["loc"]
            .as_array()
            .and_then(|l| l.last())
            .and_then(Value::as_str)
            == Some(field)
            && d["msg"].is_string()
            && d["type"].is_string()),
        "no error for {field}: {answer}"
    );
    answer
}

#[tokio::test]
async fn an_unknown_event_type_is_422_naming_the_value_and_the_valid_ones() {
    let server = TestServer::start(&[]).await;
    let mut body = example("quiz_started");
    body["event_type"] = json!("quiz_begun");
    let answer = assert_422(&server, body, "event_type").await;
    let text = answer.to_string();
    assert!(
        text.contains("quiz_begun") && text.contains("mastery_updated"),
        "{text}"
    );
}

#[tokio::test]
async fn source_rules_are_enforced() {
    let server = TestServer::start(&[]).await;
    for bad in [
        json!(""),
        json!("has space"),
        json!("semi;colon"),
        json!("x".repeat(101)),
        json!(42),
        Value::Null,
    ] {
        let mut body = example("timer_tick");
        body["source"] = bad;
        assert_422(&server, body, "source").await;
    }
    let mut body = example("timer_tick");
    body["source"] = json!("A-z_0.9");
    server.publish(&body).await;
    body.as_object_mut().expect("object").remove("source");
    assert_422(&server, body, "source").await;
}

#[tokio::test]
async fn session_and_user_ids_over_200_chars_are_422() {
    let server = TestServer::start(&[]).await;
    for field in ["session_id", "user_id"] {
        let mut body = example("timer_tick");
        body[field] = json!("s".repeat(201));
        assert_422(&server, body.clone(), field).await;
        body[field] = json!("s".repeat(200));
        server.publish(&body).await;
        body[field] = json!(12);
        assert_422(&server, body, field).await;
    }
}

#[tokio::test]
async fn payload_must_be_an_object_within_the_key_and_size_limits() {
    let server = TestServer::start(&[]).await;
    for bad in [json!([1, 2]), json!("text"), json!(3), Value::Null] {
        let mut body = example("timer_tick");
        body["payload"] = bad;
        assert_422(&server, body, "payload").await;
    }
    let mut body = example("timer_tick");
    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
    body["payload"] = Value::Object(many);
    assert_422(&server, body.clone(), "payload").await;
    body["payload"] = json!({"blob": "x".repeat(70_000)});
    assert_422(&server, body.clone(), "payload").await;
    body["payload"] = json!({"blob": "x".repeat(60_000)});
    server.publish(&body).await;
}

#[tokio::test]
async fn payload_limits_follow_configuration() {
    let server =
        TestServer::start(&[("MAX_PAYLOAD_KEYS", "3"), ("MAX_PAYLOAD_BYTES", "100")]).await;
    let mut body = example("timer_tick");
    body["payload"] = json!({"a": 1, "b": 2, "c": 3});
    server.publish(&body).await;
    body["payload"] = json!({"a": 1, "b": 2, "c": 3, "d": 4});
    assert_422(&server, body.clone(), "payload").await;
    body["payload"] = json!({"a": "x".repeat(100)});
    assert_422(&server, body, "payload").await;
}

#[tokio::test]
async fn every_violation_is_listed_at_once() {
    let server = TestServer::start(&[]).await;
    let answer = assert_422(
        &server,
        json!({"event_type": "nope", "source": "bad source", "payload": []}),
        "source",
    )
    .await;
    assert_eq!(
        answer["detail"].as_array().map(Vec::len),
        Some(3),
        "{answer}"
    );
}

async fn raw_post(
    server: &TestServer,
    content_type: Option<&str>,
    body: &'static str,
) -> (u16, Value) {
    let mut request = server.client.post(server.url("/api/v1/events")).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    TestServer::answer(request.send().await.expect("request")).await
}

#[tokio::test]
async fn malformed_json_non_objects_empty_bodies_and_wrong_content_types_are_422_with_detail() {
    let server = TestServer::start(&[]).await;
    for (ct, body) in [
        (Some("application/json"), "{\"event_type\": "),
        (Some("application/json"), "not json"),
        (Some("application/json"), "[1,2,3]"),
        (Some("application/json"), ""),
        (
            Some("text/plain"),
            r#"{"event_type":"timer_tick","source":"t"}"#,
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "event_type=timer_tick",
        ),
    ] {
        let (status, answer) = raw_post(&server, ct, body).await;
        assert_eq!(status, 422, "{ct:?} {body:?} → {answer}");
        assert!(answer["detail"].is_array(), "{answer}");
    }
    let (status, _) = raw_post(&server, None, r#"{"event_type":"timer_tick","source":"t"}"#).await;
    assert_eq!(status, 201, "a body without content-type is read as JSON");
    let (status, _) = raw_post(
        &server,
        Some("application/json; charset=utf-8"),
        r#"{"event_type":"timer_tick","source":"t"}"#,
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_body_over_the_cap_is_413_with_detail() {
    let server = TestServer::start(&[("MAX_BODY_BYTES", "2048")]).await;
    let body =
        json!({"event_type": "timer_tick", "source": "t", "payload": {"blob": "x".repeat(4096)}});
    let (status, answer) = server.post("/api/v1/events", &body).await;
    assert_eq!(status, 413);
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("2048")),
        "{answer}"
    );
    // Chunked (no Content-Length): refused as it streams past the cap.
    let chunks = futures_util::stream::iter(
        (0..8).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024]))),
    );
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("request");
    assert_eq!(TestServer::answer(response).await.0, 413);
}

async fn seed(server: &TestServer) -> Vec<Value> {
    let mut stored = Vec::new();
    for (event_type, session, user) in [
        ("quiz_started", "s1", "u1"),
        ("timer_tick", "s1", "u1"),
        ("answer_submitted", "s1", "u1"),
        ("timer_tick", "s2", "u2"),
        ("answer_submitted", "s2", "u1"),
    ] {
        let mut body = example(event_type);
        body["session_id"] = json!(session);
        body["user_id"] = json!(user);
        stored.push(server.publish(&body).await);
    }
    stored
}

fn ids(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect()
}

fn ids_of<'a>(stored: &'a [Value], picks: &[usize]) -> Vec<&'a str> {
    picks
        .iter()
        .map(|&i| stored[i]["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn query_lists_newest_first_with_filters_combined_by_and() {
    let server = TestServer::start(&[]).await;
    let s = seed(&server).await;
    for prefix in PREFIXES {
        let q = |query: &str| format!("{prefix}/events{query}");
        assert_eq!(
            ids(&server.get(&q("")).await.1),
            ids_of(&s, &[4, 3, 2, 1, 0])
        );
        assert_eq!(
            ids(&server.get(&q("?limit=2")).await.1),
            ids_of(&s, &[4, 3])
        );
        assert_eq!(
            ids(&server.get(&q("?event_type=timer_tick")).await.1),
            ids_of(&s, &[3, 1])
        );
        assert_eq!(
            ids(&server.get(&q("?session_id=s1")).await.1),
            ids_of(&s, &[2, 1, 0])
        );
        assert_eq!(
            ids(&server.get(&q("?user_id=u1")).await.1),
            ids_of(&s, &[4, 2, 1, 0])
        );
        assert_eq!(
            ids(&server
                .get(&q("?event_type=answer_submitted&user_id=u1&session_id=s2"))
                .await
                .1),
            ids_of(&s, &[4])
        );
        assert_eq!(
            server.get(&q("?event_type=quiz_begun")).await,
            (200, json!([]))
        );
        assert_eq!(server.get(&q("?session_id=nobody")).await, (200, json!([])));
    }
}

#[tokio::test]
async fn since_is_exclusive_and_compares_instants_with_offsets() {
    let server = TestServer::start(&[]).await;
    let s = seed(&server).await;
    let t1 = s[1]["timestamp"].as_str().expect("ts");
    let (status, after) = server.get(&format!("/api/v1/events?since={t1}")).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&after), ids_of(&s, &[4, 3, 2]));
    // The same instant written with a +02:00 offset (percent-encoded plus).
    let instant = chrono::DateTime::parse_from_rfc3339(t1).expect("rfc3339");
    let shifted = instant
        .with_timezone(&chrono::FixedOffset::east_opt(7200).expect("offset"))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        .replace('+', "%2B");
    assert_eq!(
        ids(&server
            .get(&format!("/api/v1/events?since={shifted}"))
            .await
            .1),
        ids_of(&s, &[4, 3, 2])
    );
    assert_eq!(
        server
            .get("/api/v1/events?since=2000-01-01")
            .await
            .1
            .as_array()
            .map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn bad_query_parameters_are_422_and_a_bad_since_is_400() {
    let server = TestServer::start(&[]).await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        &format!("event_type={}", "x".repeat(51)),
        &format!("session_id={}", "x".repeat(201)),
        &format!("user_id={}", "x".repeat(201)),
    ] {
        let (status, answer) = server.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, 422, "{query} → {answer}");
        assert!(answer["detail"].is_array(), "{answer}");
    }
    assert_eq!(server.get("/api/v1/events?limit=1000").await.0, 200);
    assert_eq!(
        server.get("/api/v1/events?since=yesterday").await,
        (
            400,
            json!({"detail": "Invalid ISO 8601 timestamp for 'since'"})
        )
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404_with_detail() {
    let server = TestServer::start(&[]).await;
    seed(&server).await;
    for id in [
        "evt_00000000000000000000000000000000",
        "nope",
        "evt_%27%20OR%201%3D1",
        &"x".repeat(300),
    ] {
        for prefix in PREFIXES {
            assert_eq!(
                server.get(&format!("{prefix}/events/{id}")).await,
                (404, json!({"detail": "Event not found"})),
                "{id}"
            );
        }
    }
}

#[tokio::test]
async fn stats_count_by_type_with_last_seen_and_the_last_hour() {
    let server = TestServer::start(&[]).await;
    let empty = server.get("/api/v1/stats").await;
    assert_eq!(
        empty,
        (
            200,
            json!({"total_events": 0, "events_last_hour": 0, "by_type": [],
                   "router": {"active_subscribers": 0, "queue_size": 0}})
        )
    );
    let s = seed(&server).await;
    for prefix in PREFIXES {
        let (status, stats) = server.get(&format!("{prefix}/stats")).await;
        assert_eq!(status, 200);
        assert_eq!(stats["total_events"], 5);
        assert_eq!(stats["events_last_hour"], 5);
        let rows: Vec<(String, u64, String)> = stats["by_type"]
            .as_array()
            .expect("by_type")
            .iter()
            .map(|r| {
                (
                    r["event_type"].as_str().expect("type").to_owned(),
                    r["count"].as_u64().expect("count"),
                    r["last_seen"].as_str().expect("last_seen").to_owned(),
                )
            })
            .collect();
        let ts = |i: usize| s[i]["timestamp"].as_str().expect("ts").to_owned();
        assert_eq!(
            rows,
            vec![
                ("answer_submitted".into(), 2, ts(4)),
                ("timer_tick".into(), 2, ts(3)),
                ("quiz_started".into(), 1, ts(0)),
            ]
        );
    }
}

#[tokio::test]
async fn delete_before_removes_older_events_and_stats_follow() {
    let server = TestServer::start(&[]).await;
    let s = seed(&server).await;
    let cut = s[2]["timestamp"].as_str().expect("ts").replace('+', "%2B");
    assert_eq!(
        server.delete(&format!("/api/v1/events?before={cut}")).await,
        (200, json!({"deleted": 2}))
    );
    assert_eq!(
        ids(&server.get("/api/v1/events").await.1),
        ids_of(&s, &[4, 3, 2])
    );
    let (_, stats) = server.get("/api/v1/stats").await;
    assert_eq!(stats["total_events"], 3);
    assert_eq!(stats["events_last_hour"], 3);
    assert!(!stats.to_string().contains("quiz_started"));
    assert_eq!(server.delete("/events").await, (200, json!({"deleted": 3})));
    assert_eq!(server.get("/stats").await.1["by_type"], json!([]));
    assert_eq!(
        server.delete("/api/v1/events?before=someday").await,
        (
            400,
            json!({"detail": "Invalid ISO 8601 timestamp for 'before'"})
        )
    );
    // Sequence numbers are not reused after deleting everything.
    let after = server.publish(&example("timer_tick")).await;
    assert!(after["seq"].as_u64() > s[4]["seq"].as_u64());
}

#[tokio::test]
async fn event_types_lists_the_fifteen_types_with_descriptions() {
    let server = TestServer::start(&[]).await;
    for prefix in PREFIXES {
        let (status, types) = server.get(&format!("{prefix}/event-types")).await;
        assert_eq!(status, 200);
        let types = types.as_object().expect("object");
        assert_eq!(types.len(), 15);
        assert_eq!(types["timer_tick"], "Timer tick (usually every second)");
        assert_eq!(types["quiz_started"], "Student started a quiz session");
        for e in examples() {
            assert!(types.contains_key(e["event_type"].as_str().expect("type")));
        }
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_both_with_json_detail() {
    let server = TestServer::start(&[]).await;
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/events",
        "/api/v1/events/x/y",
        "/api",
    ] {
        assert_eq!(
            server.get(path).await,
            (404, json!({"detail": "Not Found"})),
            "{path}"
        );
    }
    for (method, path) in [
        (reqwest::Method::PUT, "/api/v1/events"),
        (reqwest::Method::PATCH, "/events"),
        (reqwest::Method::POST, "/health"),
        (reqwest::Method::DELETE, "/api/v1/stats"),
        (reqwest::Method::POST, "/api/v1/events/evt_x"),
    ] {
        let response = server
            .client
            .request(method.clone(), server.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(
            TestServer::answer(response).await,
            (405, json!({"detail": "Method Not Allowed"})),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn security_headers_are_on_every_response_errors_included() {
    let server = TestServer::start(&[]).await;
    for path in [
        "/health",
        "/nope",
        "/api/v1/events?limit=0",
        "/api/v1/events/evt_x",
    ] {
        let response = server
            .client
            .get(server.url(path))
            .send()
            .await
            .expect("request");
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-xss-protection"], "1; mode=block");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        assert_eq!(h["content-security-policy"], "default-src 'self'");
        assert_eq!(h["content-type"], "application/json");
    }
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served_as_the_node_is_configured() {
    for auth in [true, false] {
        let server = if auth {
            TestServer::start(&[("REQUIRE_AUTH", "true"), ("API_KEY", "k")]).await
        } else {
            TestServer::start(&[("REQUIRE_AUTH", "false")]).await
        };
        for path in ["/openapi.json", "/api/v1/openapi.json"] {
            let (status, doc) = server.get(path).await;
            assert_eq!(status, 200, "{path}");
            assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
            for route in [
                "/api/v1/events",
                "/api/v1/events/{id}",
                "/api/v1/stats",
                "/api/v1/event-types",
                "/api/v1/health",
                "/events",
                "/metrics",
            ] {
                assert!(doc["paths"].get(route).is_some(), "{route} documented");
            }
            for handshake in ["/api/v1/ws/publish", "/ws/subscribe"] {
                assert!(doc["x-websockets"].get(handshake).is_some(), "{handshake}");
            }
            let types = doc["components"]["schemas"]["EventType"]["enum"]
                .as_array()
                .expect("enum");
            // The 15 and `caliper_event`, which a publish may name too.
            assert_eq!(types.len(), 16);
            let publish = &doc["paths"]["/api/v1/events"]["post"];
            assert_eq!(publish.get("security").is_some(), auth, "auth={auth}");
            assert_eq!(publish["responses"].get("401").is_some(), auth);
            assert!(publish["responses"]["429"].is_object());
        }
        let fetch = |path: &'static str| {
            let request = server.client.get(server.url(path));
            async move {
                let response = request.send().await.expect(path);
                assert_eq!(response.status(), 200, "{path}");
                let kind = response.headers()["content-type"]
                    .to_str()
                    .expect("text")
                    .to_owned();
                (kind, response.text().await.expect("body"))
            }
        };
        let (kind, page) = fetch("/docs").await;
        assert!(kind.starts_with("text/html"), "{kind}");
        // Relative, so that /api/v1/docs loads /api/v1/openapi.json.
        for reference in [
            "href=\"openapi.json\"",
            "src=\"docs.js\"",
            "href=\"docs.css\"",
        ] {
            assert!(page.contains(reference), "{reference}");
        }
        let (kind, script) = fetch("/docs.js").await;
        assert!(kind.starts_with("text/javascript"), "{kind}");
        assert!(script.contains("fetch(\"openapi.json\")"));
        assert!(script.contains("x-websockets"));
        let (kind, _) = fetch("/api/v1/docs.css").await;
        assert!(kind.starts_with("text/css"), "{kind}");
    }
}

#[tokio::test]
async fn instants_outside_years_0000_to_9999_are_422_for_since_and_before_and_the_edges_work() {
    let server = TestServer::start(&[]).await;
    let event = server.publish(&example("timer_tick")).await;
    for outside in [
        "%2B10000-01-01T00:00:00",
        "%2B10000-01-01T00:00:00%2B00:00",
        "-0001-12-31T23:59:59",
        "0000-01-01T00:00:00%2B01:00",
    ] {
        for (method, name) in [("GET", "since"), ("DELETE", "before")] {
            let (status, answer) = server
                .call_with_key(
                    method,
                    &format!("/api/v1/events?{name}={outside}"),
                    None,
                    None,
                )
                .await;
            assert_eq!(status, 422, "{method} {name}={outside}: {answer}");
            assert_eq!(
                answer["detail"][0]["loc"],
                json!(["query", name]),
                "{answer}"
            );
            assert_eq!(answer["detail"][0]["type"], "datetime_out_of_range");
        }
    }
    let (_, all) = server
        .get("/api/v1/events?since=0000-01-01T00:00:00Z")
        .await;
    assert_eq!(
        ids(&all),
        vec![event["id"].as_str().expect("id").to_owned()]
    );
    let (_, none) = server
        .get("/api/v1/events?since=9999-12-31T23:59:59.999999Z")
        .await;
    assert_eq!(none, json!([]));
    assert_eq!(
        server
            .delete("/api/v1/events?before=0000-01-01T00:00:00Z")
            .await,
        (200, json!({"deleted": 0}))
    );
    assert_eq!(
        server
            .delete("/api/v1/events?before=9999-12-31T23:59:59.999999Z")
            .await,
        (200, json!({"deleted": 1}))
    );
}

#[tokio::test]
async fn a_handshake_with_a_malformed_key_is_400_and_one_without_upgrade_is_426() {
    let server = TestServer::start(&[]).await;
    for key in [
        "short",
        "dGhlIHNhbXBsZSBub25jZQ=",
        "dGhlIHNhbXBsZSBub25jZQ!=",
    ] {
        let response = server
            .client
            .get(server.url("/ws/subscribe"))
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key)
            .send()
            .await
            .expect("handshake");
        assert_eq!(response.status(), 400, "{key}");
        let body: Value = response.json().await.expect("json");
        assert!(body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Sec-WebSocket-Key")));
    }
    let plain = server
        .client
        .get(server.url("/ws/publish"))
        .send()
        .await
        .expect("plain GET");
    assert_eq!(plain.status(), 426);
    assert_eq!(plain.headers()["upgrade"], "websocket");
}
