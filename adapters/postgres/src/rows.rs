//! Reading an event back from a row.

use chrono::{DateTime, Utc};
use ep_ports::{Event, EventId, Payload, StoreError, Timestamp};
use tokio_postgres::Row;

/// The columns every read selects, in the order [`event_from_row`] reads them.
pub(crate) const COLUMNS: &str =
    "seq, id, event_type, source, session_id, user_id, payload::text, ts, occurred_at";

/// How many columns [`COLUMNS`] lists: the index of a column a query adds
/// after them.
pub(crate) const COLUMN_COUNT: usize = 9;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("unreadable event row: {what}"))
}

/// The event in a row of [`COLUMNS`].
pub(crate) fn event_from_row(row: &Row) -> Result<Event, StoreError> {
    let get_err = |e: tokio_postgres::Error| corrupt(e);
    let seq: i64 = row.try_get(0).map_err(get_err)?;
    let event_type: &str = row.try_get(2).map_err(get_err)?;
    let payload: String = row.try_get(6).map_err(get_err)?;
    let ts: DateTime<Utc> = row.try_get(7).map_err(get_err)?;
    let occurred_at: Option<DateTime<Utc>> = row.try_get(8).map_err(get_err)?;
    Ok(Event {
        occurred_at: occurred_at.map(Timestamp::from_datetime),
        id: EventId::new(row.try_get::<_, String>(1).map_err(get_err)?),
        event_type: ep_ports::EventType::named(event_type).map_err(corrupt)?,
        source: row.try_get(3).map_err(get_err)?,
        session_id: row.try_get(4).map_err(get_err)?,
        user_id: row.try_get(5).map_err(get_err)?,
        payload: Payload::from_json(payload).map_err(corrupt)?,
        timestamp: Timestamp::from_datetime(ts),
        seq: u64::try_from(seq).map_err(corrupt)?,
    })
}
