//! Whether events are stamped in seq order, and from which seq on: what lets
//! a `since` query stop walking at the first event stamped after it.
//!
//! The service stamps the events it accepts in seq order, so an event stamped
//! after an instant is, but for exceptions, never older by seq than the
//! first one stamped after it. The exceptions are events appended with a
//! timestamp below one appended before (an import of old events, a clock set
//! back across a restart): the writer records the highest such seq, the last
//! break, in `stamp_order`. Every event above the last break is stamped no
//! earlier than every event below it, so a `since` query whose first event
//! stamped after `since` lies above the last break needs no event below that
//! one: a type's events are walked from the newest down to it, not to the
//! type's oldest.

use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// The newest timestamp the writer has seen (stored, or appended in this
/// process, committed or not): an event appended with an earlier one is a
/// break. Used on the writer's connection only.
#[derive(Debug, Default)]
pub(crate) struct StampOrder {
    newest: Mutex<String>,
}

impl StampOrder {
    /// The order as the stored events leave it: the newest of their
    /// timestamps, read through the timestamp index.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let newest: Option<String> =
            conn.query_row("SELECT MAX(timestamp) FROM events", [], |r| r.get(0))?;
        Ok(Self {
            newest: Mutex::new(newest.unwrap_or_default()),
        })
    }

    /// The newest timestamp, held for one batch of appends: one lock per
    /// batch, not per event.
    pub(crate) fn lock(&self) -> Newest<'_> {
        // A panic elsewhere cannot leave the string half written.
        Newest(
            self.newest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The writer's hold on [`StampOrder`] while it appends a batch.
pub(crate) struct Newest<'a>(MutexGuard<'a, String>);

impl Newest<'_> {
    /// Notes the timestamp `stamp` (as stored) of an event being appended;
    /// `true` when it is earlier than one seen before: the event is a break.
    /// Text order is the order every query compares timestamps in.
    pub(crate) fn is_break(&mut self, stamp: &str) -> bool {
        if stamp < self.0.as_str() {
            return true;
        }
        self.0.clear();
        self.0.push_str(stamp);
        false
    }
}

/// Records `seq` as the last break, in the transaction that appends it.
pub(crate) fn record_break(tx: &Transaction<'_>, seq: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE stamp_order SET last_break = MAX(last_break, ?1) WHERE id = 1")?
        .execute(params![seq])?;
    Ok(())
}

/// The lowest seq an event stamped after `since` (as stored) can have: the
/// seq of the first event stamped after it, when that lies above the last
/// break; `None` when no event is stamped after `since` or the order is
/// broken above it. Two lookups through indexes.
pub(crate) fn since_floor(conn: &Connection, since: &str) -> rusqlite::Result<Option<i64>> {
    let first: Option<i64> = conn
        .prepare_cached(
            "SELECT seq FROM events INDEXED BY ix_events_timestamp
             WHERE timestamp > ?1 ORDER BY timestamp, seq LIMIT 1",
        )?
        .query_row([since], |r| r.get(0))
        .optional()?;
    let Some(first) = first else {
        return Ok(None);
    };
    let last_break: i64 = conn
        .prepare_cached("SELECT last_break FROM stamp_order WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    Ok((first > last_break).then_some(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_stamp_is_a_break_and_leaves_the_newest_alone() {
        let order = StampOrder::default();
        let mut order = order.lock();
        assert!(!order.is_break("2026-12-01T10:00:00.000000Z"));
        assert!(
            !order.is_break("2026-12-01T10:00:00.000000Z"),
            "a tie is in order"
        );
        assert!(order.is_break("2026-11-30T10:00:00.000000Z"));
        assert!(
            order.is_break("2026-11-30T11:00:00.000000Z"),
            "still before the newest"
        );
        assert!(!order.is_break("2026-12-01T10:00:00.000001Z"));
    }
}
