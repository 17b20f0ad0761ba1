//! Two server processes sharing one PostgreSQL and one bus, once with NATS
//! and once with Redis: what students publish on one node reaches every
//! subscriber on every node, in seq order, nothing missing, nothing twice,
//! whatever happens to the bus connection or to the node that committed it;
//! and a key and a token get the same answers from either node.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use support::cluster::{
    events, get, next_json, on_both_buses, publish, seqs, subscribe, Bus, Cluster, PATIENCE,
};
use support::example;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

fn event(n: usize, session: &str) -> Value {
    let mut e = example("answer_submitted");
    e["session_id"] = json!(session);
    e["payload"] = json!({ "question_id": "q1", "n": n });
    e
}

async fn published_on_a_reaches_a_subscriber_on_b_in_seq_order(bus: Bus) {
    let Some(c) = Cluster::start(bus).await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut on_b = subscribe(&c.b, &json!({})).await;
    let mut sent = Vec::new();
    for n in 0..50 {
        sent.push(publish(&client, &c.a, &event(n, "s1")).await["seq"].clone());
    }
    let got = events(&mut on_b, 50).await;
    assert_eq!(
        got.iter().map(|e| e["seq"].clone()).collect::<Vec<_>>(),
        sent
    );
    assert!(seqs(&got).windows(2).all(|w| w[0] < w[1]));
}
on_both_buses!(published_on_a_reaches_a_subscriber_on_b_in_seq_order);

async fn publishers_on_both_nodes_and_subscribers_on_both_see_the_store_s_sequence(bus: Bus) {
    let Some(c) = Cluster::start(bus).await else {
        return;
    };
    let mut on_a = subscribe(&c.a, &json!({})).await;
    let mut on_b = subscribe(&c.b, &json!({})).await;
    const EACH: usize = 150;
    // REST publishers on A, a pipelined WebSocket publisher on B, at once.
    let rest = {
        let base = c.a.base.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let sends = (0..EACH).map(|n| {
                let (client, base) = (client.clone(), base.clone());
                async move {
                    let r = client
                        .post(format!("{base}/api/v1/events"))
                        .json(&event(n, "from-a"))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(r.status(), 201);
                }
            });
            futures_util::future::join_all(sends).await;
        })
    };
    let (mut publisher, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/publish", c.b.addr))
            .await
            .expect("handshake");
    for n in 0..EACH {
        publisher
            .feed(Message::text(event(n, "from-b").to_string()))
            .await
            .expect("feed");
    }
    publisher.flush().await.expect("flush");
    for _ in 0..EACH {
        assert_eq!(next_json(&mut publisher).await["status"], "ok");
    }
    rest.await.expect("REST publishers");
    let seen_on_a = seqs(&events(&mut on_a, 2 * EACH).await);
    let seen_on_b = seqs(&events(&mut on_b, 2 * EACH).await);
    let stored: Vec<u64> = c.stored().await.iter().map(|e| e.seq).collect();
    assert_eq!(
        stored,
        (1..=2 * EACH as u64).collect::<Vec<_>>(),
        "dense, in commit order"
    );
    assert_eq!(
        seen_on_a, stored,
        "node A's subscriber saw the store's sequence"
    );
    assert_eq!(
        seen_on_b, stored,
        "node B's subscriber saw the store's sequence"
    );
}
on_both_buses!(publishers_on_both_nodes_and_subscribers_on_both_see_the_store_s_sequence);

/// Publishes on `node` until told to stop; the seqs acknowledged.
fn keep_publishing(base: String, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut acknowledged = Vec::new();
        let mut n = 0;
        while !*stop.borrow() {
            let response = client
                .post(format!("{base}/api/v1/events"))
                .json(&event(n, "stream"))
                .send()
                .await;
            match response {
                Ok(r) if r.status() == 201 => {
                    let stored: Value = r.json().await.expect("JSON");
                    acknowledged.push(stored["seq"].as_u64().expect("seq"));
                }
                _ => break, // the node is gone
            }
            n += 1;
        }
        acknowledged
    })
}

