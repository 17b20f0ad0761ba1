//! `POST /api/v1/events/batch` over real sockets: one result per item in
//! order, the valid ones stored (and delivered) and the invalid ones
//! refused with their reasons; the limits on the whole batch; each item
//! taken from the caller's publish allowance.

mod support;

use serde_json::{json, Value};
use support::{example, TestServer};

fn tick(n: u64) -> Value {
    json!({"event_type": "timer_tick", "source": "timer-service", "session_id": "s-batch",
           "payload": {"remaining_seconds": 1800 - n, "n": n}})
}

#[tokio::test]
async fn a_mixed_batch_answers_each_item_in_order_and_stores_only_the_valid_ones() {
    let server = TestServer::start(&[]).await;
    let mut wrong_answer = example("answer_submitted");
    wrong_answer["payload"]["correct"] = json!("yes");
    let batch = json!([
        tick(1),
        {"event_type": "quiz_begun", "source": "q"},
        tick(2),
        "not an event",
        wrong_answer,
        {"event_type": "timer_tick"},
        tick(3),
    ]);
    let (status, results) = server.post("/api/v1/events/batch", &batch).await;
    assert_eq!(status, 200, "{results}");
    let results = results.as_array().expect("a list").clone();
    assert_eq!(results.len(), 7);
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().expect("status"))
        .collect();
    assert_eq!(
        statuses,
        ["ok", "error", "ok", "error", "error", "error", "ok"]
    );
    assert_eq!(
        results[1]["detail"][0]["loc"],
        json!(["body", "event_type"])
    );
    assert_eq!(
        results[4]["detail"][0]["loc"],
        json!(["body", "payload", "correct"])
    );
    assert_eq!(results[5]["detail"][0]["loc"], json!(["body", "source"]));
    let seqs: Vec<u64> = [0, 2, 6]
        .iter()
        .map(|&i| results[i]["event"]["seq"].as_u64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one transaction, in order: {seqs:?}"
    );
    assert_eq!(results[6]["event"]["payload"]["n"], 3);

    let (_, stored) = server.get("/api/v1/events?session_id=s-batch").await;
    let ns: Vec<u64> = stored
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["payload"]["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(ns, [3, 2, 1], "newest first, only the valid ones");
    let (_, one) = server
        .get(&format!(
            "/api/v1/events/{}",
            results[0]["event"]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(one, results[0]["event"]);
    server.stop().await;
}

#[tokio::test]
async fn the_whole_batch_is_refused_when_it_is_not_a_list_or_too_long() {
    let server = TestServer::start(&[("MAX_BATCH_EVENTS", "3")]).await;
    for body in [json!({"event_type": "timer_tick"}), json!("x")] {
        let (status, answer) = server.post("/api/v1/events/batch", &body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["detail"][0]["loc"], json!(["body"]));
    }
    let (status, answer) = server
        .post(
            "/api/v1/events/batch",
            &json!([tick(1), tick(2), tick(3), tick(4)]),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["detail"][0]["msg"]
        .as_str()
        .expect("msg")
        .contains("MAX_BATCH_EVENTS"));
    let (status, answer) = server.post("/api/v1/events/batch", &json!([])).await;
    assert_eq!((status, answer), (200, json!([])));
    let (_, stored) = server.get("/api/v1/events").await;
    assert_eq!(stored, json!([]), "nothing of a refused batch is stored");
    let (status, _) = server.post("/events/batch", &json!([tick(9)])).await;
    assert_eq!(status, 200, "served at the root alias too");
    server.stop().await;
}

#[tokio::test]
async fn each_item_takes_one_from_the_publish_allowance() {
    let server = TestServer::start(&[("RATE_LIMIT_PUBLISH", "3/minute")]).await;
    let (status, results) = server
        .post(
            "/api/v1/events/batch",
            &json!([tick(1), tick(2), tick(3), tick(4), tick(5)]),
        )
        .await;
    assert_eq!(status, 200);
    let statuses: Vec<&str> = results
        .as_array()
        .expect("list")
        .iter()
        .map(|r| r["status"].as_str().expect("s"))
        .collect();
    assert_eq!(statuses, ["ok", "ok", "ok", "error", "error"], "{results}");
    assert_eq!(results[3]["detail"][0]["type"], "rate_limited");
    assert!(results[3]["retry_after"].as_u64().is_some_and(|s| s >= 1));
    let (status, _) = server.post("/api/v1/events", &tick(6)).await;
    assert_eq!(status, 429, "the same allowance as single publishes");
    server.stop().await;
}
