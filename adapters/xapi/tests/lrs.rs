//! The adapter against a real LRS (Ralph): mapped events are kept as
//! statements, each once however often sent; unmapped ones are not sent; a
//! statement the LRS refuses is found in its page, counted and skipped
//! while the rest of the page is kept; a wrong password is `Unavailable`.

use ep_conformance::lrs::{Lrs, PASSWORD, USERNAME};
use ep_export_xapi::{XapiConfig, XapiLrs};
use ep_ports::{Event, EventExport, EventId, EventType, ExportError, Payload, Timestamp};
use serde_json::json;

const HOME: &str = "https://school.example";

fn event(seq: u64, event_type: EventType, payload: serde_json::Value) -> Event {
    Event {
        id: EventId::new(format!("evt_0192a0b0c0d07e00800000000000{seq:04x}")),
        event_type,
        source: "quiz-engine".into(),
        session_id: Some("sess-7".into()),
        user_id: Some(format!("stu-{}", seq % 3)),
        payload: Payload::from_json(payload.to_string()).expect("payload"),
        timestamp: Timestamp::parse_canonical("2026-11-27T11:57:03.664456Z").expect("ts"),
        occurred_at: None,
        seq,
    }
}

fn lrs_client(lrs: &Lrs, password: &str) -> XapiLrs {
    XapiLrs::new(XapiConfig {
        endpoint: lrs.endpoint.clone(),
        username: Some(USERNAME.into()),
        password: Some(password.to_owned().into()),
        version: "1.0.3".into(),
        home_page: HOME.into(),
    })
    .expect("client")
}

#[tokio::test]
async fn statements_are_kept_once_unmapped_skipped_and_a_refused_one_found_in_its_page() {
    let Some(lrs) = Lrs::start().await else {
        return;
    };
    let client = lrs_client(&lrs, PASSWORD);
    let page: Vec<Event> = (1..=6)
        .map(|seq| match seq {
            3 => event(seq, EventType::TIMER_TICK, json!({"remaining_seconds": 9})),
            _ => event(
                seq,
                EventType::ANSWER_SUBMITTED,
                json!({"question_id": format!("q{seq}"), "correct": seq % 2 == 0, "time_spent_ms": 1500}),
            ),
        })
        .collect();
    let first = client.export(&page).await.expect("exported");
    assert_eq!((first.delivered, first.unmapped, first.refused), (5, 1, 0));
    let again = client.export(&page).await.expect("exported again");
    assert_eq!(
        (again.delivered, again.refused),
        (5, 0),
        "a repeat is kept, once"
    );
    let held = lrs.statements().await;
    assert_eq!(held.len(), 5, "{held:#?}");
    let answered = held
        .iter()
        .find(|s| s["object"]["id"] == "https://school.example/questions/q2")
        .expect("q2's statement");
    assert_eq!(
        answered["verb"]["id"],
        "http://adlnet.gov/expapi/verbs/answered"
    );
    assert_eq!(answered["result"]["success"], true);
    assert_eq!(answered["result"]["duration"], "PT1.5S");
    assert_eq!(answered["actor"]["account"]["homePage"], HOME);

    // Event 4 again with other content: the LRS refuses its statement (409);
    // the new events beside it in the page are kept.
    let mut page = vec![
        event(7, EventType::QUIZ_STARTED, json!({"quiz_id": "unit-3"})),
        event(
            4,
            EventType::ANSWER_SUBMITTED,
            json!({"question_id": "q4-changed"}),
        ),
        event(
            8,
            EventType::MASTERY_UPDATED,
            json!({"topic_id": "fractions", "mastery": 0.7}),
        ),
    ];
    page.push(event(
        9,
        EventType::QUIZ_COMPLETED,
        json!({"quiz_id": "unit-3", "score": 80}),
    ));
    let mixed = client.export(&page).await.expect("exported");
    assert_eq!((mixed.delivered, mixed.refused), (3, 1));
    assert_eq!(lrs.statements().await.len(), 8);

    let wrong = lrs_client(&lrs, "not-the-password");
    assert!(matches!(
        wrong.export(&page).await,
        Err(ExportError::Unavailable(reason)) if reason.contains("credentials")
    ));
}

#[tokio::test]
async fn an_lrs_that_is_not_there_is_unavailable() {
    let client = XapiLrs::new(XapiConfig {
        endpoint: format!(
            "http://127.0.0.1:{}/xAPI/",
            ep_conformance::services::free_port()
        ),
        username: None,
        password: None,
        version: "1.0.3".into(),
        home_page: HOME.into(),
    })
    .expect("client");
    let page = vec![event(1, EventType::QUIZ_STARTED, json!({"quiz_id": "q"}))];
    assert!(matches!(
        client.export(&page).await,
        Err(ExportError::Unavailable(_))
    ));
}
