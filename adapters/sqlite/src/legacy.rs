//! The Python service's database (tables `events` and `event_stats`, maybe
//! `subscriptions`, no schema version): recognising it, reading its events
//! in timestamp order as they would be published now, and migrating such a
//! file in place.
//!
//! Each old row keeps its id, timestamp and payload. Its timestamp is
//! written in the canonical form (Python's `isoformat()` leaves out a zero
//! fraction, so the old text does not sort in time order), its payload
//! compacted (`json.dumps` put spaces after `:` and `,`) with its keys in
//! their order. A row that cannot be an event of this service (an
//! unregistered type, a timestamp that does not parse, a payload that is
//! not a JSON object) is left out and counted; it stays in the backup.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime};
use ep_ports::{EventId, EventType, NewEvent, Payload, Timestamp};
use rusqlite::{Connection, OptionalExtension};

use crate::schema::MigrationError;

/// What a database file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Schema {
    /// No tables yet.
    Empty,
    /// This service's schema (a version is recorded).
    Ours,
    /// The Python service's schema.
    Legacy,
    /// Something else: these tables.
    Foreign(Vec<String>),
}

/// The columns of the old `events` table this service reads.
const LEGACY_COLUMNS: [&str; 7] = [
    "id",
    "event_type",
    "source",
    "session_id",
    "user_id",
    "payload",
    "timestamp",
];
/// The old tables besides `events`.
const LEGACY_OTHERS: [&str; 2] = ["event_stats", "subscriptions"];

/// Recognises what `conn`'s database holds.
pub(crate) fn inspect(conn: &Connection) -> rusqlite::Result<Schema> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > 0 {
        return Ok(Schema::Ours);
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if tables.is_empty() {
        return Ok(Schema::Empty);
    }
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('events')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let legacy = LEGACY_COLUMNS
        .iter()
        .all(|c| columns.iter().any(|k| k == c))
        && !columns.iter().any(|k| k == "seq")
        && tables
            .iter()
            .all(|t| t == "events" || LEGACY_OTHERS.contains(&t.as_str()));
    Ok(if legacy {
        Schema::Legacy
    } else {
        Schema::Foreign(tables)
    })
}

/// Why an old row is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeftOut {
    /// Its type is not one of the 15 registered ones.
    UnregisteredType(String),
    /// Its timestamp does not parse, or lies outside years 0000-9999.
    BadTimestamp(String),
    /// Its payload is not a JSON object.
    BadPayload,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeftOut::UnregisteredType(t) => write!(f, "unregistered event type {t:?}"),
            LeftOut::BadTimestamp(t) => write!(f, "unreadable timestamp {t:?}"),
            LeftOut::BadPayload => f.write_str("payload is not a JSON object"),
        }
    }
}

/// An old row that is not copied: its id and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The old row's id.
    pub id: String,
    /// Why it is left out.
    pub reason: LeftOut,
}

/// An old row as an event of this service, or why it cannot be one.
pub type OldEvent = Result<NewEvent, Skipped>;

/// An old timestamp as an instant: RFC 3339 (with or without a fraction),
/// or without an offset (UTC, as the old service wrote them).
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let instant = DateTime::parse_from_rfc3339(text)
        .map(Timestamp::from_datetime)
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|n| Timestamp::from_datetime(n.and_utc()))
        })?;
    (Timestamp::MIN..=Timestamp::MAX)
        .contains(&instant)
        .then_some(instant)
}

/// JSON text without the whitespace outside strings, keys in their order.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// An old payload as this service's: compact, an object (`{}` for none).
fn payload(text: Option<String>) -> Result<Payload, LeftOut> {
    let text = match text {
        None => return Ok(Payload::empty()),
        Some(t) if t.trim().is_empty() || t.trim() == "null" => return Ok(Payload::empty()),
        Some(t) => compact(&t),
    };
    if !text.starts_with('{') {
        return Err(LeftOut::BadPayload);
    }
    Payload::from_json(text).map_err(|_| LeftOut::BadPayload)
}

/// One old row.
struct Row {
    id: String,
    event_type: String,
    source: String,
    session_id: Option<String>,
    user_id: Option<String>,
    payload: Option<String>,
    timestamp: String,
}

impl Row {
    fn into_event(self) -> OldEvent {
        let id = self.id;
        let event_type = match EventType::known(&self.event_type).filter(|t| t.is_built_in()) {
            Some(t) => t,
            None => {
                return Err(Skipped {
                    id,
                    reason: LeftOut::UnregisteredType(self.event_type),
                })
            }
        };
        let Some(timestamp) = parse_timestamp(&self.timestamp) else {
            return Err(Skipped {
                id,
                reason: LeftOut::BadTimestamp(self.timestamp),
            });
        };
        let payload = match payload(self.payload) {
            Ok(p) => p,
            Err(reason) => return Err(Skipped { id, reason }),
        };
        Ok(NewEvent {
            idempotency: None,
            occurred_at: None,
            id: EventId::new(id),
            event_type,
            source: self.source,
            session_id: self.session_id,
            user_id: self.user_id,
            payload,
            timestamp,
        })
    }
}