async fn a_subscriber_resumes_on_the_other_node_without_gap_or_duplicate(bus: Bus) {
    let Some(c) = Cluster::start(bus).await else {
        return;
    };
    let (stop, stopped) = watch::channel(false);
    let publisher = keep_publishing(c.a.base.clone(), stopped);
    let mut on_a = subscribe(&c.a, &json!({"session_id": "stream"})).await;
    let first = seqs(&events(&mut on_a, 30).await);
    drop(on_a);
    let resume_after = *first.last().expect("some");
    let mut on_b = subscribe(
        &c.b,
        &json!({"session_id": "stream", "since_seq": resume_after}),
    )
    .await;
    let more = seqs(&events(&mut on_b, 30).await);
    stop.send_replace(true);
    let acknowledged = publisher.await.expect("publisher");
    let last = *acknowledged.last().expect("published");
    let mut rest = Vec::new();
    while more.last().copied().max(rest.last().copied()).unwrap_or(0) < last {
        rest.push(seqs(&[next_json(&mut on_b).await])[0]);
    }
    let all: Vec<u64> = first.into_iter().chain(more).chain(rest).collect();
    let from = all[0];
    assert_eq!(
        all,
        (from..=last).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
}
on_both_buses!(a_subscriber_resumes_on_the_other_node_without_gap_or_duplicate);

/// Asks B's readiness until `ready` is `want`.
async fn readiness_of_b_becomes(c: &Cluster, want: bool) -> Value {
    let client = reqwest::Client::new();
    let mut every = tokio::time::interval(Duration::from_millis(50));
    tokio::time::timeout(PATIENCE, async {
        loop {
            every.tick().await;
            let (_, body) = get(&client, &c.b, "/readiness").await;
            if body["ready"] == want {
                return body;
            }
        }
    })
    .await
    .expect("B's readiness changes in time")
}

async fn b_s_subscribers_miss_nothing_while_its_bus_connection_is_cut(bus: Bus) {
    let Some(c) = Cluster::start(bus).await else {
        return;
    };
    let mut on_b = subscribe(&c.b, &json!({})).await;
    let (stop, stopped) = watch::channel(false);
    let publisher = keep_publishing(c.a.base.clone(), stopped);
    let before = seqs(&events(&mut on_b, 20).await);
    c.b_bus.cut();
    let down = readiness_of_b_becomes(&c, false).await;
    assert!(
        down["broadcaster"]
            .as_str()
            .is_some_and(|s| s != "connected"),
        "readiness names the bus: {down}"
    );
    assert_eq!(down["database"], "connected");
    // REST keeps working on B meanwhile.
    let client = reqwest::Client::new();
    publish(&client, &c.b, &event(0, "stream")).await;
    let during = seqs(&events(&mut on_b, 20).await);
    c.b_bus.restore();
    readiness_of_b_becomes(&c, true).await;
    let after = seqs(&events(&mut on_b, 20).await);
    stop.send_replace(true);
    publisher.await.expect("publisher");
    let last = c.stored().await.last().expect("stored").seq;
    let mut all: Vec<u64> = before.into_iter().chain(during).chain(after).collect();
    while *all.last().expect("some") < last {
        all.push(seqs(&[next_json(&mut on_b).await])[0]);
    }
    assert_eq!(
        all,
        (1..=last).collect::<Vec<_>>(),
        "every event once, in seq order"
    );
}
on_both_buses!(b_s_subscribers_miss_nothing_while_its_bus_connection_is_cut);

async fn everything_a_node_acknowledged_before_sigkill_is_stored_and_delivered_on_the_other(
    bus: Bus,
) {
    let Some(c) = Cluster::start(bus).await else {
        return;
    };
    let mut on_b = subscribe(&c.b, &json!({})).await;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let (progress, mut progressed) = watch::channel(0usize);
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let (base, acknowledged, progress) = (
                c.a.base.clone(),
                Arc::clone(&acknowledged),
                progress.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0.. {
                    let sent = client
                        .post(format!("{base}/api/v1/events"))
                        .json(&event(p * 1_000_000 + n, "killed"))
                        .send()
                        .await;
                    let Ok(r) = sent else { return };
                    if r.status() != 201 {
                        return;
                    }
                    let Ok(stored) = r.json::<Value>().await else {
                        return;
                    };
                    acknowledged
                        .lock()
                        .expect("lock")
                        .push(stored["seq"].as_u64().expect("seq"));
                    progress.send_modify(|n| *n += 1);
                }
            })
        })
        .collect();
    tokio::time::timeout(PATIENCE, progressed.wait_for(|n| *n >= 200))
        .await
        .expect("publishing goes on")
        .expect("progress");
    c.a.signal("KILL");
    for p in publishers {
        p.await.expect("publisher ends when A is gone");
    }
    let acknowledged: HashSet<u64> = acknowledged.lock().expect("lock").iter().copied().collect();
    let stored = c.stored().await;
    let stored_seqs: HashSet<u64> = stored.iter().map(|e| e.seq).collect();
    assert!(
        acknowledged.is_subset(&stored_seqs),
        "an acknowledged event was lost"
    );
    // B delivers everything the store holds (A may have committed events it
    // never acknowledged nor broadcast): the last within a second or so.
    let last = stored.last().expect("stored").seq;
    let mut delivered = Vec::new();
    while delivered.last().copied().unwrap_or(0) < last {
        delivered.push(seqs(&[next_json(&mut on_b).await])[0]);
    }
    assert_eq!(delivered, (1..=last).collect::<Vec<_>>());
}
on_both_buses!(everything_a_node_acknowledged_before_sigkill_is_stored_and_delivered_on_the_other);

