//! Which index a query of events walks: a short time range's own index, the
//! index of a scope's few sessions, users or types, or the newest-first walk
//! SQLite chooses by itself.

use ep_ports::{EventQuery, Scope, ScopeField};
use rusqlite::{types::Value, Connection};

use crate::chunks::{self, Keyed};

/// How a query walks the events, when it should not be left to SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Down this index.
    Index(&'static str),
    /// Down the chunked index of this column, through these chunks
    /// (ascending), which the statement binds ([`chunks::push_chunks`]).
    Chunks(Keyed, Vec<i64>),
}

impl Walk {
    /// The index the statement names in `INDEXED BY`.
    pub(crate) fn index(&self) -> &'static str {
        match self {
            Walk::Index(index) => index,
            Walk::Chunks(key, _) => key.index(),
        }
    }
}

/// The walk through a session's events, when `session` is given, else a
/// user's: the chunks that hold them from `from_seq` on.
pub(crate) fn key_walk(
    conn: &Connection,
    session: Option<&str>,
    user: Option<&str>,
    from_seq: i64,
) -> rusqlite::Result<Option<Walk>> {
    let (key, value) = match (session, user) {
        (Some(session), _) => (Keyed::Session, session),
        (None, Some(user)) => (Keyed::User, user),
        (None, None) => return Ok(None),
    };
    let found = chunks::chunks_of(conn, key, &[value], from_seq)?;
    Ok(Some(Walk::Chunks(key, found)))
}

/// Names the index `walk` goes through, if any, after the statement's
/// `FROM events`.
pub(crate) fn push_index(sql: &mut String, walk: Option<&Walk>) {
    if let Some(walk) = walk {
        sql.push_str(" INDEXED BY ");
        sql.push_str(walk.index());
    }
}

/// Ends a statement's conditions with the chunks of `walk`, if it goes
/// through chunks, and orders it by seq, newest or oldest first.
pub(crate) fn push_order(
    sql: &mut String,
    args: &mut Vec<Value>,
    walk: Option<&Walk>,
    newest_first: bool,
) {
    match walk {
        Some(Walk::Chunks(_, found)) => {
            chunks::push_chunks(sql, args, found);
            sql.push_str(chunks::order_by(found, newest_first));
        }
        _ => sql.push_str(if newest_first {
            " ORDER BY seq DESC"
        } else {
            " ORDER BY seq"
        }),
    }
}

/// Events in a query's time range up to which the query walks that range's
/// index and sorts what it finds by seq, instead of walking the events (or
/// one type's) newest first and filtering them by time; and likewise events
/// in a scope's sessions, users or types ([`scope_index`]).
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
/// events after its end. A `since` whose events are stamped in seq order
/// has a floor that bounds the walk whatever the range holds, and takes
/// the walk ([`range_index`]).
pub(crate) const RANGE_WALK_MAX: i64 = 10_000;

/// The index to walk for `query`: its time range's ([`range_index`]), else
/// its caller's scope's ([`scope_index`]); `None` leaves the choice to
/// SQLite. A query for one session or one user walks that one's index,
/// bounded by its events, so it is left alone. `floored`: the query's
/// `since` has a floor ([`crate::stamps::since_floor`]), which bounds the
/// newest-first walk by itself.
pub(crate) fn query_index(
    conn: &Connection,
    query: &EventQuery,
    floored: bool,
) -> rusqlite::Result<Option<Walk>> {
    if query.session_id.is_some() || query.user_id.is_some() {
        return Ok(None);
    }
    match range_index(conn, query, floored)? {
        Some(index) => Ok(Some(Walk::Index(index))),
        None => scope_index(conn, &query.scope, query.event_type.is_some(), 0),
    }
}

/// The index of a `since` range.
const SINCE_INDEX: &str = "ix_events_timestamp";

/// The lists of a scope that have an index of their own: sessions and users
/// chunked ([`chunks`]), types not.
const SCOPE_LISTS: [(ScopeField, Option<Keyed>); 3] = [
    (ScopeField::SessionId, Some(Keyed::Session)),
    (ScopeField::UserId, Some(Keyed::User)),
    (ScopeField::EventType, None),
];

/// The index of a scope's types.
const TYPE_INDEX: &str = "ix_events_type_seq";

