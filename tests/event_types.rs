//! Operator-declared event types and payload schemas over real sockets:
//! a declared type is published, stored, delivered and listed; a payload
//! that breaks its schema is refused naming the rule (REST and WebSocket),
//! stored and counted under `SCHEMA_MODE=warn`, unchecked under `off`; a
//! bad `EVENT_TYPES_FILE` stops start-up; a filter naming an unregistered
//! type is kept and its ack names it.

mod support;

use std::process::Command;

use serde_json::{json, Value};
use support::cluster::next_json;
use support::process::BIN;
use support::{example, ws_connect, ws_send, TestServer};

const TYPES: &str = r#"{
  "hint_requested": {
    "description": "Student asked for a hint",
    "schema": {"type": "object", "required": ["question_id"],
               "properties": {"question_id": {"type": "string"}, "level": {"type": "integer"}}}
  },
  "video_watched": {"description": "Student watched a video"}
}"#;

async fn server(mode: &str) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("types.json");
    std::fs::write(&file, TYPES).expect("write");
    let server = TestServer::start(&[
        ("EVENT_TYPES_FILE", file.to_str().expect("utf-8")),
        ("SCHEMA_MODE", mode),
    ])
    .await;
    // The file is read at start-up only.
    drop(dir);
    server
}

fn hint(payload: Value) -> Value {
    json!({"event_type": "hint_requested", "source": "tutor", "session_id": "s1",
           "user_id": "stu-1", "payload": payload})
}

#[tokio::test]
async fn a_declared_type_is_published_stored_delivered_and_listed() {
    let server = server("enforce").await;
    let mut sub = ws_connect(&server, "/ws/subscribe").await;
    ws_send(&mut sub, &json!({"event_types": ["hint_requested"]})).await;
    let ack = next_json(&mut sub).await;
    assert_eq!(ack["status"], "subscribed", "{ack}");
    assert!(
        ack.get("unknown_event_types").is_none(),
        "a declared type is known: {ack}"
    );

    let stored = server
        .publish(&hint(json!({"question_id": "q7", "level": 2})))
        .await;
    assert_eq!(stored["event_type"], "hint_requested");
    let live = next_json(&mut sub).await;
    assert_eq!(live["id"], stored["id"], "{live}");

    let (status, found) = server.get("/api/v1/events?event_type=hint_requested").await;
    assert_eq!(
        (status, found.as_array().map(Vec::len)),
        (200, Some(1)),
        "{found}"
    );
    let (_, stats) = server.get("/api/v1/stats").await;
    assert!(
        stats["by_type"]
            .as_array()
            .expect("by_type")
            .iter()
            .any(|t| t["event_type"] == "hint_requested"),
        "{stats}"
    );
    // A declared type without a schema takes any object.
    server
        .publish(&json!({"event_type": "video_watched", "source": "player", "payload": {"x": [1]}}))
        .await;

    let (status, types) = server.get("/api/v1/event-types").await;
    assert_eq!(status, 200);
    assert_eq!(types["hint_requested"], "Student asked for a hint");
    assert_eq!(types["quiz_started"], "Student started a quiz session");
    assert_eq!(types.as_object().map(|o| o.len()), Some(17));
    let (_, detailed) = server.get("/event-types?schemas=true").await;
    assert_eq!(
        detailed["hint_requested"]["schema"]["required"],
        json!(["question_id"])
    );
    assert_eq!(detailed["video_watched"]["schema"], Value::Null);
    // Listed with its schema, not in the old service's shape.
    assert_eq!(
        detailed["caliper_event"]["schema"]["required"],
        json!(["caliper"])
    );
    assert!(types.get("caliper_event").is_none());
    assert_eq!(
        detailed["answer_submitted"]["schema"]["required"],
        json!(["question_id"]),
        "the shipped schema"
    );

    let (_, document) = server.get("/api/v1/openapi.json").await;
    let schemas = &document["components"]["schemas"];
    let names = schemas["EventType"]["enum"].as_array().expect("enum");
    assert!(
        names.contains(&json!("hint_requested"))
            && names.contains(&json!("caliper_event"))
            && names.len() == 18,
        "{names:?}"
    );
    assert_eq!(
        schemas["Payload_hint_requested"]["required"],
        json!(["question_id"])
    );
    assert!(schemas["EventTypes"]["properties"]["video_watched"].is_object());
    server.stop().await;
}

