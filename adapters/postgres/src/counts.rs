//! Per-type and per-minute counts (`events_type_counts`,
//! `events_minute_counts`): read by `stats`, kept by the
//! statement triggers of schema version 2, built once here from the events
//! of a database written by an older version.

use std::time::Instant;

use chrono::{DateTime, Utc};
use ep_ports::{StoreError, Timestamp, TypeStats};
use tokio_postgres::GenericClient;

use crate::error::store_error;

/// Events stamped strictly after `since`: the minutes after its minute from
/// `events_minute_counts`, the rest of its own minute from the `ts` index
/// (at most a minute of events), whatever the table holds.
pub(crate) async fn since(
    client: &impl GenericClient,
    since: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let row = client
        .query_one(
            "SELECT (SELECT COALESCE(sum(n), 0)::bigint FROM events_minute_counts
                     WHERE minute > date_trunc('minute', $1::timestamptz, 'UTC'))
                  + (SELECT count(*) FROM events
                     WHERE ts > $1
                       AND ts < date_trunc('minute', $1::timestamptz, 'UTC') + interval '1 minute')",
            &[&since],
        )
        .await
        .map_err(|e| store_error(&e))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Every type's row, highest count first.
pub(crate) async fn read(client: &impl GenericClient) -> Result<Vec<TypeStats>, StoreError> {
    let rows = client
        .query(
            "SELECT event_type, n, last_ts FROM events_type_counts WHERE n > 0",
            &[],
        )
        .await
        .map_err(|e| store_error(&e))?;
    let mut by_type = rows
        .iter()
        .map(|row| {
            let name: &str = row.get(0);
            Ok(TypeStats {
                event_type: ep_ports::EventType::named(name).map_err(|e| {
                    StoreError::Corrupt(format!("unreadable event type in stats: {e}"))
                })?,
                count: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
                last_seen: Timestamp::from_datetime(row.get::<_, DateTime<Utc>>(2)),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    TypeStats::sort(&mut by_type);
    Ok(by_type)
}

/// Counts the stored events type by type into the empty table, logging
/// progress: each type is a walk of its part of the `(event_type, seq)`
/// index, the types found by skipping through that index.
pub(crate) async fn rebuild(client: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    let started = Instant::now();
    let types: Vec<String> = client
        .query(
            "WITH RECURSIVE t(event_type) AS (
                 (SELECT event_type FROM events ORDER BY event_type LIMIT 1)
                 UNION ALL
                 SELECT (SELECT e.event_type FROM events e
                         WHERE e.event_type > t.event_type ORDER BY e.event_type LIMIT 1)
                 FROM t WHERE t.event_type IS NOT NULL)
             SELECT event_type FROM t WHERE event_type IS NOT NULL",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if types.is_empty() {
        return Ok(());
    }
    tracing::info!(
        types = types.len(),
        "counting the stored events per type, once (a database written by an older version)"
    );
    let mut total = 0_i64;
    for (done, event_type) in types.iter().enumerate() {
        let row = client
            .query_one(
                "INSERT INTO events_type_counts (event_type, n, last_seq, last_ts)
                 SELECT $1, c.n, c.top, (SELECT ts FROM events WHERE seq = c.top)
                 FROM (SELECT count(*) AS n, max(seq) AS top
                       FROM events WHERE event_type = $1) c
                 RETURNING n",
                &[event_type],
            )
            .await?;
        let n: i64 = row.get(0);
        total += n;
        tracing::info!(
            event_type = %event_type,
            events = n,
            done = done + 1,
            of = types.len(),
            "counted"
        );
    }
    client
        .execute(
            "INSERT INTO events_minute_counts (minute, n)
             SELECT date_trunc('minute', ts, 'UTC'), count(*) FROM events GROUP BY 1",
            &[],
        )
        .await?;
    tracing::info!(
        events = total,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "per-type counts built"
    );
    Ok(())
}
