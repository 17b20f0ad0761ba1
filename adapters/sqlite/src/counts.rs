//! Per-type counts (`type_counts`) and per-minute counts (`minute_counts`),
//! kept in the transaction of every append and delete so that they can
//! never drift from the events: `stats` reads one row per type and one per
//! minute of the last hour instead of counting the table.

use std::time::Instant;

use ep_ports::{Event, Timestamp, TypeStats};
use rusqlite::{params, OptionalExtension, Transaction};

/// The minute of a canonical timestamp (`2026-12-03T23:35:26.123456Z`):
/// its first 16 characters, `2026-12-03T23:35`. Every timestamp of that
/// minute sorts after this key and before the next minute's.
fn minute_of(timestamp: &str) -> &str {
    timestamp.get(..16).unwrap_or(timestamp)
}

/// Microseconds in a minute: the span of one `minute_counts` row.
const MINUTE_MICROS: i64 = 60_000_000;

/// How many times each key comes, in order of first coming. Keys come in
/// time order or close to it, so the last one is looked at first.
fn count_each<K: PartialEq>(keys: impl Iterator<Item = K>) -> Vec<(K, i64)> {
    let mut counted: Vec<(K, i64)> = Vec::new();
    for key in keys {
        match counted.last_mut() {
            Some((k, n)) if *k == key => *n += 1,
            _ => match counted.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counted.push((key, 1)),
            },
        }
    }
    counted
}

/// Events per minute of `timestamps` (canonical texts).
fn minutes<'a>(timestamps: impl Iterator<Item = &'a str>) -> Vec<(&'a str, i64)> {
    count_each(timestamps.map(minute_of))
}

/// Events per minute of a stored batch, as `minute_counts` keys: grouped
/// by the minute's number, each key written once.
fn batch_minutes(stored: &[Event]) -> Vec<(String, i64)> {
    count_each(
        stored
            .iter()
            .map(|e| e.timestamp.as_micros().div_euclid(MINUTE_MICROS)),
    )
    .into_iter()
    .map(|(minute, n)| {
        let text = Timestamp::from_micros(minute * MINUTE_MICROS).to_string();
        (minute_of(&text).to_owned(), n)
    })
    .collect()
}

/// Deleted rows per type: `(event_type, events, highest seq)`.
fn tally(deleted: &[(i64, String, String)]) -> Vec<(&str, i64, i64)> {
    let mut by_type: Vec<(&str, i64, i64)> = Vec::new();
    for (seq, event_type, _) in deleted {
        match by_type.iter_mut().find(|(t, _, _)| t == event_type) {
            Some((_, n, top)) => {
                *n += 1;
                *top = (*top).max(*seq);
            }
            None => by_type.push((event_type, 1, *seq)),
        }
    }
    by_type
}

/// Counts a committed batch (events in seq order) in the same transaction.
pub(crate) fn add(tx: &Transaction<'_>, stored: &[Event]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO type_counts (event_type, count, last_seq, last_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (event_type) DO UPDATE SET
             count = count + excluded.count,
             last_seq = excluded.last_seq,
             last_seen = excluded.last_seen",
    )?;
    // Per type: events, and the last one (the batch is in seq order).
    let mut by_type: Vec<(&str, i64, &Event)> = Vec::new();
    for event in stored {
        let event_type = event.event_type.as_str();
        match by_type.iter_mut().find(|(t, _, _)| *t == event_type) {
            Some((_, n, last)) => {
                *n += 1;
                *last = event;
            }
            None => by_type.push((event_type, 1, event)),
        }
    }
    for (event_type, n, last) in by_type {
        upsert.execute(params![
            event_type,
            n,
            i64::try_from(last.seq).unwrap_or(i64::MAX),
            last.timestamp.to_string()
        ])?;
    }
    let mut per_minute = tx.prepare_cached(
        "INSERT INTO minute_counts (minute, count) VALUES (?1, ?2)
         ON CONFLICT (minute) DO UPDATE SET count = count + excluded.count",
    )?;
    for (minute, n) in batch_minutes(stored) {
        per_minute.execute(params![minute, n])?;
    }
    Ok(())
}