async fn queries_stats_and_delete_agree_whichever_node_answers(bus: Bus) {
    let Some(c) = Cluster::start(bus).await else {
        return;
    };
    let client = reqwest::Client::new();
    let on_a = publish(&client, &c.a, &event(1, "q")).await;
    publish(&client, &c.b, &event(2, "q")).await;
    let mut tick = example("timer_tick");
    tick["session_id"] = json!("q");
    publish(&client, &c.a, &tick).await;
    for path in [
        "/api/v1/events?session_id=q",
        "/api/v1/events?event_type=timer_tick",
        &format!("/api/v1/events/{}", on_a["id"].as_str().expect("id")),
    ] {
        let (sa, from_a) = get(&client, &c.a, path).await;
        let (sb, from_b) = get(&client, &c.b, path).await;
        assert_eq!((sa, &from_a), (sb, &from_b), "{path}");
        assert_eq!(sa, 200, "{path}: {from_a}");
    }
    let (_, stats_a) = get(&client, &c.a, "/api/v1/stats").await;
    let (_, stats_b) = get(&client, &c.b, "/api/v1/stats").await;
    assert_eq!(stats_a["total_events"], 3);
    assert_eq!(stats_a["by_type"], stats_b["by_type"]);
    assert_eq!(stats_a["events_last_hour"], stats_b["events_last_hour"]);
    let deleted: Value = client
        .delete(format!("{}/api/v1/events", c.b.base))
        .send()
        .await
        .expect("delete")
        .json()
        .await
        .expect("JSON");
    assert_eq!(deleted, json!({"deleted": 3}));
    assert_eq!(get(&client, &c.a, "/api/v1/events").await.1, json!([]));
    assert_eq!(
        get(&client, &c.a, "/api/v1/stats").await.1["total_events"],
        0
    );
    // seq is never reused, whichever node commits next.
    let next = publish(&client, &c.a, &event(3, "q")).await;
    assert_eq!(next["seq"], 4);
}
on_both_buses!(queries_stats_and_delete_agree_whichever_node_answers);

