//! REQUIRE_AUTH over real HTTP: protected routes need the key (checked before
//! the body is read or validated), open routes stay open.

mod support;

use serde_json::{json, Value};
use support::{example, TestServer};

const KEY: &str = "k-3f9a1c";

#[tokio::test]
async fn protected_routes_refuse_a_missing_or_wrong_key_and_accept_the_right_one() {
    let server = TestServer::start(&[("REQUIRE_AUTH", "true"), ("API_KEY", KEY)]).await;
    let event = example("answer_submitted");
    let routes: [(&str, &str, Option<&Value>, u16); 5] = [
        ("POST", "/events", Some(&event), 201),
        ("GET", "/events", None, 200),
        (
            "GET",
            "/events/evt_00000000000000000000000000000000",
            None,
            404,
        ),
        ("GET", "/stats", None, 200),
        ("DELETE", "/events", None, 200),
    ];
    for prefix in ["/api/v1", ""] {
        for (method, path, body, ok_status) in routes {
            let path = format!("{prefix}{path}");
            for key in [None, Some("wrong"), Some(""), Some("k-3f9a1")] {
                assert_eq!(
                    server.call_with_key(method, &path, key, body).await,
                    (401, json!({"detail": "Invalid or missing API key"})),
                    "{method} {path} with {key:?}"
                );
            }
            assert_eq!(
                server.call_with_key(method, &path, Some(KEY), body).await.0,
                ok_status,
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn open_routes_need_no_key() {
    let server = TestServer::start(&[("REQUIRE_AUTH", "true"), ("API_KEY", KEY)]).await;
    for path in [
        "/health",
        "/readiness",
        "/event-types",
        "/api/v1/health",
        "/api/v1/readiness",
        "/api/v1/event-types",
    ] {
        assert_eq!(server.get(path).await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn auth_is_checked_before_the_body_is_validated() {
    let server = TestServer::start(&[("REQUIRE_AUTH", "true"), ("API_KEY", KEY)]).await;
    let invalid = json!({"event_type": "nope"});
    assert_eq!(
        server
            .call_with_key("POST", "/api/v1/events", None, Some(&invalid))
            .await
            .0,
        401
    );
    assert_eq!(
        server
            .call_with_key("POST", "/api/v1/events", Some(KEY), Some(&invalid))
            .await
            .0,
        422
    );
}

#[tokio::test]
async fn with_auth_off_everything_including_delete_needs_no_key() {
    let server = TestServer::start(&[("REQUIRE_AUTH", "false"), ("API_KEY", KEY)]).await;
    server.publish(&example("timer_tick")).await;
    assert_eq!(
        server.delete("/api/v1/events").await,
        (200, json!({"deleted": 1}))
    );
}