#[tokio::test]
async fn enforce_refuses_a_payload_naming_each_broken_rule_over_rest_and_websocket() {
    let server = server("enforce").await;
    let (status, body) = server
        .post("/api/v1/events", &hint(json!({"level": "high"})))
        .await;
    assert_eq!(status, 422, "{body}");
    let mut detail = body["detail"].as_array().expect("detail").clone();
    detail.sort_by_key(|d| d["loc"].to_string());
    assert_eq!(
        detail,
        vec![
            json!({"loc": ["body", "payload", "level"], "msg": "must be an integer", "type": "schema"}),
            json!({"loc": ["body", "payload", "question_id"], "msg": "is required", "type": "schema"}),
        ]
    );
    // A built-in type's shipped schema, as the contract's example says.
    let mut answer = example("answer_submitted");
    answer["payload"]["correct"] = json!("yes");
    let (status, body) = server.post("/api/v1/events", &answer).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["detail"],
        json!([{"loc": ["body", "payload", "correct"], "msg": "must be a boolean", "type": "schema"}])
    );

    let mut publisher = ws_connect(&server, "/ws/publish").await;
    ws_send(&mut publisher, &hint(json!({}))).await;
    let reply = next_json(&mut publisher).await;
    assert_eq!(reply["status"], "error", "{reply}");
    assert!(reply.to_string().contains("question_id"), "{reply}");
    let (_, stored) = server.get("/api/v1/events").await;
    assert_eq!(stored, json!([]), "nothing refused is stored");
    server.stop().await;
}

#[tokio::test]
async fn warn_stores_and_counts_and_off_does_not_check() {
    let server = server("warn").await;
    let stored = server.publish(&hint(json!({"level": "high"}))).await;
    assert_eq!(stored["payload"], json!({"level": "high"}));
    server.publish(&hint(json!({}))).await;
    server.publish(&hint(json!({"question_id": "q1"}))).await;
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("event_pipeline_schema_warnings_total{event_type=\"hint_requested\"} 2"),
        "{metrics}"
    );
    server.stop().await;

    let server = self::server("off").await;
    server.publish(&hint(json!({"level": "high"}))).await;
    let mut answer = example("answer_submitted");
    answer["payload"] = json!({"correct": "yes"});
    server.publish(&answer).await;
    server.stop().await;
}

#[tokio::test]
async fn a_filter_naming_unregistered_types_is_kept_and_its_ack_names_them() {
    let server = server("enforce").await;
    let mut sub = ws_connect(&server, "/ws/subscribe").await;
    ws_send(
        &mut sub,
        &json!({"event_types": ["quiz_start", "quiz_started", "nope"]}),
    )
    .await;
    let ack = next_json(&mut sub).await;
    assert_eq!(ack["status"], "subscribed");
    assert_eq!(
        ack["unknown_event_types"],
        json!(["quiz_start", "nope"]),
        "{ack}"
    );
    ws_send(
        &mut sub,
        &json!({"type": "update_filters", "filters": {"event_types": ["hint_requestd"]}}),
    )
    .await;
    let updated = next_json(&mut sub).await;
    assert_eq!(updated["status"], "filters_updated", "{updated}");
    assert_eq!(updated["unknown_event_types"], json!(["hint_requestd"]));
    ws_send(
        &mut sub,
        &json!({"type": "update_filters", "filters": {"event_types": ["hint_requested"]}}),
    )
    .await;
    let updated = next_json(&mut sub).await;
    assert!(updated.get("unknown_event_types").is_none(), "{updated}");
    server.stop().await;
}

#[test]
fn a_bad_event_types_file_or_schema_mode_stops_start_up_with_exit_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("types.json");
    std::fs::write(&file, r#"{"hint": {"schema": {"type": "nope"}}}"#).expect("write");
    for (var, value, named) in [
        (
            "EVENT_TYPES_FILE",
            file.to_str().expect("utf-8"),
            "types.json",
        ),
        (
            "EVENT_TYPES_FILE",
            "/nonexistent/types.json",
            "/nonexistent/types.json",
        ),
        ("SCHEMA_MODE", "strict", "SCHEMA_MODE"),
    ] {
        let out = Command::new(BIN)
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("DATABASE_PATH", dir.path().join("events.db"))
            .env(var, value)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(named), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
