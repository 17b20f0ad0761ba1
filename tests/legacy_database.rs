//! Drop-in for the Python service: started on its `events.db`, the binary
//! copies the file to a backup named in the log, migrates it in place, and
//! serves the old events, queryable and resumable by seq; started on a file
//! of another program, it exits 2 with a one-line reason and leaves the file
//! as it was.

mod support;

use std::process::Command;

use ep_store_sqlite::testing::{sample_rows, write_foreign_db, write_legacy_db};
use serde_json::{json, Value};
use support::cluster::{events, get, seqs, subscribe};
use support::process::{Process, BIN};

#[tokio::test]
async fn the_python_services_database_is_migrated_at_start_up_and_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("events.db");
    write_legacy_db(&db, &sample_rows()).expect("old database");
    let node = Process::start(&db);

    let warned = node.log_lines("migrating it in place");
    assert_eq!(warned.len(), 1, "{:?}", node.log_lines(""));
    let line: Value = serde_json::from_str(&warned[0]).expect("JSON log");
    let backup = line["backup"].as_str().expect("the backup is named");
    assert!(std::path::Path::new(backup).exists(), "{backup}");
    assert!(
        !node.log_lines("left out").is_empty(),
        "the unregistered row is reported"
    );

    let client = reqwest::Client::new();
    let (status, page) = get(&client, &node, "/api/v1/events?session_id=s1&limit=10").await;
    assert_eq!(status, 200, "{page}");
    let old = page.as_array().expect("a list");
    let stamps: Vec<&str> = old
        .iter()
        .map(|e| e["timestamp"].as_str().expect("timestamp"))
        .collect();
    assert_eq!(
        stamps,
        [
            "2026-11-20T09:00:03.000001Z",
            "2026-11-20T09:00:02.000000Z",
            "2026-11-20T09:00:01.500000Z",
            "2026-11-20T09:00:00.120000Z",
        ],
        "newest first, in the canonical form"
    );

    let mut ws = subscribe(&node, &json!({"since_seq": 2})).await;
    let replayed = events(&mut ws, 3).await;
    assert_eq!(seqs(&replayed), [3, 4, 5], "old events resume by seq");
    assert_eq!(replayed[0]["id"], "evt_a1b2c3d40003");
}

#[test]
fn a_database_of_another_program_stops_start_up_with_exit_2_and_stays_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("app.db");
    write_foreign_db(&db).expect("foreign database");
    let before = std::fs::read(&db).expect("read");
    let out = Command::new(BIN)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_PATH", &db)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("event-pipeline: "))
        .collect();
    assert_eq!(reason.len(), 1, "{stderr}");
    assert!(
        reason[0].contains("not an event-pipeline database") && reason[0].contains("invoices"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).expect("read"), before, "untouched");
}
