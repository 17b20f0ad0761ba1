//! Which index a query of events walks: a short time range's own index, or
//! the newest-first walk the planner chooses by itself.

use deadpool_postgres::GenericClient;
use ep_ports::{EventQuery, StoreError};
use tokio_postgres::types::ToSql;

use crate::error::store_error;

/// Events in a query's time range (of its type, when it names one) up to
/// which the query reads that range through its index and sorts what it
/// finds by seq, instead of walking the events (or one type's) newest
/// first and filtering them by time.
///
/// Without fresh statistics, and with the generic plan of a statement
/// prepared once and run with any bound instant, the planner walks the
/// primary key newest first for every `ORDER BY seq DESC LIMIT` query
/// without a session or user: quick when the range holds `limit` events
/// among the newest, a walk past every older event when it holds fewer.
/// On 2,000,000 events just filled, `since=` now took 0.25 s, and
/// `occurred_since=` 0.21 s. The most a query asks for (1,000): a range
/// that holds more holds `limit` events among the newest when it reaches
/// them (`since`, `occurred_since` without an end), so the walk is short.
/// Counting up to this many through the index costs under a millisecond,
/// although each entry of a page not yet all-visible is checked in the
/// table (1,001 entries took 0.44 ms in `EXPLAIN ANALYZE` on 2M events
/// just filled). A range of more than this many that ends in the past
/// (`occurred_before`), or an `occurred_*` range of one rare type, is
/// still left to the planner.
pub(crate) const RANGE_WALK_MAX: i64 = 1_000;

/// A time range whose events are few enough to read through its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Narrow {
    /// `ts > since`: read through `events_ts`.
    Received,
    /// The `occurred_at` bounds: read through `events_occurred`.
    Occurred,
}

impl Narrow {
    /// The column whose order reads the range through its index.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::Received => "ts",
            Self::Occurred => "occurred_at",
        }
    }
}

/// The range of `query` to read through its index, if it holds at most
/// [`RANGE_WALK_MAX`] events; `None` leaves the plan to PostgreSQL. The
/// count and the read are two statements: the read counts again what it
/// read, and gives way to the usual plan if events came into the range
/// meanwhile (see `store::read_narrow`). A query for one session or one
/// user walks that one's index, bounded by its events, so it is left
/// alone.
pub(crate) async fn narrow_range(
    client: &impl GenericClient,
    query: &EventQuery,
) -> Result<Option<Narrow>, StoreError> {
    if query.session_id.is_some() || query.user_id.is_some() {
        return Ok(None);
    }
    if let Some(since) = query.since {
        let since = since.to_datetime();
        let few = match query.event_type {
            // (event_type, ts) is indexed: count only the type's events.
            Some(t) => {
                let t = t.as_str();
                holds_few(
                    client,
                    "ts > $1 AND event_type = $3",
                    "ts",
                    &since,
                    Some(&t),
                )
                .await?
            }
            None => holds_few(client, "ts > $1", "ts", &since, None).await?,
        };
        if few {
            return Ok(Some(Narrow::Received));
        }
    }
    let from = query.occurred_since.map(|t| t.to_datetime());
    let before = query.occurred_before.map(|t| t.to_datetime());
    let (condition, first, second) = match (&from, &before) {
        (None, None) => return Ok(None),
        (Some(from), None) => ("occurred_at >= $1", from, None),
        (None, Some(before)) => ("occurred_at < $1", before, None),
        (Some(from), Some(before)) => {
            ("occurred_at >= $1 AND occurred_at < $3", from, Some(before))
        }
    };
    let few = holds_few(
        client,
        condition,
        "occurred_at",
        first,
        second.map(|b| b as &(dyn ToSql + Sync)),
    )
    .await?;
    Ok(few.then_some(Narrow::Occurred))
}

/// Whether at most [`RANGE_WALK_MAX`] events meet `condition` (fixed text
/// whose `$1` is `first` and `$3`, if any, `second`), counted in `column`'s
/// order so that its index is walked.
async fn holds_few(
    client: &impl GenericClient,
    condition: &str,
    column: &str,
    first: &(dyn ToSql + Sync),
    second: Option<&(dyn ToSql + Sync)>,
) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE {condition} ORDER BY {column} LIMIT $2) r"
    );
    let cap = RANGE_WALK_MAX + 1;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![first, &cap];
    params.extend(second);
    let statement = client
        .prepare_cached(&sql)
        .await
        .map_err(|e| store_error(&e))?;
    let n: i64 = client
        .query_one(&statement, &params)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| store_error(&e))?;
    Ok(n <= RANGE_WALK_MAX)
}