/// The events of an old `table`, in timestamp order (insertion order
/// between equal timestamps), read a few at a time.
pub(crate) struct LegacyRows {
    /// Row ids in the order their events are stored.
    order: std::vec::IntoIter<i64>,
    table: &'static str,
    total: usize,
}

impl LegacyRows {
    /// Reads the order of `table`'s rows. `table` is a name of this crate's,
    /// never a client value.
    pub(crate) fn order(conn: &Connection, table: &'static str) -> rusqlite::Result<Self> {
        let mut rows: Vec<(i64, i64)> = conn
            .prepare(&format!("SELECT rowid, timestamp FROM {table}"))?
            .query_map([], |r| {
                let rowid: i64 = r.get(0)?;
                let text: Option<String> = r.get(1)?;
                // Unparseable ones sort first; they are left out when read.
                let at = text
                    .as_deref()
                    .and_then(parse_timestamp)
                    .map_or(i64::MIN, Timestamp::as_micros);
                Ok((at, rowid))
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.sort_unstable();
        let total = rows.len();
        Ok(Self {
            order: rows
                .into_iter()
                .map(|(_, rowid)| rowid)
                .collect::<Vec<_>>()
                .into_iter(),
            table,
            total,
        })
    }

    /// How many rows the table holds.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// The next row as an event, or the id and why it is left out; `None`
    /// at the end.
    pub(crate) fn next(&mut self, conn: &Connection) -> rusqlite::Result<Option<OldEvent>> {
        let Some(rowid) = self.order.next() else {
            return Ok(None);
        };
        let row = conn
            .prepare_cached(&format!(
                "SELECT id, event_type, source, session_id, user_id, payload, timestamp \
                 FROM {} WHERE rowid = ?1",
                self.table
            ))?
            .query_row([rowid], |r| {
                Ok(Row {
                    id: r.get(0)?,
                    event_type: r.get(1)?,
                    source: r.get(2)?,
                    session_id: r.get(3)?,
                    user_id: r.get(4)?,
                    payload: r.get(5)?,
                    timestamp: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                })
            })
            .optional()?;
        Ok(row.map(Row::into_event))
    }
}

/// Why an old database could not be read for an import.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// SQLite could not open or read it.
    #[error("cannot read {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// It is not the Python service's database.
    #[error("{path} is not the Python service's database ({what})")]
    NotLegacy {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
}

/// The Python service's database, opened read-only, to copy its events
/// into any store (`event-pipeline import-legacy`).
pub struct LegacyDatabase {
    path: PathBuf,
    conn: Connection,
    rows: LegacyRows,
}

impl LegacyDatabase {
    /// Opens the file at `path` without changing it.
    ///
    /// # Errors
    /// `Sqlite` when it cannot be read, `NotLegacy` when it holds another
    /// schema (this service's own: point the service at it instead).
    pub fn open(path: &Path) -> Result<Self, LegacyError> {
        let sqlite = |source| LegacyError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        let not = |what: String| LegacyError::NotLegacy {
            path: path.to_owned(),
            what,
        };
        match inspect(&conn).map_err(sqlite)? {
            Schema::Legacy => {}
            Schema::Ours => {
                return Err(not(
                    "it is this service's own database: point DATABASE_PATH at it".into(),
                ))
            }
            Schema::Empty => return Err(not("it holds no tables".into())),
            Schema::Foreign(tables) => {
                return Err(not(format!("it holds the tables {}", tables.join(", "))))
            }
        }
        let rows = LegacyRows::order(&conn, "events").map_err(sqlite)?;
        Ok(Self {
            path: path.to_owned(),
            conn,
            rows,
        })
    }

    /// How many rows its `events` table holds.
    pub fn total(&self) -> usize {
        self.rows.total()
    }

    /// The next `n` rows in timestamp order: each an event, or its id and
    /// why it is left out. Empty at the end.
    ///
    /// # Errors
    /// `Sqlite` when a row cannot be read.
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<OldEvent>, LegacyError> {
        let mut batch = Vec::with_capacity(n);
        while batch.len() < n {
            match self
                .rows
                .next(&self.conn)
                .map_err(|source| LegacyError::Sqlite {
                    path: self.path.clone(),
                    source,
                })? {
                Some(row) => batch.push(row),
                None => break,
            }
        }
        Ok(batch)
    }
}

/// What a migration in place did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migrated {
    pub(crate) backup: PathBuf,
    pub(crate) events: usize,
    pub(crate) left_out: Vec<Skipped>,
}

/// Where the copy of `path` from before the migration goes: beside it,
/// named after the time, never over an existing file.
fn backup_path(path: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = path
        .file_name()
        .map_or_else(|| "events.db".into(), |n| n.to_string_lossy().into_owned());
    let mut candidate = path.with_file_name(format!("{name}.legacy-backup-{stamp}"));
    let mut n = 1;
    while candidate.exists() {
        candidate = path.with_file_name(format!("{name}.legacy-backup-{stamp}-{n}"));
        n += 1;
    }
    candidate
}

/// Flushes the file at `path` and the folder entry naming it to disk.
fn sync_file_and_folder(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => std::fs::File::open(".")?.sync_all(),
    }
}

