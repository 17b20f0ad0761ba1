//! Payload filters over real sockets: a subscriber asking for wrong answers
//! to two questions gets exactly those, live and on resume, a new filter
//! from `update_filters` takes over, and a filter of the wrong shape is
//! refused with a close frame.

mod support;

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::cluster::{next_json, PATIENCE};
use support::{ws_connect, ws_send, TestServer};
use tokio_tungstenite::tungstenite::Message;

fn answer(question: &str, correct: bool, marker: u32) -> Value {
    json!({"event_type": "answer_submitted", "source": "quiz-engine", "session_id": "s1",
           "user_id": "stu-1", "payload": {"question_id": question, "correct": correct, "n": marker}})
}

/// Publishes a mix; returns the markers of the wrong answers to q1 and q2.
async fn publish_mix(server: &TestServer, from: u32) -> Vec<u64> {
    let mut wanted = Vec::new();
    for (i, (question, correct)) in [
        ("q1", false),
        ("q1", true),
        ("q2", false),
        ("q3", false),
        ("q2", true),
    ]
    .into_iter()
    .enumerate()
    {
        let n = from + i as u32;
        server.publish(&answer(question, correct, n)).await;
        if !correct && question != "q3" {
            wanted.push(u64::from(n));
        }
    }
    wanted
}

#[tokio::test]
async fn a_payload_filter_delivers_only_matching_events_live_on_resume_and_after_an_update() {
    let server = TestServer::start(&[]).await;
    let filter = json!({"event_types": ["answer_submitted"],
                        "payload": {"correct": false, "question_id": ["q1", "q2"]}});
    let mut sub = ws_connect(&server, "/ws/subscribe").await;
    ws_send(&mut sub, &filter).await;
    let ack = next_json(&mut sub).await;
    assert_eq!(
        (ack["status"].as_str(), &ack["filters"]),
        (Some("subscribed"), &filter)
    );

    let wanted = publish_mix(&server, 0).await;
    let mut got = Vec::new();
    for _ in &wanted {
        got.push(
            next_json(&mut sub).await["payload"]["n"]
                .as_u64()
                .expect("n"),
        );
    }
    assert_eq!(got, wanted);

    // Resume from the start: the stored matching events only, then live.
    let mut resumed = ws_connect(&server, "/ws/subscribe").await;
    let mut again = filter.clone();
    again["since_seq"] = json!(0);
    ws_send(&mut resumed, &again).await;
    assert_eq!(next_json(&mut resumed).await["status"], "subscribed");
    let more = publish_mix(&server, 100).await;
    let mut replayed = Vec::new();
    for _ in 0..wanted.len() + more.len() {
        replayed.push(
            next_json(&mut resumed).await["payload"]["n"]
                .as_u64()
                .expect("n"),
        );
    }
    assert_eq!(replayed, [wanted.clone(), more].concat());

    // A new filter takes over from its reply on.
    ws_send(
        &mut sub,
        &json!({"type": "update_filters", "filters": {"payload": {"question_id": "q3"}}}),
    )
    .await;
    let mut next = next_json(&mut sub).await;
    while next.get("status").is_none() {
        next = next_json(&mut sub).await; // what the old filter matched before the reply
    }
    assert_eq!(next["status"], "filters_updated", "{next}");
    publish_mix(&server, 200).await;
    assert_eq!(next_json(&mut sub).await["payload"]["n"], 203, "only q3");
    server.stop().await;
}

#[tokio::test]
async fn a_payload_filter_of_the_wrong_shape_is_refused_with_a_close_frame() {
    let server = TestServer::start(&[]).await;
    for bad in [
        json!({"payload": {"correct": {"nested": true}}}),
        json!({"payload": "correct"}),
        json!({"payload": {"question_id": []}}),
    ] {
        let mut sub = ws_connect(&server, "/ws/subscribe").await;
        ws_send(&mut sub, &bad).await;
        let mut error = None;
        let code = loop {
            match tokio::time::timeout(PATIENCE, sub.next())
                .await
                .expect("in time")
            {
                Some(Ok(Message::Text(t))) => error = Some(t.to_string()),
                Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        };
        assert_eq!(code, 1008, "{bad}");
        assert!(error.is_some_and(|e| e.contains("payload")), "{bad}");
    }
    server.stop().await;
}