const SECRET: &str = "a-test-secret-of-at-least-32-bytes-0123";
const QUIZ_ENGINE: &str = "qe-secret-key-1";

/// A token (HS256, [`SECRET`]) reading sessions s1 and s2 for an hour.
fn teacher_token() -> String {
    let claims = json!({
        "sub": "teacher-7", "exp": chrono::Utc::now().timestamp() + 3600,
        "roles": ["read"], "session_ids": ["s1", "s2"],
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

/// A GET on `node` with `token`: status and JSON body.
async fn get_as(node: &support::process::Process, path: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", node.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn both_nodes_give_a_key_and_a_token_the_same_answers(bus: Bus) {
    let keys = tempfile::tempdir().expect("tempdir");
    let path = keys.path().join("keys.toml");
    std::fs::write(
        &path,
        format!(
            "[[keys]]\nname = \"quiz-engine\"\nsha256 = \"{}\"\nroles = [\"publish\"]\nsources = [\"quiz-engine\"]\n",
            ep_auth_apikey::key_sha256(QUIZ_ENGINE)
        ),
    )
    .expect("write keys");
    let vars = [
        ("REQUIRE_AUTH", "true".to_owned()),
        ("API_KEYS_FILE", path.to_string_lossy().into_owned()),
        ("JWT_HS256_SECRET", SECRET.to_owned()),
    ];
    let Some(c) = Cluster::start_with(bus, &vars).await else {
        return;
    };
    let token = teacher_token();
    // The teacher's dashboard on B asks for everything: it gets its two sessions.
    let (mut on_b, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/subscribe?token={token}", c.b.addr))
            .await
            .expect("handshake");
    on_b.send(Message::text("{}")).await.expect("filter");
    assert_eq!(next_json(&mut on_b).await["status"], "subscribed");

    let client = reqwest::Client::new();
    let publish_on = |node: &support::process::Process, session: &str, source: &str| {
        let mut e = example("answer_submitted");
        e["session_id"] = json!(session);
        e["source"] = json!(source);
        client
            .post(format!("{}/api/v1/events", node.base))
            .header("X-API-Key", QUIZ_ENGINE)
            .json(&e)
            .send()
    };
    let mut ids = Vec::new();
    for (node, session) in [(&c.a, "s1"), (&c.b, "s3"), (&c.a, "s2"), (&c.b, "s1")] {
        let r = publish_on(node, session, "quiz-engine")
            .await
            .expect("send");
        assert_eq!(r.status(), 201);
        let stored: Value = r.json().await.expect("JSON");
        ids.push((session, stored["id"].as_str().expect("id").to_owned()));
    }
    // The key's source restriction holds on both nodes.
    for node in [&c.a, &c.b] {
        let r = publish_on(node, "s1", "timer").await.expect("send");
        assert_eq!(r.status(), 403, "on {}", node.base);
    }
    // Live: s1, s2, s1 in order, the s3 event never.
    let got = events(&mut on_b, 3).await;
    let sessions: Vec<&str> = got
        .iter()
        .map(|e| e["session_id"].as_str().expect("session"))
        .collect();
    assert_eq!(sessions, ["s1", "s2", "s1"]);

    // Queries, reads and refusals agree whichever node answers.
    let (a, b) = (
        get_as(&c.a, "/api/v1/events", &token).await,
        get_as(&c.b, "/api/v1/events", &token).await,
    );
    assert_eq!(a, b);
    assert_eq!(a.0, 200);
    assert_eq!(a.1.as_array().expect("list").len(), 3);
    for node in [&c.a, &c.b] {
        let outside = get_as(node, "/api/v1/events?session_id=s3", &token).await;
        assert_eq!(outside.0, 403, "{outside:?}");
        for (session, id) in &ids {
            let (status, _) = get_as(node, &format!("/api/v1/events/{id}"), &token).await;
            assert_eq!(status, if *session == "s3" { 404 } else { 200 });
        }
        let (status, _) = get_as(node, "/api/v1/stats", &token).await;
        assert_eq!(status, 403);
        let (status, _) = get(&client, node, "/api/v1/events").await;
        assert_eq!(status, 401);
    }
}
on_both_buses!(both_nodes_give_a_key_and_a_token_the_same_answers);

async fn the_same_idempotent_publish_on_both_nodes_at_once_is_stored_once(bus: Bus) {
    let Some(c) = Cluster::start(bus).await else {
        return;
    };
    let client = reqwest::Client::new();
    for n in 0..20 {
        let key = format!("both-{n}");
        let body = event(n, "s-both");
        let send = |node: &support::process::Process| {
            client
                .post(format!("{}/api/v1/events", node.base))
                .header("Idempotency-Key", key.as_str())
                .json(&body)
                .send()
        };
        let (on_a, on_b) = tokio::join!(send(&c.a), send(&c.b));
        let (on_a, on_b) = (on_a.expect("a answers"), on_b.expect("b answers"));
        let mut statuses = [on_a.status().as_u16(), on_b.status().as_u16()];
        statuses.sort_unstable();
        let a: Value = on_a.json().await.expect("JSON");
        let b: Value = on_b.json().await.expect("JSON");
        assert_eq!(statuses, [200, 201], "{a} {b}");
        assert_eq!(a["id"], b["id"]);
    }
    let stored = c.stored().await;
    let mine = stored
        .iter()
        .filter(|e| e.session_id.as_deref() == Some("s-both"))
        .count();
    assert_eq!(mine, 20, "each key once");
}
on_both_buses!(the_same_idempotent_publish_on_both_nodes_at_once_is_stored_once);

/// Retention runs on one node at a time (the lease in the shared store)
/// and deletes what either node stored; an erasure asked of one node takes
/// the student's events that the other stored; seq is never reused.
async fn retention_runs_on_one_node_and_erasure_reaches_what_either_stored(bus: Bus) {
    let extra = [
        ("RETENTION", "timer_tick=1s".to_owned()),
        ("RETENTION_INTERVAL_SECONDS", "1".to_owned()),
    ];
    let Some(c) = Cluster::start_with(bus, &extra).await else {
        return;
    };
    let client = reqwest::Client::new();
    let mut student = example("answer_submitted");
    student["user_id"] = json!("erase-me");
    let mut highest = 0;
    for node in [&c.a, &c.b] {
        for _ in 0..3 {
            publish(&client, node, &example("timer_tick")).await;
        }
        let kept = publish(&client, node, &student).await;
        highest = highest.max(kept["seq"].as_u64().expect("seq"));
    }
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let ticks = c
            .stored()
            .await
            .iter()
            .filter(|e| e.event_type.as_str() == "timer_tick")
            .count();
        if ticks == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ticks} ticks left after {PATIENCE:?}"
        );
        every.tick().await;
    }
    let on_a = c.a.log_lines("retention deleted events").len();
    let on_b = c.b.log_lines("retention deleted events").len();
    assert!(
        (on_a == 0) != (on_b == 0),
        "one node deletes: A logged {on_a} deletions, B {on_b}"
    );

    let (status, body) = {
        let r = client
            .delete(format!("{}/api/v1/users/erase-me/events", c.b.base))
            .send()
            .await
            .expect("erase");
        (r.status().as_u16(), r.json::<Value>().await.expect("json"))
    };
    assert_eq!((status, body), (200, json!({"deleted": 2})));
    let (_, left) = get(&client, &c.a, "/api/v1/events?user_id=erase-me").await;
    assert_eq!(left, json!([]));
    let next = publish(&client, &c.a, &student).await;
    assert!(
        next["seq"].as_u64().expect("seq") > highest,
        "seq is never reused: {next}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_on_one_node_and_erasure_reaches_what_either_stored_nats() {
    retention_runs_on_one_node_and_erasure_reaches_what_either_stored(Bus::Nats).await;
}
