//! What only the SQLite store promises: file permissions, the versioned
//! schema, WAL, durability across reopen, and noticing a vanished file.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

use ep_conformance::{at, new_event};
use ep_ports::{EventQuery, EventStore, EventType, NewEvent, Payload};
use ep_store_sqlite::{Durability, OpenError, SqliteStore};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_missing_folder_is_created_0700_and_the_file_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a/b/events.db");
    SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("open");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("a/b")), 0o700);
    assert_eq!(mode(&dir.path().join("a")), 0o700);
}

#[tokio::test]
async fn an_existing_folder_keeps_its_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shared = dir.path().join("shared");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&shared)
        .expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    SqliteStore::open(shared.join("events.db"), Durability::Normal)
        .await
        .expect("open");
    assert_eq!(
        std::fs::metadata(&shared)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
}

#[tokio::test]
async fn events_survive_reopening_and_the_schema_is_versioned_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    let stored = {
        let store = SqliteStore::open(&path, Durability::Full)
            .await
            .expect("open");
        store
            .append(vec![new_event(
                0,
                EventType::QUIZ_STARTED,
                Some("s"),
                Some("u"),
            )])
            .await
            .expect("append")
    };
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("reopen");
    assert_eq!(
        store.query(EventQuery::latest(10)).await.expect("query"),
        stored
    );
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal");
    assert_eq!((version, journal.as_str()), (8, "wal"));
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    rusqlite::Connection::open(&path)
        .expect("raw open")
        .execute_batch("PRAGMA user_version = 99")
        .expect("set version");
    let err = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect_err("too new");
    assert!(matches!(err, OpenError::Migration { .. }), "{err}");
    assert!(err.to_string().contains("99"), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    std::fs::write(&path, vec![b'x'; 8192]).expect("write junk");
    let err = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect_err("junk");
    assert!(err.to_string().contains("events.db"), "{err}");
}

#[tokio::test]
async fn ping_fails_once_the_database_file_is_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("open");
    store.ping().await.expect("ping");
    std::fs::remove_file(&path).expect("remove");
    assert!(store.ping().await.is_err());
}

#[tokio::test]
async fn an_unwritable_location_is_an_error_naming_the_path() {
    let err = SqliteStore::open("/proc/definitely/not/here/events.db", Durability::Normal)
        .await
        .expect_err("cannot create");
    assert!(err.to_string().contains("/proc/definitely"), "{err}");
}

