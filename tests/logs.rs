//! The log an operator reads: one INFO line per refused key, rate-limit
//! refusal and WebSocket refusal, with the client and the route and never
//! the key, a flood of them kept to a few lines a second; no colour codes
//! when stderr is not a terminal; a warning when anyone on the network could
//! delete everything.

mod support;

use support::example;
use support::process::Process;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_once_each_with_client_and_route_never_the_key_and_floods_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vars = vec![
        (
            "DATABASE_PATH",
            dir.path().join("e.db").display().to_string(),
        ),
        ("REQUIRE_AUTH", "true".to_owned()),
        ("API_KEY", "k-logs-secret".to_owned()),
        ("RATE_LIMIT_PUBLISH", "2/minute".to_owned()),
        ("LOG_FORMAT", "text".to_owned()),
    ];
    let node = tokio::task::spawn_blocking(move || Process::start_with(&vars))
        .await
        .expect("join");
    let client = reqwest::Client::new();
    let stats = client
        .get(format!("{}/api/v1/stats", node.base))
        .header("X-API-Key", "WRONG-SECRET")
        .send()
        .await
        .expect("request");
    assert_eq!(stats.status(), 401);
    let token = client
        .get(format!("{}/api/v1/stats", node.base))
        .header("Authorization", "Bearer eyJ.SECRET-TOKEN.x")
        .send()
        .await
        .expect("request");
    assert_eq!(token.status(), 401);
    let refused = node
        .wait_for_log("refused: missing or failing key or token", 1)
        .await;
    assert!(
        refused[0].contains("127.0.0.1") && refused[0].contains("GET /api/v1/stats"),
        "{refused:?}"
    );

    for expected in [201, 201, 429] {
        let r = client
            .post(format!("{}/api/v1/events", node.base))
            .header("X-API-Key", "k-logs-secret")
            .json(&example("timer_tick"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), expected);
    }
    let limited = node.wait_for_log("refused: rate limit exceeded", 1).await;
    assert!(limited[0].contains("POST /api/v1/events"), "{limited:?}");
    assert!(
        limited[0].contains("caller=\"api_key\""),
        "names the key: {limited:?}"
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/subscribe", node.addr))
        .await
        .expect("handshake");
    use futures_util::StreamExt;
    while let Some(Ok(message)) = ws.next().await {
        if message.is_close() {
            break;
        }
    }
    // The third such line: the wrong key and the bad token wrote the first two.
    let ws_refused = node
        .wait_for_log("refused: missing or failing key or token", 3)
        .await;
    assert!(
        ws_refused.iter().any(|l| l.contains("/ws/subscribe")),
        "{ws_refused:?}"
    );

    // A flood: 300 refused requests write a handful of lines.
    let flood: Vec<_> = (0..300)
        .map(|_| client.get(format!("{}/api/v1/events", node.base)).send())
        .collect();
    for r in futures_util::future::join_all(flood).await {
        assert_eq!(r.expect("request").status(), 401);
    }
    let lines = node
        .log_lines("refused: missing or failing key or token")
        .len();
    // Three before the flood, then at most five a second for the seconds it spans.
    assert!(lines <= 3 + 3 * 5, "{lines} lines for 300 refusals");

    let all = node.log_lines("");
    assert!(
        !all.iter()
            .any(|l| l.contains("secret") || l.contains("SECRET")),
        "a key in the log"
    );
    assert!(
        !all.iter().any(|l| l.contains('\u{1b}')),
        "colour codes in a log that is not a terminal"
    );
}

#[test]
fn listening_beyond_this_host_without_auth_is_warned_about_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let warned = |vars: &[(&str, &str)]| {
        let mut vars: Vec<(&str, String)> =
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        vars.push((
            "DATABASE_PATH",
            dir.path().join("events.db").to_string_lossy().into_owned(),
        ));
        let mut server = Process::start_with(&vars);
        // The warning comes before the "listening" line, which start_with waited for.
        let lines = server.log_lines("REQUIRE_AUTH=false");
        server.child.kill().expect("kill");
        server.child.wait().expect("wait");
        assert!(lines.iter().all(|l| l.contains("WARN")), "{lines:?}");
        !lines.is_empty()
    };
    assert!(warned(&[("HOST", "0.0.0.0")]), "open to the network");
    assert!(warned(&[
        ("HOST", "0.0.0.0"),
        ("API_KEY", "a-key-that-nobody-is-asked-for")
    ]));
    assert!(!warned(&[("HOST", "127.0.0.1")]), "loopback only");
    assert!(!warned(&[
        ("HOST", "0.0.0.0"),
        ("REQUIRE_AUTH", "true"),
        ("API_KEY", "a-key-that-is-asked-for"),
    ]));
}
