//! The session and user indexes, keyed by chunk of seq, and the side tables
//! that list each session's and user's chunks.
//!
//! An index on `(session_id, seq)` takes each event at the newest leaf of
//! its session, a leaf of its own when a batch's events spread over many
//! sessions: a commit of 1,000 events wrote about 1,000 leaves of it and as
//! many of `(user_id, seq)` to the WAL (2.1-2.6 pages per event at 1-5M
//! events), and every WAL start-over copied and synced them on the commit
//! path. Keyed by `(seq >> 14, session_id, seq)`, the events of the newest
//! 16,384 seqs sort by session within their chunk, so a batch shares the
//! newest chunk's few leaves (`bench/index-layout.py`: 0.3-0.5 pages per
//! event in all; WebSocket publish at 4 x 256 in flight, ack p99 43-72 ->
//! 17-25 ms in a same-run A/B of a prototype, see bench/README.md).
//!
//! A query for a session (or user, or a scope's list of them) reads the
//! chunks that hold its events from `session_chunks` (`user_chunks`), then
//! walks the index with the chunks bound as a list, `(seq >> 14) IN (...)`:
//! SQLite seeks each chunk in turn, newest first when ordered by `(seq >>
//! 14) DESC, seq DESC`, and stops at the limit ([`push_chunks`],
//! [`order_by`]). (With the chunks as a subquery instead, SQLite 3.53
//! scans the whole index.)
//!
//! Every append records its events' (key, chunk) pairs in the same
//! transaction, so a side table never misses a chunk. Rows of a chunk that
//! no longer holds the key's events only cost an empty seek; an erasure
//! removes the user's, and delete steps remove, a bounded number at a time,
//! those of chunks older than the oldest event left.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use ep_ports::Event;
use rusqlite::{types::Value, Connection, ToSql};

/// Bits of seq below the chunk number: a chunk is 16,384 seqs. The schema's
/// index definitions (`seq >> 14`) say the same.
pub(crate) const CHUNK_BITS: u32 = 14;

/// The chunk that holds `seq`.
pub(crate) fn chunk_of(seq: i64) -> i64 {
    seq >> CHUNK_BITS
}

/// A column indexed by chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyed {
    /// `session_id`.
    Session,
    /// `user_id`.
    User,
}

impl Keyed {
    /// Both, in a fixed order.
    const ALL: [Keyed; 2] = [Keyed::Session, Keyed::User];

    /// The column.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Keyed::Session => "session_id",
            Keyed::User => "user_id",
        }
    }

    /// The chunked index of the column.
    pub(crate) fn index(self) -> &'static str {
        match self {
            Keyed::Session => "ix_events_session_chunk",
            Keyed::User => "ix_events_user_chunk",
        }
    }

    /// The side table listing each value's chunks.
    fn table(self) -> &'static str {
        match self {
            Keyed::Session => "session_chunks",
            Keyed::User => "user_chunks",
        }
    }

    /// The column's value in `event`.
    fn of(self, event: &Event) -> Option<&str> {
        match self {
            Keyed::Session => event.session_id.as_deref(),
            Keyed::User => event.user_id.as_deref(),
        }
    }
}

/// The chunks, in ascending order, that hold events with any of `values`
/// in `key`'s column, from the chunk of `from_seq` on.
pub(crate) fn chunks_of(
    conn: &Connection,
    key: Keyed,
    values: &[&str],
    from_seq: i64,
) -> rusqlite::Result<Vec<i64>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; values.len()].join(", ");
    let sql = format!(
        "SELECT DISTINCT chunk FROM {} WHERE {} IN ({marks}) AND chunk >= ? ORDER BY chunk",
        key.table(),
        key.column()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let from = chunk_of(from_seq.max(0));
    let mut params: Vec<&dyn ToSql> = values.iter().map(|v| v as &dyn ToSql).collect();
    params.push(&from);
    let chunks = stmt.query_map(params.as_slice(), |r| r.get(0))?;
    chunks.collect()
}

/// Chunks bound as a list at most: SQLite refuses a statement with more
/// than 32,766 parameters, and a scope's values share them (20,000 chunks
/// are 327M events of one key).
const LISTED_MAX: usize = 20_000;