/// The walk through the scope list (sessions, users or types) whose values
/// hold the fewest events from `from_seq` on, when that is at most
/// [`RANGE_WALK_MAX`]; `None` otherwise. A teacher's token scoped to a
/// class's sessions asking for a type made SQLite walk that type's events
/// newest first (it prefers an index that gives the `seq` order to one
/// that needs a sort, and knows no counts), passing every event of the type
/// outside the class: 0.3-0.8 s per call at 1,000,000 events, growing with
/// the data. Through the sessions' chunks the query reads their events and
/// sorts at most this many. The type list is skipped when the query or
/// filter names types (`typed`); the caller skips the whole choice when it
/// names a session or a user.
pub(crate) fn scope_index(
    conn: &Connection,
    scope: &Scope,
    typed: bool,
    from_seq: i64,
) -> rusqlite::Result<Option<Walk>> {
    let mut fewest: Option<(i64, Walk)> = None;
    for (field, keyed) in SCOPE_LISTS {
        if field == ScopeField::EventType && typed {
            continue;
        }
        // An empty list allows nothing: the store answers without asking.
        let Some(values) = scope.list(field).filter(|v| !v.is_empty()) else {
            continue;
        };
        let marks = vec!["?"; values.len()].join(", ");
        let mut condition = format!("{} IN ({marks})", field.name());
        let mut args: Vec<Value> = values.iter().map(|v| Value::Text(v.clone())).collect();
        let walk = match keyed {
            Some(key) => {
                let names: Vec<&str> = values.iter().map(String::as_str).collect();
                let found = chunks::chunks_of(conn, key, &names, from_seq)?;
                chunks::push_chunks(&mut condition, &mut args, &found);
                Walk::Chunks(key, found)
            }
            None => Walk::Index(TYPE_INDEX),
        };
        let n = count_up_to_cap(conn, Some(walk.index()), &condition, args)?;
        if n <= RANGE_WALK_MAX && fewest.as_ref().is_none_or(|(least, _)| n < *least) {
            fewest = Some((n, walk));
        }
    }
    Ok(fewest.map(|(_, walk)| walk))
}

/// The index to walk for `query`, when its time range holds at most
/// [`RANGE_WALK_MAX`] events; `None` otherwise. Asked only for a query
/// naming no session or user (see [`query_index`]).
///
/// A `since` with a floor (`floored`) is left to the newest-first walk,
/// which stops at the floor or after `limit` events, whichever comes
/// first: never more than the range's own index would read, and most
/// often far fewer, since that read takes the whole range and sorts it (at
/// 1,000,000 events, `GET /events?since=` a day ago, 8,300 events, took
/// 8.4 ms that way and 1.1 ms down to the floor, HTTP included).
fn range_index(
    conn: &Connection,
    query: &EventQuery,
    floored: bool,
) -> rusqlite::Result<Option<&'static str>> {
    if let Some(since) = query.since.filter(|_| !floored) {
        if holds_few(conn, "timestamp > ?", &[since.to_string()])? {
            return Ok(Some(SINCE_INDEX));
        }
    }
    let from = query.occurred_since.map(|t| t.to_string());
    let before = query.occurred_before.map(|t| t.to_string());
    let few = match (&from, &before) {
        (None, None) => false,
        (Some(from), None) => holds_few(conn, "occurred_at >= ?", std::slice::from_ref(from))?,
        (None, Some(before)) => holds_few(conn, "occurred_at < ?", std::slice::from_ref(before))?,
        (Some(from), Some(before)) => holds_few(
            conn,
            "occurred_at >= ? AND occurred_at < ?",
            &[from.clone(), before.clone()],
        )?,
    };
    Ok(few.then_some("ix_events_occurred"))
}

/// Whether at most [`RANGE_WALK_MAX`] events meet `condition` (fixed text
/// whose `?` marks take `args` in order), counted through the index of its
/// column.
fn holds_few(conn: &Connection, condition: &str, args: &[String]) -> rusqlite::Result<bool> {
    let args = args.iter().map(|a| Value::Text(a.clone())).collect();
    Ok(count_up_to_cap(conn, None, condition, args)? <= RANGE_WALK_MAX)
}

/// How many events meet `condition` (fixed text whose `?` marks take `args`
/// in order), counting no further than one past [`RANGE_WALK_MAX`]: a walk
/// of at most that many entries of `index` (or, when `None`, of the index
/// of the condition's column), which holds every value the count needs.
fn count_up_to_cap(
    conn: &Connection,
    index: Option<&str>,
    condition: &str,
    mut args: Vec<Value>,
) -> rusqlite::Result<i64> {
    let indexed = index
        .map(|i| format!(" INDEXED BY {i}"))
        .unwrap_or_default();
    let sql =
        format!("SELECT COUNT(*) FROM (SELECT 1 FROM events{indexed} WHERE {condition} LIMIT ?)");
    let mut stmt = conn.prepare_cached(&sql)?;
    args.push(Value::Integer(RANGE_WALK_MAX + 1));
    stmt.query_row(rusqlite::params_from_iter(args), |r| r.get(0))
}
