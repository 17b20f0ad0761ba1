//! The schema and its migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the events table. `seq` is AUTOINCREMENT so numbers are never reused
    // after deletes (subscribers resume from them). Each index ends in `seq`
    // so that a filtered query walks it newest-first and stops at the limit.
    "CREATE TABLE events (
         seq        INTEGER PRIMARY KEY AUTOINCREMENT,
         id         TEXT NOT NULL UNIQUE,
         event_type TEXT NOT NULL,
         source     TEXT NOT NULL,
         session_id TEXT,
         user_id    TEXT,
         payload    TEXT NOT NULL,
         timestamp  TEXT NOT NULL
     );
     CREATE INDEX ix_events_type_seq    ON events (event_type, seq);
     CREATE INDEX ix_events_session_seq ON events (session_id, seq);
     CREATE INDEX ix_events_user_seq    ON events (user_id, seq);
     CREATE INDEX ix_events_timestamp   ON events (timestamp);",
    // 2: per-type and per-minute counts kept with every append and delete
    // (counts.rs), so that stats never count the table; built once from the
    // events here.
    "CREATE TABLE type_counts (
         event_type TEXT PRIMARY KEY,
         count      INTEGER NOT NULL,
         last_seq   INTEGER NOT NULL,
         last_seen  TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE minute_counts (
         minute TEXT PRIMARY KEY,
         count  INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 3: when an event happened by its producer's clock, if it said; the
    // index holds only the events that have one.
    "ALTER TABLE events ADD COLUMN occurred_at TEXT;
     CREATE INDEX ix_events_occurred ON events (occurred_at) WHERE occurred_at IS NOT NULL;",
    // 4: the client's idempotency key, if it gave one; the index holds only
    // the events that have one (the writer looks a key up before storing).
    "ALTER TABLE events ADD COLUMN idempotency_key TEXT;
     CREATE INDEX ix_events_idempotency ON events (idempotency_key, seq)
         WHERE idempotency_key IS NOT NULL;",
    // 5: a lease lets one holder at a time run a background job (retention,
    // the xAPI connector), and a cursor is how far such a job has come.
    "CREATE TABLE leases (
         name       TEXT PRIMARY KEY,
         holder     TEXT NOT NULL,
         expires_at INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE cursors (
         name TEXT PRIMARY KEY,
         seq  INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 6: a database made by a build of 2026-12-04 has an index on
    // (event_type, timestamp) that retention no longer needs and every
    // append paid for.
    "DROP INDEX IF EXISTS ix_events_type_timestamp;",
    // 7: the highest seq appended with a timestamp below one appended before
    // it (stamps.rs). The events already stored are taken as out of order,
    // which costs nothing to set and only forgoes a shortcut for `since`
    // ranges that reach back before the upgrade.
    "CREATE TABLE stamp_order (
         id         INTEGER PRIMARY KEY CHECK (id = 1),
         last_break INTEGER NOT NULL
     );
     INSERT INTO stamp_order (id, last_break) SELECT 1, COALESCE(MAX(seq), 0) FROM events;",
    // 8: the session and user indexes keyed by chunk of seq, so that a
    // batch's events share a few leaves instead of one each, and the side
    // tables that list each session's and user's chunks (chunks.rs), built
    // from the events here.
    "CREATE INDEX ix_events_session_chunk ON events (seq >> 14, session_id, seq);
     CREATE INDEX ix_events_user_chunk    ON events (seq >> 14, user_id, seq);
     CREATE TABLE session_chunks (
         session_id TEXT NOT NULL,
         chunk      INTEGER NOT NULL,
         PRIMARY KEY (session_id, chunk)
     ) WITHOUT ROWID;
     CREATE INDEX ix_session_chunks_chunk ON session_chunks (chunk);
     CREATE TABLE user_chunks (
         user_id TEXT NOT NULL,
         chunk   INTEGER NOT NULL,
         PRIMARY KEY (user_id, chunk)
     ) WITHOUT ROWID;
     CREATE INDEX ix_user_chunks_chunk ON user_chunks (chunk);
     INSERT INTO session_chunks (session_id, chunk)
         SELECT DISTINCT session_id, seq >> 14 FROM events WHERE session_id IS NOT NULL;
     INSERT INTO user_chunks (user_id, chunk)
         SELECT DISTINCT user_id, seq >> 14 FROM events WHERE user_id IS NOT NULL;
     DROP INDEX ix_events_session_seq;
     DROP INDEX ix_events_user_seq;",
];

/// The version that rebuilds the session and user indexes: migrating to it
/// takes a while on a large database, and says so.
const CHUNKED: usize = 8;

/// The version that adds `type_counts`: migrating to it counts the events.
const COUNTED: usize = 2;

/// The schema version this build writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The file was written by a newer build.
    #[error("database schema version {found} is newer than this build supports ({LATEST}); upgrade event-pipeline")]
    TooNew {
        /// The version found in the file.
        found: i64,
    },
    /// The file holds tables of neither this service nor the Python one.
    #[error("not an event-pipeline database: it holds the tables {}, of neither this service's schema nor the Python service's", .tables.join(", "))]
    NotOurs {
        /// The tables found.
        tables: Vec<String>,
    },
    /// The copy of the Python service's database could not be made durable;
    /// nothing was migrated.
    #[error("cannot write the backup {path} of the Python service's database: {source}")]
    Backup {
        /// The backup file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused a statement.
    #[error("schema migration failed: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Runs every migration the file has not had yet, each in its own
/// transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, MigrationError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > LATEST {
        return Err(MigrationError::TooNew { found });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        if i + 1 == CHUNKED {
            let events: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
            tracing::info!(
                events,
                "rebuilding the session and user indexes by chunk (once: it reads every event; \
                 the service answers /health when it is done)"
            );
            log_progress(conn)?;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == COUNTED {
            crate::counts::rebuild(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        conn.progress_handler(0, None::<fn() -> bool>)?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    Ok(LATEST)
}

/// How often a long migration says it is still at work.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Logs, every [`PROGRESS_EVERY`] while `conn` runs statements, how long the
/// migration has taken (a 5M-event database's rebuild of schema 8 took 26
/// s), so that an operator watching a start-up knows it is not stuck.
fn log_progress(conn: &Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    let mut next = PROGRESS_EVERY;
    conn.progress_handler(
        100_000,
        Some(move || {
            if started.elapsed() >= next {
                tracing::info!(
                    seconds = next.as_secs(),
                    "still migrating the database schema"
                );
                next += PROGRESS_EVERY;
            }
            false
        }),
    )
}