/// Appends the condition that a row is in one of `chunks` (ascending), bound as
/// parameters: ` AND (seq >> 14) = ?` for one chunk, ` AND (seq >> 14) IN
/// (...)` for several (an empty list matches nothing). Follow it with
/// [`order_by`] of the same chunks.
pub(crate) fn push_chunks(sql: &mut String, args: &mut Vec<Value>, chunks: &[i64]) {
    if chunks.len() > LISTED_MAX {
        // Past what a statement may bind: the chunks' range instead, which
        // SQLite walks whole (slower, never refused).
        let _ = write!(sql, " AND (seq >> {CHUNK_BITS}) BETWEEN ? AND ?");
        args.push(Value::Integer(chunks[0]));
        args.push(Value::Integer(chunks[chunks.len() - 1]));
        return;
    }
    if let [chunk] = chunks {
        let _ = write!(sql, " AND (seq >> {CHUNK_BITS}) = ?");
        args.push(Value::Integer(*chunk));
        return;
    }
    let marks = vec!["?"; chunks.len()].join(", ");
    let _ = write!(sql, " AND (seq >> {CHUNK_BITS}) IN ({marks})");
    args.extend(chunks.iter().map(|&c| Value::Integer(c)));
}

/// The order of a walk through `chunks`: seq order, in the terms SQLite
/// follows down the chunked index without a sort. Through several chunks
/// that is `(seq >> 14), seq`; within one, SQLite sorts for that but not
/// for `seq` alone (SQLite 3.53, `EXPLAIN QUERY PLAN`).
pub(crate) fn order_by(chunks: &[i64], newest_first: bool) -> &'static str {
    match (chunks.len() > 1, newest_first) {
        (true, true) => " ORDER BY (seq >> 14) DESC, seq DESC",
        (true, false) => " ORDER BY (seq >> 14), seq",
        (false, true) => " ORDER BY seq DESC",
        (false, false) => " ORDER BY seq",
    }
}

/// The side-table rows of the newest chunk that the writer has recorded:
/// an append writes only the rows not among them. Without it each event
/// asked SQLite for its two rows (`INSERT OR IGNORE`), 12-15% of REST
/// publish at 8 connections on a 5M-event database (same-run A/B). Only
/// the writer's thread uses it; the store clears it whenever a
/// transaction of the writer's fails (its rows may not have been
/// committed) and after every delete step (which may remove rows).
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    newest: Mutex<Newest>,
}

/// The newest chunk and the sessions and users recorded in it.
#[derive(Debug, Default)]
struct Newest {
    chunk: i64,
    sessions: HashSet<String>,
    users: HashSet<String>,
}

impl Newest {
    /// The keys of `key`'s column recorded in the newest chunk.
    fn keys(&mut self, key: Keyed) -> &mut HashSet<String> {
        match key {
            Keyed::Session => &mut self.sessions,
            Keyed::User => &mut self.users,
        }
    }

    /// Forgets every key, and moves on to `chunk`.
    fn reset(&mut self, chunk: i64) {
        self.chunk = chunk;
        self.sessions.clear();
        self.users.clear();
    }
}

impl Recorded {
    /// Forgets every row recorded: the next appends write theirs again.
    pub(crate) fn clear(&self) {
        let mut newest = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        let chunk = newest.chunk;
        newest.reset(chunk);
    }
}

/// Records the chunks of `events` (appended in this transaction) in the
/// side tables, but for the rows `recorded` holds; notes the rows written
/// there.
pub(crate) fn record(
    tx: &Connection,
    events: &[Event],
    recorded: &Recorded,
) -> rusqlite::Result<()> {
    let mut newest = recorded
        .newest
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for key in Keyed::ALL {
        let pairs: BTreeSet<(&str, i64)> = events
            .iter()
            .filter_map(|e| Some((key.of(e)?, chunk_of(i64::try_from(e.seq).ok()?))))
            .collect();
        for (value, chunk) in pairs {
            if chunk == newest.chunk && newest.keys(key).contains(value) {
                continue;
            }
            tx.prepare_cached(match key {
                Keyed::Session => {
                    "INSERT OR IGNORE INTO session_chunks (session_id, chunk) VALUES (?1, ?2)"
                }
                Keyed::User => "INSERT OR IGNORE INTO user_chunks (user_id, chunk) VALUES (?1, ?2)",
            })?
            .execute(rusqlite::params![value, chunk])?;
            if chunk > newest.chunk {
                newest.reset(chunk);
            }
            if chunk == newest.chunk {
                newest.keys(key).insert(value.to_owned());
            }
        }
    }
    Ok(())
}

