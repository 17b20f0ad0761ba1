//! Erasure of one student's events (`DELETE /api/v1/users/{user_id}/events`):
//! every event of that student goes, of every type, and nobody else's; a
//! repeat answers 0; the id is percent-decoded; only an admin may; and an
//! audit line says who erased whose events and how many, never a key or a
//! payload.

mod support;

use serde_json::{json, Value};
use support::process::Process;

const KEY: &str = "k-erasure-publisher-secret";
const ADMIN: &str = "k-erasure-admin-secret";

fn event(user: Option<&str>, event_type: &str) -> Value {
    let mut e = support::example(event_type);
    e["payload"]["note"] = json!("PAYLOAD-MARK");
    match user {
        Some(u) => e["user_id"] = json!(u),
        None => drop(e.as_object_mut().expect("an object").remove("user_id")),
    }
    e
}

async fn call(
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method, url).header("X-API-Key", key);
    if let Some(b) = body {
        request = request.json(b);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn users_events(node: &Process, user: &str) -> usize {
    let url = format!(
        "{}/api/v1/events?user_id={}&limit=1000",
        node.base,
        percent(user)
    );
    let (status, body) = call(reqwest::Method::GET, url, ADMIN, None).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a list").len()
}

/// Percent-encodes every byte that is not unreserved (RFC 3986).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_students_events_are_erased_of_every_type_and_only_theirs_with_an_audit_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = vec![
        (
            "DATABASE_PATH",
            dir.path().join("e.db").display().to_string(),
        ),
        ("REQUIRE_AUTH", "true".to_owned()),
        ("API_KEY", KEY.to_owned()),
        ("ADMIN_API_KEY", ADMIN.to_owned()),
        ("LOG_FORMAT", "text".to_owned()),
    ];
    let node = tokio::task::spawn_blocking(move || Process::start_with(&vars))
        .await
        .expect("join");
    let odd = "élève 2/b?c#d";
    let published = [
        (Some("u1"), "quiz_started"),
        (Some("u1"), "answer_submitted"),
        (Some("u1"), "mastery_updated"),
        (Some(odd), "answer_submitted"),
        (Some(odd), "timer_tick"),
        (Some("u10"), "answer_submitted"),
        (None, "timer_tick"),
    ];
    for (user, event_type) in published {
        let (status, body) = call(
            reqwest::Method::POST,
            format!("{}/api/v1/events", node.base),
            KEY,
            Some(&event(user, event_type)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let erase = |user: &str| format!("{}/api/v1/users/{}/events", node.base, percent(user));

    // A publisher's key may not erase.
    let (status, _) = call(reqwest::Method::DELETE, erase("u1"), KEY, None).await;
    assert_eq!(status, 403);
    assert_eq!(users_events(&node, "u1").await, 3);

    let (status, body) = call(reqwest::Method::DELETE, erase("u1"), ADMIN, None).await;
    assert_eq!((status, body), (200, json!({"deleted": 3})));
    assert_eq!(users_events(&node, "u1").await, 0);
    assert_eq!(
        users_events(&node, "u10").await,
        1,
        "a prefix is not the student"
    );
    assert_eq!(users_events(&node, odd).await, 2);
    let (status, body) = call(reqwest::Method::DELETE, erase("u1"), ADMIN, None).await;
    assert_eq!((status, body), (200, json!({"deleted": 0})), "idempotent");

    // Served at the root too; the id is percent-decoded.
    let (status, body) = call(
        reqwest::Method::DELETE,
        format!("{}/users/{}/events", node.base, percent(odd)),
        ADMIN,
        None,
    )
    .await;
    assert_eq!((status, body), (200, json!({"deleted": 2})));
    assert_eq!(users_events(&node, odd).await, 0);

    let (status, body) = call(
        reqwest::Method::DELETE,
        format!("{}/api/v1/users/%FF/events", node.base),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["path", "user_id"]));
    let (status, _) = call(
        reqwest::Method::DELETE,
        erase(&"x".repeat(201)),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 422);

    let (status, stats) = call(
        reqwest::Method::GET,
        format!("{}/api/v1/stats", node.base),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stats["total_events"], json!(2), "stats follow: {stats}");

    let audit = node.wait_for_log("a student's events were erased", 3).await;
    assert!(
        audit[0].contains("audit")
            && audit[0].contains("user_id=u1")
            && audit[0].contains("deleted=3")
            && audit[0].contains("caller=api_key"),
        "{audit:?}"
    );
    for line in node.log_lines("") {
        assert!(
            !line.contains(ADMIN) && !line.contains(KEY) && !line.contains("PAYLOAD-MARK"),
            "a key or a payload in the log: {line}"
        );
    }
}
