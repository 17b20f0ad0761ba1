//! The Python service's database: opened as the store, it is copied to a
//! backup beside itself and migrated in place, once; any other foreign
//! database is refused untouched; read-only, it can be imported elsewhere.

use ep_ports::{EventFilter, EventQuery, EventStore, Timestamp};
use ep_store_sqlite::testing::{
    sample_rows, write_foreign_db, write_legacy_db, SAMPLE_KEPT_IN_TIMESTAMP_ORDER,
};
use ep_store_sqlite::{
    Durability, LeftOut, LegacyDatabase, MigrationError, OpenError, Skipped, SqliteStore,
};

fn backups(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".legacy-backup-"))
        .collect()
}

#[tokio::test]
async fn the_old_database_is_migrated_in_place_after_a_backup_in_timestamp_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("events.db");
    write_legacy_db(&db, &sample_rows()).expect("old database");
    let store = SqliteStore::open(&db, Durability::Normal)
        .await
        .expect("opens");

    let all = store
        .after(0, EventFilter::default(), 100)
        .await
        .expect("read");
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    // Timestamp order (3 was committed after 4 but stamped before it); the
    // unregistered quiz_paused is left out.
    assert_eq!(
        ids, SAMPLE_KEPT_IN_TIMESTAMP_ORDER,
        "seq in timestamp order"
    );
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        all[0].payload.as_str(),
        r#"{"quiz_id":"alg-3","questions":12}"#
    );
    assert_eq!(all[2].timestamp.to_string(), "2026-11-20T09:00:02.000000Z");
    assert_eq!(all[4].payload.as_str(), "{}");
    let stats = store.stats(Timestamp::MIN).await.expect("stats");
    assert_eq!(stats.total_events, 5);
    let session = store
        .query(EventQuery {
            session_id: Some("s2".into()),
            ..EventQuery::latest(10)
        })
        .await
        .expect("query");
    assert_eq!(session.len(), 1, "old events are queryable like new ones");
    let next = store
        .append(vec![ep_conformance::new_event(
            1,
            ep_ports::EventType::TIMER_TICK,
            None,
            None,
        )])
        .await
        .expect("append");
    assert_eq!(next[0].seq, 6);

    let backup = backups(dir.path());
    assert_eq!(backup.len(), 1, "{backup:?}");
    let mut old = LegacyDatabase::open(&backup[0]).expect("the backup is the old database");
    assert_eq!(old.total(), 6);
    drop(store);
    SqliteStore::open(&db, Durability::Normal)
        .await
        .expect("opens again");
    assert_eq!(backups(dir.path()).len(), 1, "migrated once");
    let rows = old.next_batch(100).expect("rows");
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().any(|r| matches!(r, Err(Skipped { id, reason: LeftOut::UnregisteredType(t) }) if id == "evt_a1b2c3d40006" && t == "quiz_paused")));
}

#[tokio::test]
async fn a_database_of_another_program_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("other.db");
    write_foreign_db(&db).expect("foreign");
    let before = std::fs::read(&db).expect("read");
    let refused = SqliteStore::open(&db, Durability::Normal)
        .await
        .expect_err("foreign");
    let OpenError::Migration {
        source: MigrationError::NotOurs { tables },
        ..
    } = &refused
    else {
        panic!("{refused}");
    };
    assert_eq!(tables, &["customers", "invoices"]);
    assert!(
        refused.to_string().contains("customers, invoices"),
        "{refused}"
    );
    assert_eq!(std::fs::read(&db).expect("read"), before, "untouched");
    assert!(backups(dir.path()).is_empty());
    assert!(LegacyDatabase::open(&db).is_err());
}

#[tokio::test]
async fn an_events_table_of_another_shape_or_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("calendar.db");
    rusqlite::Connection::open(&other)
        .expect("open")
        .execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, title TEXT, starts TEXT);")
        .expect("calendar");
    let newer = dir.path().join("newer.db");
    rusqlite::Connection::open(&newer)
        .expect("open")
        .execute_batch("CREATE TABLE events (seq INTEGER PRIMARY KEY); PRAGMA user_version = 99;")
        .expect("newer");
    for (db, expected) in [
        (&other, "not an event-pipeline database"),
        (&newer, "version 99 is newer"),
    ] {
        let before = std::fs::read(db).expect("read");
        let refused = SqliteStore::open(db, Durability::Normal)
            .await
            .expect_err("refused");
        assert!(refused.to_string().contains(expected), "{refused}");
        assert_eq!(std::fs::read(db).expect("read"), before, "untouched");
    }
    assert!(backups(dir.path()).is_empty());
}