/// Uncounts deleted `(seq, type, timestamp)` rows in the same transaction:
/// a type (or minute) with none left loses its row; a type whose newest
/// event went gets its next newest from the `(event_type, seq)` index.
pub(crate) fn remove(
    tx: &Transaction<'_>,
    deleted: &[(i64, String, String)],
) -> rusqlite::Result<()> {
    let mut per_minute =
        tx.prepare_cached("UPDATE minute_counts SET count = count - ?2 WHERE minute = ?1")?;
    let mut empty_minute =
        tx.prepare_cached("DELETE FROM minute_counts WHERE minute = ?1 AND count <= 0")?;
    for (minute, n) in minutes(deleted.iter().map(|(_, _, t)| t.as_str())) {
        per_minute.execute(params![minute, n])?;
        empty_minute.execute([minute])?;
    }
    let mut lower = tx.prepare_cached(
        "UPDATE type_counts SET count = count - ?2 WHERE event_type = ?1 RETURNING count, last_seq",
    )?;
    let mut drop_row = tx.prepare_cached("DELETE FROM type_counts WHERE event_type = ?1")?;
    let mut newest = tx.prepare_cached(
        "SELECT seq, timestamp FROM events WHERE event_type = ?1 ORDER BY seq DESC LIMIT 1",
    )?;
    let mut renew = tx.prepare_cached(
        "UPDATE type_counts SET last_seq = ?2, last_seen = ?3 WHERE event_type = ?1",
    )?;
    for (event_type, n, top) in tally(deleted) {
        let Some((left, last_seq)) = lower
            .query_row(params![event_type, n], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?
        else {
            continue;
        };
        if left <= 0 {
            drop_row.execute([event_type])?;
        } else if top >= last_seq {
            let (seq, seen): (i64, String) =
                newest.query_row([event_type], |r| Ok((r.get(0)?, r.get(1)?)))?;
            renew.execute(params![event_type, seq, seen])?;
        }
    }
    Ok(())
}

/// Events stamped strictly after `since`: the minutes after its minute from
/// `minute_counts`, and the rest of its own minute from the timestamp
/// index (at most a minute of events), whatever the store holds.
pub(crate) fn since(tx: &Transaction<'_>, since: Timestamp) -> rusqlite::Result<u64> {
    let text = since.to_string();
    let minute = minute_of(&text);
    let later: i64 = tx
        .prepare_cached("SELECT COALESCE(SUM(count), 0) FROM minute_counts WHERE minute > ?1")?
        .query_row([minute], |r| r.get(0))?;
    let next = since
        .as_micros()
        .div_euclid(MINUTE_MICROS)
        .checked_add(1)
        .and_then(|m| m.checked_mul(MINUTE_MICROS))
        .filter(|&m| m <= Timestamp::MAX.as_micros());
    let rest: i64 = match next {
        Some(next) => {
            let next = Timestamp::from_micros(next).to_string();
            tx.prepare_cached(
                "SELECT COUNT(*) FROM events WHERE timestamp > ?1 AND timestamp < ?2",
            )?
            .query_row([text.as_str(), minute_of(&next)], |r| r.get(0))?
        }
        None => tx
            .prepare_cached("SELECT COUNT(*) FROM events WHERE timestamp > ?1")?
            .query_row([text.as_str()], |r| r.get(0))?,
    };
    Ok(u64::try_from(later + rest).unwrap_or(0))
}

/// Every type's row, highest count first.
pub(crate) fn read(tx: &Transaction<'_>) -> rusqlite::Result<Vec<TypeStats>> {
    let conversion = |what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            what.to_owned().into(),
        )
    };
    let mut rows = tx.prepare_cached("SELECT event_type, count, last_seen FROM type_counts")?;
    let mut by_type = rows
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .map(|row| {
            let (event_type, count, last_seen) = row?;
            Ok(TypeStats {
                event_type: ep_ports::EventType::named(&event_type)
                    .map_err(|_| conversion("not an event type name"))?,
                count: u64::try_from(count).unwrap_or(0),
                last_seen: Timestamp::parse_canonical(&last_seen)
                    .ok_or_else(|| conversion("unreadable timestamp"))?,
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    TypeStats::sort(&mut by_type);
    Ok(by_type)
}

/// Counts the stored events type by type into an empty `type_counts`: once,
/// when a database written by an older version is opened. Each type is a
/// walk of its part of the `(event_type, seq)` index; progress is logged.
pub(crate) fn rebuild(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let started = Instant::now();
    let mut next_type = tx.prepare(
        "SELECT event_type FROM events WHERE event_type > ?1 ORDER BY event_type LIMIT 1",
    )?;
    let mut types = Vec::new();
    let mut after = String::new();
    while let Some(t) = next_type
        .query_row([&after], |r| r.get::<_, String>(0))
        .optional()?
    {
        after.clone_from(&t);
        types.push(t);
    }
    if types.is_empty() {
        return Ok(());
    }
    tracing::info!(
        types = types.len(),
        "counting the stored events per type, once (a database written by an older version)"
    );
    let mut count = tx.prepare("SELECT COUNT(*), MAX(seq) FROM events WHERE event_type = ?1")?;
    let mut stamp = tx.prepare("SELECT timestamp FROM events WHERE seq = ?1")?;
    let mut insert = tx.prepare(
        "INSERT INTO type_counts (event_type, count, last_seq, last_seen) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut total = 0;
    for (done, event_type) in types.iter().enumerate() {
        let (n, top): (i64, i64) = count.query_row([event_type], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let seen: String = stamp.query_row([top], |r| r.get(0))?;
        insert.execute(params![event_type, n, top, seen])?;
        total += n;
        tracing::info!(
            event_type = %event_type,
            events = n,
            done = done + 1,
            of = types.len(),
            "counted"
        );
    }
    tx.execute_batch(
        "INSERT INTO minute_counts (minute, count)
         SELECT substr(timestamp, 1, 16), COUNT(*) FROM events GROUP BY 1",
    )?;
    tracing::info!(
        events = total,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "per-type counts built"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ep_ports::{EventId, EventType, Payload};

    fn at(text: &str) -> Event {
        Event {
            occurred_at: None,
            seq: 1,
            id: EventId::new(format!("evt_{text}")),
            event_type: EventType::TIMER_TICK,
            source: "t".into(),
            session_id: None,
            user_id: None,
            payload: Payload::empty(),
            timestamp: Timestamp::parse_canonical(text).expect("canonical"),
        }
    }

    #[test]
    fn a_batch_is_counted_under_the_keys_its_timestamps_begin_with() {
        let texts = [
            "2026-11-27T10:01:59.999999Z",
            "2026-11-27T10:02:00.000000Z",
            "2026-11-27T10:02:30.500000Z",
            "1969-12-31T23:59:30.000000Z",
            "2026-11-27T10:01:00.000000Z",
        ];
        let batch: Vec<Event> = texts.iter().map(|t| at(t)).collect();
        let expected = minutes(texts.iter().copied());
        let got = batch_minutes(&batch);
        assert_eq!(
            got.iter()
                .map(|(m, n)| (m.as_str(), *n))
                .collect::<Vec<_>>(),
            expected
        );
        assert_eq!(
            expected,
            vec![
                ("2026-11-27T10:01", 2),
                ("2026-11-27T10:02", 2),
                ("1969-12-31T23:59", 1)
            ]
        );
    }
}