#[tokio::test]
async fn the_wal_stays_bounded_while_the_writer_never_pauses() {
    // 400 MiB of events in back-to-back batches of 2 MiB (~1,000 WAL pages
    // each), ~800 MiB of WAL: it starts over at 40,000 pages (160 MiB) when
    // the background checkpointer catches up between two batches, or at the
    // writer's backstop (80,000 pages, 320 MiB, to which the file is then
    // cut) when it does not; the backstop alone is tested in `open.rs`.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("open");
    let payload =
        Payload::from_json(format!(r#"{{"notes":"{}"}}"#, "x".repeat(4_000))).expect("payload");
    let mut n = 0;
    for _ in 0..200 {
        let batch = (0..500)
            .map(|_| {
                n += 1;
                NewEvent {
                    payload: payload.clone(),
                    ..new_event(n, EventType::TIMER_TICK, Some("s"), Some("u"))
                }
            })
            .collect();
        store.append(batch).await.expect("append");
    }
    let wal = std::fs::metadata(dir.path().join("events.db-wal"))
        .expect("wal")
        .len();
    assert!(wal <= 330 * 1024 * 1024, "the WAL grew to {wal} bytes");
    assert_eq!(
        store.query(EventQuery::latest(1)).await.expect("query")[0].seq,
        100_000
    );
}

#[tokio::test]
async fn a_database_of_an_older_version_gets_its_counts_built_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    let expected = {
        let store = SqliteStore::open(&path, Durability::Normal)
            .await
            .expect("open");
        let kinds = [
            EventType::TIMER_TICK,
            EventType::ANSWER_SUBMITTED,
            EventType::QUIZ_STARTED,
        ];
        let batch = (0..50)
            .map(|i| new_event(i, kinds[(i % 3) as usize], None, None))
            .collect();
        store.append(batch).await.expect("append");
        store.stats(at(20)).await.expect("stats")
    };
    assert_eq!(expected.total_events, 50);
    // As version 1 left it: the events, no counts, no occurred_at.
    rusqlite::Connection::open(&path)
        .expect("raw open")
        .execute_batch(&format!(
            "DROP TABLE type_counts; DROP TABLE minute_counts;
             DROP INDEX ix_events_occurred; ALTER TABLE events DROP COLUMN occurred_at;
             DROP INDEX ix_events_idempotency; ALTER TABLE events DROP COLUMN idempotency_key;
             DROP TABLE leases; DROP TABLE cursors; DROP TABLE stamp_order;
             {UNCHUNK}
             PRAGMA user_version = 1;"
        ))
        .expect("downgrade");
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("reopen");
    assert_eq!(store.stats(at(20)).await.expect("stats"), expected);
    // The events stored before the upgrade are taken as stamped out of
    // order: a `since` range reaching back to them is walked as before.
    let last_break: i64 = rusqlite::Connection::open(&path)
        .expect("raw open")
        .query_row("SELECT last_break FROM stamp_order", [], |r| r.get(0))
        .expect("stamp order");
    assert_eq!(last_break, 50);
}

/// Undoes schema version 8: the session and user indexes as they were, no
/// side tables.
const UNCHUNK: &str = "DROP INDEX ix_events_session_chunk; DROP INDEX ix_events_user_chunk;
     DROP TABLE session_chunks; DROP TABLE user_chunks;
     CREATE INDEX ix_events_session_seq ON events (session_id, seq);
     CREATE INDEX ix_events_user_seq    ON events (user_id, seq);";

#[tokio::test]
async fn a_database_of_version_7_gets_its_sessions_and_users_indexed_by_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    let sessions = ["s-a", "s-b", "s-c"];
    let users = ["u-1", "u-2"];
    let (newest_of_b, of_user) = {
        let store = SqliteStore::open(&path, Durability::Normal)
            .await
            .expect("open");
        let batch = (0..60)
            .map(|i| {
                let session = sessions[(i % 3) as usize];
                let user = (i % 4 != 0).then(|| users[(i % 2) as usize]);
                new_event(i, EventType::ANSWER_SUBMITTED, Some(session), user)
            })
            .collect();
        store.append(batch).await.expect("append");
        let query = |session: Option<&str>, user: Option<&str>| EventQuery {
            session_id: session.map(str::to_owned),
            user_id: user.map(str::to_owned),
            ..EventQuery::latest(7)
        };
        (
            store.query(query(Some("s-b"), None)).await.expect("query"),
            store.query(query(None, Some("u-2"))).await.expect("query"),
        )
    };
    assert_eq!(newest_of_b.len(), 7);
    assert_eq!(of_user.len(), 7);
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    raw.execute_batch(&format!("{UNCHUNK} PRAGMA user_version = 7;"))
        .expect("downgrade");
    drop(raw);
    let store = SqliteStore::open(&path, Durability::Normal)
        .await
        .expect("reopen");
    let query = |session: Option<&str>, user: Option<&str>| EventQuery {
        session_id: session.map(str::to_owned),
        user_id: user.map(str::to_owned),
        ..EventQuery::latest(7)
    };
    assert_eq!(
        store.query(query(Some("s-b"), None)).await.expect("query"),
        newest_of_b
    );
    assert_eq!(
        store.query(query(None, Some("u-2"))).await.expect("query"),
        of_user
    );
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 8);
    let pairs = |table: &str| -> Vec<(String, i64)> {
        raw.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<rusqlite::Result<_>>()
            .expect("pairs")
    };
    // 60 events, seq 1-60: all in chunk 0.
    assert_eq!(
        pairs("session_chunks"),
        sessions.map(|s| (s.to_owned(), 0)).to_vec()
    );
    assert_eq!(
        pairs("user_chunks"),
        users.map(|u| (u.to_owned(), 0)).to_vec()
    );
    let old_indexes: i64 = raw
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('ix_events_session_seq', 'ix_events_user_seq')",
            [],
            |r| r.get(0),
        )
        .expect("indexes");
    assert_eq!(old_indexes, 0, "the old indexes are dropped");
}
