//! The shim under SQLite itself: a transaction's frames go to the file in
//! one write; every commit is readable by other connections at once; and
//! the files as they are after any commit (what a process killed there
//! leaves) recover exactly what was committed, through spills, rewrites
//! within a transaction, rollbacks and the WAL starting over.

use std::path::Path;

use ep_wal_buffer::{register, wal_writes_on_this_thread};
use proptest::prelude::*;
use rusqlite::{Connection, OpenFlags};

/// A connection through the shim, in WAL mode, checkpointing only when told.
fn writer(path: &Path, synchronous: &str) -> Connection {
    let vfs = register().expect("register the VFS");
    let conn = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs).expect("open");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};
         PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, k TEXT, x BLOB);
         CREATE INDEX IF NOT EXISTS t_k ON t (k);"
    ))
    .expect("set up");
    conn
}

/// What `conn` sees of the table: rows, bytes, and a sum over ids and contents.
fn digest(conn: &Connection) -> (i64, i64, i64) {
    conn.query_row(
        "SELECT count(*), coalesce(sum(length(x)), 0), coalesce(sum(id * 7 + length(k) + unicode(hex(x))), 0) FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("digest")
}

fn wal_bytes(path: &Path) -> u64 {
    std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len())
}

#[test]
fn a_transactions_frames_reach_the_file_in_one_write_per_120_kib_also_after_the_wal_starts_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let conn = writer(&path, "NORMAL");
    for round in 0..2 {
        let before = wal_writes_on_this_thread();
        let wal_before = if round == 0 { wal_bytes(&path) } else { 0 };
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
             INSERT INTO t (k, x) SELECT 'key' || (i * 7919 % 300), randomblob(1000) FROM n",
            [],
        )
        .expect("insert");
        let writes = wal_writes_on_this_thread() - before;
        // After the restart the file is reused: count what this round wrote.
        let frames = (wal_bytes(&path) - wal_before) / 4120;
        // The default VFS would have made two writes per frame; the shim
        // makes one per 120 KiB (and one for the header of a WAL starting
        // over).
        assert!(frames >= 75, "round {round}: {frames} frames");
        let most = (frames * 4120).div_ceil(120 << 10) + 1;
        assert!(
            (1..=most).contains(&writes),
            "round {round}: {writes} write calls for {frames} frames"
        );
        // Everything copied: the next transaction starts the WAL over, at
        // its beginning, without truncating the file.
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
            .expect("checkpoint");
    }
}

#[test]
fn a_refused_registration_names_the_vfs() {
    let message = ep_wal_buffer::RegisterError(1).to_string();
    assert!(
        message.contains("ep-wal-buffer") && message.contains("error 1"),
        "{message}"
    );
}

#[test]
fn every_commit_is_readable_at_once_by_a_connection_without_the_shim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let conn = writer(&path, "NORMAL");
    let reader = Connection::open(&path).expect("reader");
    for round in 0..200_i64 {
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO t (k, x) SELECT 'k' || (i * ?2 % 97), randomblob(100 + i * 37 % 900) FROM n",
            [1 + round % 20, round],
        )
        .expect("insert");
        assert_eq!(digest(&reader), digest(&conn), "after commit {round}");
    }
    let check: String = reader
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
}

/// One step of the property below.
#[derive(Debug, Clone)]
enum Step {
    /// Insert this many rows of about this many bytes.
    Insert(u16, u16),
    /// In one transaction: insert, then rewrite every row's content, which
    /// with a tiny page cache writes pages to the WAL before the commit and
    /// again (in place) after.
    InsertThenRewrite(u16),
    /// Insert, then roll the transaction back.
    RolledBack(u16),
    /// Delete the rows whose id is a multiple of this.
    Delete(u8),
    /// A checkpoint of this mode, which may let the WAL start over.
    Checkpoint(&'static str),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1..200_u16, 10..3_000_u16).prop_map(|(n, b)| Step::Insert(n, b)),
        (20..200_u16).prop_map(Step::InsertThenRewrite),
        (1..100_u16).prop_map(Step::RolledBack),
        (2..5_u8).prop_map(Step::Delete),
        prop_oneof![Just("PASSIVE"), Just("RESTART"), Just("TRUNCATE")].prop_map(Step::Checkpoint),
    ]
}

fn run(conn: &mut Connection, step: &Step) {
    const INSERT: &str =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO t (k, x) SELECT 'k' || abs(random() % 50), randomblob(?2) FROM n";
    match step {
        Step::Insert(n, bytes) => {
            conn.execute(INSERT, [i64::from(*n), i64::from(*bytes)])
                .expect("insert");
        }
        Step::InsertThenRewrite(n) => {
            let tx = conn.transaction().expect("begin");
            tx.execute(INSERT, [i64::from(*n), 700]).expect("insert");
            tx.execute("UPDATE t SET x = randomblob(length(x)), k = k || 'r'", [])
                .expect("rewrite");
            tx.commit().expect("commit");
        }
        Step::RolledBack(n) => {
            let tx = conn.transaction().expect("begin");
            tx.execute(INSERT, [i64::from(*n), 1_500]).expect("insert");
            tx.rollback().expect("rollback");
        }
        Step::Delete(m) => {
            conn.execute("DELETE FROM t WHERE id % ?1 = 0", [i64::from(*m)])
                .expect("delete");
        }
        Step::Checkpoint(mode) => {
            conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
                .expect("checkpoint");
        }
    }
}

/// The database and WAL files copied to `to` as they are now: what a
/// process killed at this moment leaves (the WAL index is rebuilt from the
/// WAL on open).
fn copy_files(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy the database");
    let wal = from.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, to.with_extension("db-wal")).expect("copy the WAL");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_files_after_any_commit_recover_exactly_what_was_committed(
        steps in proptest::collection::vec(step(), 1..14),
        full in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let mut conn = writer(&path, if full { "FULL" } else { "NORMAL" });
        // A page cache this small makes long transactions write pages to
        // the WAL before they commit.
        conn.execute_batch("PRAGMA cache_size = 8").expect("cache");
        let reader = Connection::open(&path).expect("reader");
        for (i, step) in steps.iter().enumerate() {
            run(&mut conn, step);
            let committed = digest(&conn);
            prop_assert_eq!(digest(&reader), committed, "a reader after step {} {:?}", i, step);
            let copy = dir.path().join(format!("copy-{i}.db"));
            copy_files(&path, &copy);
            let recovered = Connection::open(&copy).expect("open the copy");
            let check: String = recovered
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .expect("check");
            prop_assert_eq!(check.as_str(), "ok", "the copy after step {} {:?}", i, step);
            prop_assert_eq!(digest(&recovered), committed, "the copy after step {} {:?}", i, step);
        }
    }
}
