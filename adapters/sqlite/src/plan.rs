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
        let n = count_at_most(
            conn,
            "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE timestamp > ?1 LIMIT ?2)",
            &since.to_string(),
            None,
        )?;
        if n <= RANGE_WALK_MAX {
            return Ok(Some("ix_events_timestamp"));
        }
    }
    let n = match (query.occurred_since, query.occurred_before) {
        (None, None) => return Ok(None),
        (Some(from), None) => count_at_most(
            conn,
            "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE occurred_at >= ?1 LIMIT ?2)",
            &from.to_string(),
            None,
        )?,
        (None, Some(before)) => count_at_most(
            conn,
            "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE occurred_at < ?1 LIMIT ?2)",
            &before.to_string(),
            None,
        )?,
        (Some(from), Some(before)) => count_at_most(
            conn,
            "SELECT COUNT(*) FROM (SELECT 1 FROM events
                 WHERE occurred_at >= ?1 AND occurred_at < ?3 LIMIT ?2)",
            &from.to_string(),
            Some(&before.to_string()),
        )?,
    };
    Ok((n <= RANGE_WALK_MAX).then_some("ix_events_occurred"))
}

/// Runs a count of the form `... LIMIT ?2` with `?1` (and `?3`) bound:
/// the range's events, up to one more than [`RANGE_WALK_MAX`].
fn count_at_most(
    conn: &Connection,
    sql: &str,
    first: &str,
    second: Option<&str>,
) -> rusqlite::Result<i64> {
    let mut stmt = conn.prepare_cached(sql)?;
    match second {
        None => stmt.query_row(params![first, RANGE_WALK_MAX + 1], |r| r.get(0)),
        Some(second) => stmt.query_row(params![first, RANGE_WALK_MAX + 1, second], |r| r.get(0)),
    }
}
