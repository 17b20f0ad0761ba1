//! IMS Caliper in (`POST /caliper/v1p2`, `/caliper/v1p1`): envelopes
//! written here from the Caliper 1.1 and 1.2 specifications, one event per
//! mapped (type, action) plus unmapped ones, are stored and delivered live
//! as the mapped events; malformed envelopes get the Sensor API's answers
//! and store nothing; an event sent again is stored once.

mod support;

use serde_json::{json, Value};
use support::cluster::next_json;
use support::{ws_connect, ws_send, TestServer};

const V1P2: &str = "http://purl.imsglobal.org/ctx/caliper/v1p2";
const V1P1: &str = "http://purl.imsglobal.org/ctx/caliper/v1p1";
const KEY: &str = "k-caliper-sensor";
const STUDENT: &str = "https://school.example/users/554433";
const SESSION: &str = "https://school.example/sessions/9f2c";
const QUIZ: &str = "https://school.example/courses/7/assess/1";
const ITEM: &str = "https://school.example/courses/7/assess/1/items/3";

/// A Caliper event of `kind` and `action` by the student, in a session
/// whose client carries an address and a user agent (to be stripped).
fn event(n: u32, kind: &str, action: &str, object: Value) -> Value {
    json!({
        "@context": V1P2,
        "id": format!("urn:uuid:00000000-0000-4000-8000-{n:012}"),
        "type": kind,
        "actor": {"id": STUDENT, "type": "Person"},
        "action": action,
        "object": object,
        "eventTime": format!("2026-11-30T10:{:02}:00.000Z", n % 60),
        "edApp": "https://school.example",
        "session": {"id": SESSION, "type": "Session",
            "client": {"id": "urn:uuid:client-1", "type": "SoftwareApplication",
                "host": "school.example", "ipAddress": "203.0.113.9",
                "userAgent": "Mozilla/5.0 (X11) Chromium"}},
    })
}

fn envelope(version: &str, data: Vec<Value>) -> Value {
    json!({
        "sensor": "https://school.example/sensors/lms",
        "sendTime": "2026-11-30T10:59:00.000Z",
        "dataVersion": version,
        "data": data,
    })
}

fn assessment() -> Value {
    json!({"id": QUIZ, "type": "Assessment", "name": "Unit 3 quiz"})
}

fn item() -> Value {
    json!({"id": ITEM, "type": "AssessmentItem", "isPartOf": {"id": QUIZ, "type": "Assessment"}})
}

