//! Which index a query of events walks: a short time range's own index, or
//! the newest-first walk SQLite chooses by itself.

use ep_ports::EventQuery;
use rusqlite::{params, Connection};

/// Events in a query's time range up to which the query walks that range's
/// index and sorts what it finds by seq, instead of walking the events (or
/// one type's) newest first and filtering them by time.
///
/// SQLite chooses the newest-first walk for every `ORDER BY seq DESC LIMIT`
/// query without a session or user: it stops after `limit` events when
/// the range holds that many among the newest, but with fewer it passes
/// every older event before it knows none is left. At 5,000,000 events
/// (`bench/big.sh`), `since=` a minute ago with nothing newer took 0.55 s
/// (1.35 s with `event_type=timer_tick`), and `occurred_since=` 0.32 s.
/// Counting the range through its index, up to this many, costs well
/// under a millisecond; walking that many rows and sorting them, a few.
/// Past it the newest-first walk meets `limit` (at most 1,000) events of
/// the range soon when the range reaches the newest events (`since`, or
/// `occurred_since` without an end). A range of more than this many that
/// ends in the past (`occurred_before`) still makes that walk pass the
/// events after its end.
pub(crate) const RANGE_WALK_MAX: i64 = 10_000;

/// The index to walk for `query`, when its time range holds at most
/// [`RANGE_WALK_MAX`] events; `None` leaves the choice to SQLite. A query
/// for one session or one user walks that one's index, bounded by its
/// events, so it is left alone.
pub(crate) fn range_index(
    conn: &Connection,
    query: &EventQuery,
) -> rusqlite::Result<Option<&'static str>> {
    if query.session_id.is_some() || query.user_id.is_some() {
        return Ok(None);
    }
    if let Some(since) = query.since {
        if holds_few(conn, "timestamp > ?1", &since.to_string(), None)? {
            return Ok(Some("ix_events_timestamp"));
        }
    }
    let from = query.occurred_since.map(|t| t.to_string());
    let before = query.occurred_before.map(|t| t.to_string());
    let few = match (&from, &before) {
        (None, None) => false,
        (Some(from), None) => holds_few(conn, "occurred_at >= ?1", from, None)?,
        (None, Some(before)) => holds_few(conn, "occurred_at < ?1", before, None)?,
        (Some(from), Some(before)) => holds_few(
            conn,
            "occurred_at >= ?1 AND occurred_at < ?3",
            from,
            Some(before),
        )?,
    };
    Ok(few.then_some("ix_events_occurred"))
}

/// Whether at most [`RANGE_WALK_MAX`] events meet `condition` (fixed text
/// whose `?1` is `first` and `?3`, if any, `second`), counted through the
/// index of its column.
fn holds_few(
    conn: &Connection,
    condition: &str,
    first: &str,
    second: Option<&str>,
) -> rusqlite::Result<bool> {
    let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE {condition} LIMIT ?2)");
    let mut stmt = conn.prepare_cached(&sql)?;
    let cap = RANGE_WALK_MAX + 1;
    let n: i64 = match second {
        None => stmt.query_row(params![first, cap], |r| r.get(0))?,
        Some(second) => stmt.query_row(params![first, cap, second], |r| r.get(0))?,
    };
    Ok(n <= RANGE_WALK_MAX)
}