/// After events of `user` were deleted: forgets the chunks that hold none
/// of theirs any more (an erasure leaves no trace of the user behind).
pub(crate) fn forget_user(tx: &Connection, user: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM user_chunks WHERE user_id = ?1 AND NOT EXISTS (
             SELECT 1 FROM events INDEXED BY ix_events_user_chunk
             WHERE (seq >> 14) = user_chunks.chunk AND user_id = ?1)",
    )?
    .execute([user])?;
    Ok(())
}

/// Side-table rows a delete step forgets at most ([`forget_emptied`]): each
/// sits at a leaf of its own (rows sort by key, then chunk), so a chunk's
/// thousands of rows at once would make one step, which publishes wait
/// for, write thousands of pages.
pub(crate) const FORGET_PER_STEP: i64 = 1_000;

/// Run by each delete step: forgets up to [`FORGET_PER_STEP`] rows, in each
/// side table, of chunks older than the oldest event left (all of them once
/// no event is left). A retention that removes a term's events thus
/// removes its sessions' and students' rows over the steps that follow.
pub(crate) fn forget_emptied(tx: &Connection) -> rusqlite::Result<()> {
    let oldest: Option<i64> = tx
        .prepare_cached("SELECT MIN(seq) FROM events")?
        .query_row([], |r| r.get(0))?;
    let below = oldest.map_or(i64::MAX, chunk_of);
    for key in Keyed::ALL {
        let (table, column) = (key.table(), key.column());
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE ({column}, chunk) IN (
                 SELECT {column}, chunk FROM {table} INDEXED BY ix_{table}_chunk
                 WHERE chunk < ?1 LIMIT ?2)"
        ))?
        .execute([below, FORGET_PER_STEP])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_and_the_walks_chunk_seqs_as_chunk_of_does() {
        let expr = format!("seq >> {CHUNK_BITS}");
        let chunked = crate::schema::MIGRATIONS
            .iter()
            .filter(|m| m.contains(&format!("({expr}, session_id, seq)")))
            .count();
        assert_eq!(chunked, 1, "one migration makes the chunked indexes");
        assert!(order_by(&[1, 2], true).contains(&expr));
        assert!(order_by(&[1, 2], false).contains(&expr));
        assert_eq!(chunk_of((1 << CHUNK_BITS) - 1), 0);
        assert_eq!(chunk_of(1 << CHUNK_BITS), 1);
    }

    #[test]
    fn one_chunk_is_an_equality_and_several_a_list() {
        let pushed = |chunks: &[i64]| {
            let (mut sql, mut args) = (String::new(), Vec::new());
            push_chunks(&mut sql, &mut args, chunks);
            (sql, args)
        };
        assert_eq!(pushed(&[]), (" AND (seq >> 14) IN ()".to_owned(), vec![]));
        assert_eq!(
            pushed(&[3]),
            (" AND (seq >> 14) = ?".to_owned(), vec![Value::Integer(3)])
        );
        assert_eq!(
            pushed(&[1, 2]),
            (
                " AND (seq >> 14) IN (?, ?)".to_owned(),
                vec![Value::Integer(1), Value::Integer(2)]
            )
        );
        let listed: Vec<i64> = (0..LISTED_MAX as i64).collect();
        assert!(
            pushed(&listed).0.contains(" IN ("),
            "at the bound, still a list"
        );
        let many: Vec<i64> = (0..=LISTED_MAX as i64).collect();
        let (sql, args) = pushed(&many);
        assert_eq!(sql, " AND (seq >> 14) BETWEEN ? AND ?");
        assert_eq!(
            args,
            vec![Value::Integer(0), Value::Integer(LISTED_MAX as i64)]
        );
        assert_eq!(order_by(&[3], true), " ORDER BY seq DESC");
        assert_eq!(order_by(&[], false), " ORDER BY seq");
    }
}
