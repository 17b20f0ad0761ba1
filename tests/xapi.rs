//! The xAPI connector against a real LRS (Ralph): every mapped event
//! reaches the LRS as one statement, exactly once, across a SIGKILL of the
//! node mid-stream (the LRS out of reach, events waiting, the connector
//! retrying) and a restart on the same database (the cursor is saved in
//! the store; the LRS keeps a statement sent again once).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ep_conformance::lrs::{Lrs, PASSWORD, USERNAME};
use ep_conformance::Link;
use serde_json::{json, Value};
use support::process::Process;

const PAGES: usize = 20;
const PER_BATCH: usize = 100;

fn batch(b: usize) -> Value {
    let items: Vec<Value> = (0..PER_BATCH)
        .map(|i| {
            let n = b * PER_BATCH + i;
            if i % 10 == 9 {
                // Not mapped to xAPI: never sent.
                json!({"event_type": "timer_tick", "source": "timer", "session_id": "s1",
                       "payload": {"remaining_seconds": n}})
            } else {
                json!({"event_type": "answer_submitted", "source": "quiz-engine",
                       "session_id": format!("s{}", n % 7), "user_id": format!("stu-{}", n % 13),
                       "payload": {"question_id": format!("q-{n}"), "correct": n % 2 == 0,
                                   "time_spent_ms": 1000 + n}})
            }
        })
        .collect();
    Value::Array(items)
}

async fn wait_for_statements(lrs: &Lrs, at_least: usize) -> Vec<Value> {
    let mut every = tokio::time::interval(Duration::from_millis(200));
    for _ in 0..300 {
        let held = lrs.statements().await;
        if held.len() >= at_least {
            return held;
        }
        every.tick().await;
    }
    panic!("the LRS holds fewer than {at_least} statements after 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mapped_event_reaches_the_lrs_exactly_once_across_a_kill_and_a_restart() {
    let Some(lrs) = Lrs::start().await else {
        return;
    };
    let link = Link::to(lrs.addr).await.expect("link");
    let dir = tempfile::tempdir().expect("tempdir");
    // The same port on restart: the node's name (host and port) is the
    // same, so it takes its lease back at once instead of waiting for the
    // killed one's to expire.
    let port = ep_conformance::services::free_port();
    let vars = vec![
        ("PORT", port.to_string()),
        (
            "DATABASE_PATH",
            dir.path().join("e.db").display().to_string(),
        ),
        ("XAPI_LRS_URL", format!("http://{}/xAPI/", link.addr())),
        ("XAPI_LRS_USERNAME", USERNAME.to_owned()),
        ("XAPI_LRS_PASSWORD", PASSWORD.to_owned()),
        ("XAPI_ACCOUNT_HOMEPAGE", "https://school.example".to_owned()),
    ];
    let start = |vars: Vec<(&'static str, String)>| async move {
        tokio::task::spawn_blocking(move || Process::start_with(&vars))
            .await
            .expect("join")
    };
    let node = start(vars.clone()).await;
    let client = reqwest::Client::new();
    let publish = |b: usize| {
        let (client, base) = (client.clone(), node.base.clone());
        async move {
            let status = client
                .post(format!("{base}/api/v1/events/batch"))
                .json(&batch(b))
                .send()
                .await
                .expect("batch")
                .status();
            assert_eq!(status, 200);
        }
    };
    let mapped = PAGES * PER_BATCH * 9 / 10;
    for b in 0..PAGES / 2 {
        publish(b).await;
    }
    let first_half = wait_for_statements(&lrs, mapped / 2).await.len();
    assert_eq!(first_half, mapped / 2);
    // The LRS goes out of reach; the second half waits in the store while
    // the connector retries; then the node is killed.
    link.cut();
    for b in PAGES / 2..PAGES {
        publish(b).await;
    }
    let tried = link.attempts();
    let mut every = tokio::time::interval(Duration::from_millis(50));
    while link.attempts() <= tried {
        every.tick().await;
    }
    node.signal("KILL");
    drop(node);
    assert_eq!(
        lrs.statements().await.len(),
        mapped / 2,
        "killed mid-stream"
    );
    link.restore();

    let again = start(vars).await;
    let held = wait_for_statements(&lrs, mapped).await;
    let ids: HashSet<&str> = held.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids.len(), held.len(), "no statement twice");
    assert_eq!(held.len(), mapped, "every mapped event, no other");
    let questions: HashSet<String> = held
        .iter()
        .filter_map(|s| s["object"]["id"].as_str())
        .map(str::to_owned)
        .collect();
    let expected: HashSet<String> = (0..PAGES * PER_BATCH)
        .filter(|n| n % 10 != 9)
        .map(|n| format!("https://school.example/questions/q-{n}"))
        .collect();
    assert_eq!(questions, expected);
    assert!(held
        .iter()
        .all(|s| s["actor"]["account"]["homePage"] == "https://school.example"));

    let metrics = client
        .get(format!("{}/api/v1/metrics", again.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("event_pipeline_xapi_delivered_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("event_pipeline_xapi_lag_events"),
        "{metrics}"
    );
}
