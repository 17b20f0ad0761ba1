//! For tests (feature `testing`): a database as the Python service left
//! it, with the schema its `init_database` created and rows as it wrote
//! them (`isoformat()` timestamps, `json.dumps` payloads).

use std::path::Path;

/// The Python service's schema, as its `init_database` created it.
pub const LEGACY_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS events (
        id TEXT PRIMARY KEY,
        event_type TEXT NOT NULL,
        source TEXT NOT NULL,
        session_id TEXT,
        user_id TEXT,
        payload TEXT,
        timestamp TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS event_stats (
        event_type TEXT PRIMARY KEY,
        count INTEGER DEFAULT 0,
        last_seen TEXT
    );
    CREATE INDEX IF NOT EXISTS idx_events_type ON events(event_type);
    CREATE INDEX IF NOT EXISTS idx_events_session ON events(session_id);
    CREATE INDEX IF NOT EXISTS idx_events_timestamp ON events(timestamp);
    CREATE INDEX IF NOT EXISTS idx_events_user ON events(user_id);";

/// One row of the old `events` table.
#[derive(Debug, Clone)]
pub struct LegacyRow {
    /// `evt_` and 12 hex digits.
    pub id: String,
    /// The type as stored.
    pub event_type: String,
    /// The source.
    pub source: String,
    /// The session.
    pub session_id: Option<String>,
    /// The user.
    pub user_id: Option<String>,
    /// `json.dumps` of the payload, or `None`.
    pub payload: Option<String>,
    /// `datetime.utcnow().isoformat() + "Z"`.
    pub timestamp: String,
}

/// Writes a database at `path` as the Python service would have, with
/// `rows` inserted in this order and `event_stats` kept as it kept them.
///
/// # Errors
/// When SQLite cannot write the file.
pub fn write_legacy_db(path: &Path, rows: &[LegacyRow]) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(LEGACY_SCHEMA)?;
    for r in rows {
        conn.execute(
            "INSERT INTO events (id, event_type, source, session_id, user_id, payload, timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                r.id,
                r.event_type,
                r.source,
                r.session_id,
                r.user_id,
                r.payload,
                r.timestamp
            ],
        )?;
        conn.execute(
            "INSERT INTO event_stats (event_type, count, last_seen) VALUES (?1, 1, ?2)
             ON CONFLICT(event_type) DO UPDATE SET count = count + 1, last_seen = excluded.last_seen",
            rusqlite::params![r.event_type, r.timestamp],
        )?;
    }
    Ok(())
}

/// Writes a database of some other program at `path`: tables `customers`
/// and `invoices`, one row each.
///
/// # Errors
/// When SQLite cannot write the file.
pub fn write_foreign_db(path: &Path) -> rusqlite::Result<()> {
    rusqlite::Connection::open(path)?.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer INTEGER, total REAL);
         INSERT INTO customers (name) VALUES ('Ada');
         INSERT INTO invoices (customer, total) VALUES (1, 12.5);",
    )
}

/// The ids of [`sample_rows`] a migration or import keeps, in timestamp
/// order (the seq order they must get); the unregistered one is left out.
pub const SAMPLE_KEPT_IN_TIMESTAMP_ORDER: [&str; 5] = [
    "evt_a1b2c3d40001",
    "evt_a1b2c3d40002",
    "evt_a1b2c3d40003",
    "evt_a1b2c3d40004",
    "evt_a1b2c3d40005",
];

/// Realistic old rows: ticks and answers of two sessions over a few
/// seconds, inserted out of timestamp order (as concurrent requests
/// committed), one with a whole-second timestamp (no fraction), one with
/// no payload, and one of a type this service does not register.
pub fn sample_rows() -> Vec<LegacyRow> {
    let row = |n: u32, event_type: &str, session: &str, payload: Option<&str>, timestamp: &str| {
        LegacyRow {
            id: format!("evt_{:012x}", 0xa1b2_c3d4_0000_u64 + u64::from(n)),
            event_type: event_type.to_owned(),
            source: "quiz-engine".to_owned(),
            session_id: Some(session.to_owned()),
            user_id: Some(format!("stu-{session}")),
            payload: payload.map(str::to_owned),
            timestamp: timestamp.to_owned(),
        }
    };
    vec![
        row(
            1,
            "quiz_started",
            "s1",
            Some(r#"{"quiz_id": "alg-3", "questions": 12}"#),
            "2026-11-20T09:00:00.120000Z",
        ),
        row(
            2,
            "timer_tick",
            "s1",
            Some(r#"{"remaining_seconds": 1799, "elapsed_seconds": 1}"#),
            "2026-11-20T09:00:01.500000Z",
        ),
        row(
            4,
            "answer_submitted",
            "s2",
            Some(r#"{"question_id": "q-1", "answer": "B", "correct": true}"#),
            "2026-11-20T09:00:02.250000Z",
        ),
        // Committed after 4 but stamped before it; a whole second: no fraction.
        row(
            3,
            "timer_tick",
            "s1",
            Some(r#"{"remaining_seconds": 1798, "elapsed_seconds": 2}"#),
            "2026-11-20T09:00:02Z",
        ),
        row(
            5,
            "session_ended",
            "s1",
            None,
            "2026-11-20T09:00:03.000001Z",
        ),
        row(
            6,
            "quiz_paused",
            "s2",
            Some("{}"),
            "2026-11-20T09:00:03.500000Z",
        ),
    ]
}
