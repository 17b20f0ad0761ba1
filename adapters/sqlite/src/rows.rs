//! Reading an `events` row back into an `Event`.

use ep_ports::{Event, EventId, Payload, Timestamp};
use rusqlite::types::Type;
use rusqlite::Row;

/// The columns every event read selects, in the order [`event_from_row`] reads them.
pub(crate) const COLUMNS: &str =
    "seq, id, event_type, source, session_id, user_id, payload, timestamp, occurred_at";

fn corrupt(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, what.to_owned().into())
}

/// Decodes one row selected with [`COLUMNS`].
pub(crate) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let seq: i64 = row.get(0)?;
    let event_type: String = row.get(2)?;
    let payload: String = row.get(6)?;
    let timestamp: String = row.get(7)?;
    let occurred_at: Option<String> = row.get(8)?;
    Ok(Event {
        occurred_at: match occurred_at {
            None => None,
            Some(text) => Some(
                Timestamp::parse_canonical(&text)
                    .ok_or_else(|| corrupt(8, "unreadable occurred_at"))?,
            ),
        },
        seq: u64::try_from(seq).map_err(|_| corrupt(0, "negative seq"))?,
        id: EventId::new(row.get::<_, String>(1)?),
        event_type: ep_ports::EventType::named(&event_type)
            .map_err(|_| corrupt(2, "not an event type name"))?,
        source: row.get(3)?,
        session_id: row.get(4)?,
        user_id: row.get(5)?,
        payload: Payload::from_json(payload).map_err(|_| corrupt(6, "payload is not JSON"))?,
        timestamp: Timestamp::parse_canonical(&timestamp)
            .ok_or_else(|| corrupt(7, "unreadable timestamp"))?,
    })
}