/// Copies the Python service's database at `path` to a backup beside it,
/// then, in one transaction, moves its events into this service's schema
/// (version 1; later migrations follow as usual).
pub(crate) fn migrate_in_place(
    conn: &mut Connection,
    path: &Path,
    schema_v1: &str,
) -> Result<Migrated, MigrationError> {
    let backup = backup_path(path);
    conn.execute("VACUUM INTO ?1", [backup.to_string_lossy()])?;
    // VACUUM INTO does not fsync what it wrote: the copy must be on disk
    // before the original changes.
    sync_file_and_folder(&backup).map_err(|source| MigrationError::Backup {
        path: backup.clone(),
        source,
    })?;
    tracing::warn!(
        backup = %backup.display(),
        "this is the Python service's database: migrating it in place (a copy of it as it was is at the backup path)"
    );
    let tx = conn.transaction()?;
    tx.execute_batch("ALTER TABLE events RENAME TO legacy_events;")?;
    for index in [
        "idx_events_type",
        "idx_events_session",
        "idx_events_timestamp",
        "idx_events_user",
    ] {
        tx.execute_batch(&format!("DROP INDEX IF EXISTS {index};"))?;
    }
    tx.execute_batch(schema_v1)?;
    let mut rows = LegacyRows::order(&tx, "legacy_events")?;
    let (mut events, mut left_out) = (0, Vec::new());
    {
        let mut insert = tx.prepare(
            "INSERT INTO events (id, event_type, source, session_id, user_id, payload, timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        while let Some(row) = rows.next(&tx)? {
            match row {
                Ok(e) => {
                    insert.execute(rusqlite::params![
                        e.id.as_str(),
                        e.event_type.as_str(),
                        e.source,
                        e.session_id,
                        e.user_id,
                        e.payload.as_str(),
                        e.timestamp.to_string(),
                    ])?;
                    events += 1;
                }
                Err(skipped) => left_out.push(skipped),
            }
        }
    }
    tx.execute_batch(
        "DROP TABLE legacy_events;
         DROP TABLE IF EXISTS event_stats;
         DROP TABLE IF EXISTS subscriptions;
         PRAGMA user_version = 1;",
    )?;
    tx.commit()?;
    if !left_out.is_empty() {
        let first: Vec<String> = left_out
            .iter()
            .take(5)
            .map(|s| format!("{}: {}", s.id, s.reason))
            .collect();
        tracing::warn!(
            left_out = left_out.len(),
            first = ?first,
            "old rows that cannot be events of this service were left out (they are in the backup)"
        );
    }
    tracing::info!(
        events,
        "the Python service's events are migrated, seq in timestamp order"
    );
    Ok(Migrated {
        backup,
        events,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_timestamps_with_or_without_a_fraction_are_instants() {
        let a = parse_timestamp("2026-11-27T09:58:41Z").expect("no fraction");
        let b = parse_timestamp("2026-11-27T09:58:41.270000Z").expect("fraction");
        assert!(a < b, "text order would say otherwise");
        assert_eq!(
            parse_timestamp("2026-11-27T09:58:41.270000"),
            Some(b),
            "no offset: UTC"
        );
        assert_eq!(parse_timestamp("2026-11-27T10:58:41.27+01:00"), Some(b));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn payloads_are_compacted_in_their_key_order() {
        let p = payload(Some(
            r#"{"b": 1, "a": "x y", "n": {"k": [1, 2]}, "s": "q\" :, "}"#.into(),
        ))
        .expect("object");
        assert_eq!(
            p.as_str(),
            r#"{"b":1,"a":"x y","n":{"k":[1,2]},"s":"q\" :, "}"#
        );
        assert_eq!(payload(None).expect("none"), Payload::empty());
        assert_eq!(
            payload(Some("null".into())).expect("null"),
            Payload::empty()
        );
        assert_eq!(payload(Some("[1]".into())), Err(LeftOut::BadPayload));
        assert_eq!(payload(Some("{oops".into())), Err(LeftOut::BadPayload));
    }
}