/// One event of every mapped (type, action), an unmapped one, a tool use
/// without a mastery metric, and an entity (not stored), with what each
/// becomes: (event_type, payload keys beside `caliper`).
fn every_kind() -> (Vec<Value>, Vec<(&'static str, Value)>) {
    let mut grade = event(
        9,
        "GradeEvent",
        "Graded",
        json!({
        "id": format!("{QUIZ}/users/554433/attempts/1"), "type": "Attempt",
        "assignee": {"id": STUDENT, "type": "Person"},
        "assignable": {"id": QUIZ, "type": "Assessment"}}),
    );
    grade["actor"] =
        json!({"id": "https://school.example/autograder", "type": "SoftwareApplication"});
    grade["generated"] =
        json!({"id": "score-1", "type": "Score", "scoreGiven": 8.0, "maxScore": 10.0});
    let mut mastered = event(
        10,
        "ToolUseEvent",
        "Used",
        json!({"id": "https://school.example", "type": "SoftwareApplication"}),
    );
    mastered["group"] =
        json!({"id": "https://school.example/courses/7/sections/1", "type": "CourseSection"});
    mastered["generated"] = json!({"id": "m-1", "type": "AggregateMeasureCollection", "items": [
        {"id": "m-1a", "type": "AggregateMeasure", "metric": "MinutesOnTask", "metricValue": 40.0},
        {"id": "m-1b", "type": "AggregateMeasure", "metric": "SkillsMastered", "metricValue": 3.0, "maxMetricValue": 4.0}]});
    let mut minutes = event(
        11,
        "ToolUseEvent",
        "Used",
        json!({"id": "https://school.example", "type": "SoftwareApplication"}),
    );
    minutes["generated"] = json!({"id": "m-2", "type": "AggregateMeasureCollection", "items": [
        {"id": "m-2a", "type": "AggregateMeasure", "metric": "MinutesOnTask", "metricValue": 12.0}]});
    let data = vec![
        event(1, "AssessmentEvent", "Started", assessment()),
        event(2, "AssessmentEvent", "Submitted", assessment()),
        event(3, "AssessmentItemEvent", "Started", item()),
        event(4, "AssessmentItemEvent", "Completed", item()),
        event(5, "AssessmentItemEvent", "Skipped", item()),
        event(
            6,
            "SessionEvent",
            "LoggedIn",
            json!({"id": "https://school.example", "type": "SoftwareApplication"}),
        ),
        event(
            7,
            "SessionEvent",
            "LoggedOut",
            json!({"id": "https://school.example", "type": "SoftwareApplication"}),
        ),
        event(
            8,
            "SessionEvent",
            "TimedOut",
            json!({"id": "https://school.example", "type": "SoftwareApplication"}),
        ),
        grade,
        mastered,
        minutes,
        event(
            12,
            "NavigationEvent",
            "NavigatedTo",
            json!({"id": "https://school.example/page", "type": "WebPage"}),
        ),
        // An entity described in the envelope: no action, not an event.
        json!({"@context": V1P2, "id": "https://school.example/users/1", "type": "Person"}),
    ];
    let expected = vec![
        ("quiz_started", json!({"quiz_id": QUIZ})),
        ("quiz_completed", json!({"quiz_id": QUIZ})),
        (
            "question_viewed",
            json!({"question_id": ITEM, "quiz_id": QUIZ}),
        ),
        (
            "answer_submitted",
            json!({"question_id": ITEM, "quiz_id": QUIZ}),
        ),
        (
            "question_skipped",
            json!({"question_id": ITEM, "quiz_id": QUIZ}),
        ),
        ("session_created", json!({})),
        ("session_ended", json!({"reason": "logged_out"})),
        ("session_ended", json!({"reason": "timed_out"})),
        ("mastery_updated", json!({"topic_id": QUIZ, "mastery": 0.8})),
        (
            "mastery_updated",
            json!({"topic_id": "https://school.example/courses/7/sections/1",
            "mastery": 0.75, "metric": "SkillsMastered"}),
        ),
        (
            "caliper_event",
            json!({"caliper_type": "ToolUseEvent", "action": "Used"}),
        ),
        (
            "caliper_event",
            json!({"caliper_type": "NavigationEvent", "action": "NavigatedTo"}),
        ),
    ];
    (data, expected)
}

async fn start() -> TestServer {
    TestServer::start(&[("REQUIRE_AUTH", "true"), ("API_KEY", KEY)]).await
}

async fn send(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut request = server
        .client
        .post(server.url(path))
        .header("X-API-Key", KEY);
    if let Some(ct) = content_type {
        request = request.header("Content-Type", ct);
    }
    let response = request.body(body.to_owned()).send().await.expect("request");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

/// Posts a Caliper 1.2 envelope of `events` as JSON with the key.
async fn send_v1p2(server: &TestServer, events: Vec<Value>) -> (u16, String) {
    let body = envelope(V1P2, events).to_string();
    send(
        server,
        "/api/v1/caliper/v1p2",
        Some("application/json"),
        &body,
    )
    .await
}

async fn stored(server: &TestServer) -> Vec<Value> {
    let (status, events) = server
        .call_with_key("GET", "/api/v1/events?limit=1000", Some(KEY), None)
        .await;
    assert_eq!(status, 200);
    let mut events = events.as_array().expect("a list").clone();
    events.reverse();
    events
}

#[tokio::test]
async fn every_mapped_caliper_event_is_stored_and_delivered_live_as_its_pipeline_event() {
    let server = start().await;
    let mut ws = ws_connect(&server, &format!("/ws/subscribe?api_key={KEY}")).await;
    ws_send(&mut ws, &json!({})).await;
    assert_eq!(next_json(&mut ws).await["status"], "subscribed");

    let (data, expected) = every_kind();
    let body = envelope(V1P2, data.clone()).to_string();
    let (status, text) = send(&server, "/caliper/v1p2", Some("application/json"), &body).await;
    assert_eq!((status, text.as_str()), (200, ""), "200 with an empty body");

    let events = stored(&server).await;
    assert_eq!(events.len(), expected.len(), "{events:#?}");
    for (i, (event, (event_type, fields))) in events.iter().zip(&expected).enumerate() {
        let live = next_json(&mut ws).await;
        assert_eq!(live["id"], event["id"], "delivered live in order: {live}");
        assert_eq!(live["event_type"], *event_type);
        assert_eq!(event["event_type"], *event_type, "{i}: {event}");
        assert_eq!(event["source"], "school.example-sensors-lms");
        assert_eq!(
            event["user_id"], STUDENT,
            "the student, the grader's too: {event}"
        );
        assert_eq!(
            event["occurred_at"],
            format!("2026-11-30T10:{:02}:00.000000Z", i + 1)
        );
        let mut payload = event["payload"].clone();
        let caliper = payload
            .as_object_mut()
            .expect("an object")
            .remove("caliper")
            .expect("the Caliper event kept");
        assert_eq!(payload, *fields, "{i}: {event_type}");
        assert_eq!(caliper["id"], data[i]["id"]);
        let kept = caliper.to_string();
        assert!(
            !kept.contains("ipAddress")
                && !kept.contains("203.0.113.9")
                && !kept.contains("userAgent"),
            "stripped: {kept}"
        );
        assert!(kept.contains("school.example"), "the rest is kept: {kept}");
    }
    // The session is Caliper's session; a grade without one takes the attempt.
    assert_eq!(events[0]["session_id"], SESSION);

    // A sensor that sends the envelope again (its answer was lost) stores nothing twice.
    let (status, _) = send(
        &server,
        "/api/v1/caliper/v1p2",
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stored(&server).await.len(), expected.len());

    // Caliper 1.1 (Canvas) on its own path.
    let mut older = event(40, "AssessmentEvent", "Started", assessment());
    older["@context"] = json!(V1P1);
    let (status, _) = send(
        &server,
        "/caliper/v1p1",
        Some("application/json; charset=utf-8"),
        &envelope(V1P1, vec![older]).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stored(&server).await.len(), expected.len() + 1);
}

#[tokio::test]
async fn a_malformed_envelope_gets_the_sensor_apis_answer_and_stores_nothing() {
    let server = start().await;
    let json_type = Some("application/json");
    let good = event(1, "AssessmentEvent", "Started", assessment());
    let mut no_actor = event(2, "AssessmentItemEvent", "Completed", item());
    no_actor.as_object_mut().expect("object").remove("actor");
    let mut too_long = event(3, "AssessmentEvent", "Started", assessment());
    too_long["actor"]["id"] = json!(format!("https://school.example/{}", "u".repeat(300)));
    let mut empty_action = good.clone();
    empty_action["action"] = json!("");
    let mut odd_session = good.clone();
    odd_session["session"] = json!(17);
    let mut no_sensor = envelope(V1P2, vec![good.clone()]);
    no_sensor.as_object_mut().expect("object").remove("sensor");
    let cases: Vec<(String, Option<&str>, u16, Value)> = vec![
        ("{not json".into(), json_type, 400, json!(["body"])),
        ("[]".into(), json_type, 400, json!(["body"])),
        (no_sensor.to_string(), json_type, 400, json!(["body", "sensor"])),
        (json!({"sensor": "s", "sendTime": "yesterday", "dataVersion": V1P2, "data": []}).to_string(),
            json_type, 400, json!(["body", "sendTime"])),
        (json!({"sensor": "s", "sendTime": "2026-11-30T10:00:00Z", "dataVersion": V1P2, "data": {}}).to_string(),
            json_type, 400, json!(["body", "data"])),
        (envelope(V1P2, vec![good.clone(), json!(7)]).to_string(), json_type, 400, json!(["body", "data", "1"])),
        // All or none: a good event beside a bad one is not stored either.
        (envelope(V1P2, vec![good.clone(), no_actor]).to_string(), json_type, 400,
            json!(["body", "data", "1", "actor"])),
        (envelope(V1P2, vec![good.clone(), too_long]).to_string(), json_type, 400,
            json!(["body", "data", "1", "user_id"])),
        (envelope(V1P2, vec![empty_action]).to_string(), json_type, 400,
            json!(["body", "data", "0", "action"])),
        (envelope(V1P2, vec![odd_session]).to_string(), json_type, 400,
            json!(["body", "data", "0", "session"])),
        (envelope(V1P2, vec![json!({"type": "Person"})]).to_string(), json_type, 400,
            json!(["body", "data", "0", "id"])),
        (envelope("http://purl.imsglobal.org/ctx/caliper/v1p0", vec![good.clone()]).to_string(),
            json_type, 422, Value::Null),
        (envelope(V1P2, vec![good.clone()]).to_string(), Some("text/plain"), 415, Value::Null),
        (envelope(V1P2, vec![good.clone()]).to_string(), None, 415, Value::Null),
    ];
    for (body, content_type, want, loc) in cases {
        let (status, text) = send(&server, "/caliper/v1p2", content_type, &body).await;
        assert_eq!(status, want, "{body}: {text}");
        let answer: Value = serde_json::from_str(&text).expect("a JSON detail");
        if loc.is_null() {
            assert!(answer["detail"].is_string(), "{text}");
        } else {
            assert_eq!(answer["detail"][0]["loc"], loc, "{body}: {text}");
        }
    }
    assert_eq!(stored(&server).await.len(), 0, "nothing of any of them");

    // The document describes the envelope as the endpoint reads it.
    let (_, doc) = server.get("/openapi.json").await;
    for path in ["/api/v1/caliper/{version}", "/caliper/{version}"] {
        assert_eq!(
            doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/CaliperEnvelope",
            "{path}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CaliperEntity"]["not"],
        json!({"required": ["action"]})
    );
    assert_eq!(
        schemas["CaliperEnvelope"]["properties"]["dataVersion"]["enum"],
        json!([V1P1, V1P2])
    );

    let (status, _) = send(
        &server,
        "/caliper/v9",
        json_type,
        &envelope(V1P2, vec![good.clone()]).to_string(),
    )
    .await;
    assert_eq!(status, 404);
    let anonymous = server
        .client
        .post(server.url("/caliper/v1p2"))
        .json(&envelope(V1P2, vec![good]))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401, "a sensor needs the publish role");
}

#[tokio::test]
async fn an_envelope_with_an_event_id_reused_for_other_content_stores_none_of_its_events() {
    let server = start().await;
    let started = event(1, "AssessmentEvent", "Started", assessment());
    let (status, _) = send_v1p2(&server, vec![started.clone()]).await;
    assert_eq!(status, 200);

    // A new event, and the first one's id with other content: 409, and
    // neither is stored (the envelope is committed together or not at all).
    let fresh = event(2, "AssessmentEvent", "Submitted", assessment());
    let mut changed = started.clone();
    changed["action"] = json!("Paused");
    let (status, body) = send_v1p2(&server, vec![fresh.clone(), changed]).await;
    assert_eq!(status, 409, "{body}");
    let events = stored(&server).await;
    assert_eq!(events.len(), 1, "the new event was not stored: {events:?}");
    assert_eq!(events[0]["event_type"], "quiz_started");

    // The same two with the first one unchanged: the new one is stored,
    // the repeat is not stored again.
    let (status, body) = send_v1p2(&server, vec![fresh.clone(), started.clone()]).await;
    assert_eq!(status, 200, "{body}");
    let events = stored(&server).await;
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["quiz_started", "quiz_completed"], "{events:?}");

    // The same event twice in one envelope is stored once.
    let twice = event(3, "AssessmentEvent", "Started", assessment());
    let (status, body) = send_v1p2(&server, vec![twice.clone(), twice]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored(&server).await.len(), 3);
}
