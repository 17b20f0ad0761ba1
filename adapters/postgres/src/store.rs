//! The `EventStore` implementation.
//!
//! **Why seq comes from a counter row, not a sequence.** A PostgreSQL
//! sequence hands out numbers when a transaction asks, not when it commits:
//! a transaction holding seq 11 can commit after one holding 12, and a
//! subscriber that resumed after 12 in between skips 11 forever. Here each
//! append is ONE statement that first updates the single row of
//! `events_seq` (adding the batch's size) and then inserts the batch with
//! the numbers it got. The row's lock is held until the statement commits,
//! so appends of every node commit one after another in seq order: once a
//! seq is visible, every lower one is. The numbers are also dense (a failed
//! append rolls the counter back), which lets a node tell a lost broadcast
//! from silence. The cost is one row lock per batch, not per event: nodes
//! group their events into batches, so appends of several nodes queue on
//! the lock for one commit each (measured in the README).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use ep_ports::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, EventStore, NewEvent, Scope,
    Stats, StoreError, Timestamp,
};
use tokio_postgres::types::ToSql;

use crate::counts;
use crate::error::{describe, is_unique_violation, pool_error, store_error};
use crate::rows::{event_from_row, COLUMNS, COLUMN_COUNT};

/// The append statement: the counter row first, then the batch with the
/// numbers it gave, in one statement (one round trip, one commit).
const APPEND: &str = "WITH counter AS (
        UPDATE events_seq SET last_seq = last_seq + $1 RETURNING last_seq - $1 AS base
    )
    INSERT INTO events (seq, id, event_type, source, session_id, user_id, payload, ts, occurred_at,
                        idempotency_key)
    SELECT counter.base + b.n, b.id, b.event_type, b.source, b.session_id, b.user_id,
           b.payload::json, b.ts, b.occurred_at, b.idempotency_key
    FROM counter,
         UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::timestamptz[], $9::timestamptz[], $10::text[])
             WITH ORDINALITY AS b(id, event_type, source, session_id, user_id, payload, ts, occurred_at,
                                  idempotency_key, n)
    RETURNING seq";

/// An event store in a PostgreSQL database, shared by every node.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Host, port and database, for logs (no credentials).
    target: Arc<str>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_i64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn instant(t: Timestamp) -> DateTime<Utc> {
    t.to_datetime()
}

/// The id a UNIQUE violation names (`Key (id)=(evt_...) already exists.`).
fn duplicate_id(e: &tokio_postgres::Error, batch: &[NewEvent]) -> EventId {
    let named = e.as_db_error().and_then(|db| db.detail()).and_then(|d| {
        d.split_once("=(")?
            .1
            .split_once(')')
            .map(|(id, _)| id.to_owned())
    });
    match named {
        Some(id) => EventId::new(id),
        None => batch
            .first()
            .map_or_else(|| EventId::new(String::new()), |e| e.id.clone()),
    }
}

impl PostgresStore {
    pub(crate) fn new(pool: Pool, target: String) -> Self {
        Self {
            pool,
            target: target.into(),
        }
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| pool_error(&e))
    }

    /// Runs a read of rows of [`COLUMNS`].
    async fn read_events(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Event>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| store_error(&e))?;
        let rows = client
            .query(&statement, params)
            .await
            .map_err(|e| store_error(&e))?;
        rows.iter().map(event_from_row).collect()
    }
}

/// `WHERE` conditions with numbered parameters, built from fixed text only:
/// every client value is a bound parameter.
struct Conditions {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Conditions {
    fn new() -> Self {
        Self {
            sql: String::from(" WHERE TRUE"),
            params: Vec::new(),
        }
    }

    fn add(&mut self, condition: &str, value: Box<dyn ToSql + Sync + Send>) {
        self.params.push(value);
        self.sql.push_str(" AND ");
        self.sql
            .push_str(&condition.replace('?', &format!("${}", self.params.len())));
    }

    /// The caller's scope: each present list as `column = ANY(...)`.
    fn add_scope(&mut self, scope: &Scope) {
        for (field, list) in scope.lists() {
            if let Some(values) = list {
                self.add(
                    &format!("{} = ANY(?)", field.name()),
                    Box::new(values.clone()),
                );
            }
        }
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The conditions of `query`, its limit the last parameter.
fn conditions(query: &EventQuery) -> Conditions {
    let mut c = Conditions::new();
    if let Some(t) = query.event_type {
        c.add("event_type = ?", Box::new(t.as_str().to_owned()));
    }
    if let Some(s) = &query.session_id {
        c.add("session_id = ?", Box::new(s.clone()));
    }
    if let Some(u) = &query.user_id {
        c.add("user_id = ?", Box::new(u.clone()));
    }
    if let Some(from) = query.occurred_since {
        c.add("occurred_at >= ?", Box::new(instant(from)));
    }
    if let Some(before) = query.occurred_before {
        c.add("occurred_at < ?", Box::new(instant(before)));
    }
    if let Some(since) = query.since {
        c.add("ts > ?", Box::new(instant(since)));
    }
    c.add_scope(&query.scope);
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    c.params.push(Box::new(limit));
    c
}

/// The events `query` asks for, read through the index of its time range
/// (`narrow`): at most one more than `RANGE_WALK_MAX` of them in the
/// index's order, counted in the same statement. `None` when the range
/// holds more: events came into it since it was counted and the read's
/// LIMIT cut some, so the caller asks again the usual way.
pub(crate) async fn read_narrow(
    client: &deadpool_postgres::Object,
    query: &EventQuery,
    narrow: crate::plan::Narrow,
) -> Result<Option<Vec<Event>>, StoreError> {
    let c = conditions(query);
    let cap = crate::plan::RANGE_WALK_MAX + 1;
    // Only fixed SQL text is built here; every client value is a bound
    // parameter.
    let sql = format!(
        "SELECT r.*, count(*) OVER () FROM
             (SELECT {COLUMNS} FROM events{} ORDER BY {} LIMIT {cap}) r
         ORDER BY seq DESC LIMIT ${}",
        c.sql,
        narrow.column(),
        c.params.len()
    );
    let rows = query_on(client, &sql, &c.refs()).await?;
    let held: i64 = match rows.first() {
        Some(row) => row.try_get(COLUMN_COUNT).map_err(|e| store_error(&e))?,
        None => 0,
    };
    if held >= cap {
        return Ok(None);
    }
    rows.iter()
        .map(event_from_row)
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Prepares `sql` (cached) on `client` and runs it with `params`.
async fn query_on(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let statement = client
        .prepare_cached(sql)
        .await
        .map_err(|e| store_error(&e))?;
    client
        .query(&statement, params)
        .await
        .map_err(|e| store_error(&e))
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        if batch.iter().all(|e| e.idempotency.is_none()) {
            let client = self.client().await?;
            return insert(&client, batch).await;
        }
        self.append_keyed(batch).await
    }

    async fn append_unless_held(&self, batch: Vec<NewEvent>) -> Result<Appended, StoreError> {
        if batch.is_empty() {
            return Ok(Appended::Stored(Vec::new()));
        }
        let mut client = self.client().await?;
        let (tx, holder) = keyed_transaction(&mut client).await?;
        let mut held = Vec::new();
        for (i, event) in batch.iter().enumerate() {
            if let Some(idempotency) = &event.idempotency {
                if let Some(holder) = key_holder(&tx, &holder, idempotency).await? {
                    held.push((i, holder));
                }
            }
        }
        if !held.is_empty() {
            // Dropping the transaction rolls it back: it wrote nothing.
            return Ok(Appended::Held(held));
        }
        let stored = insert(&tx, batch).await?;
        tx.commit().await.map_err(|e| store_error(&e))?;
        Ok(Appended::Stored(stored))
    }

    async fn get(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE id = $1");
        let id = id.as_str();
        Ok(self.read_events(&sql, &[&id]).await?.into_iter().next())
    }

    async fn query(&self, query: EventQuery) -> Result<Vec<Event>, StoreError> {
        if query.scope.allows_nothing() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        if let Some(narrow) = crate::plan::narrow_range(&client, &query).await? {
            if let Some(events) = read_narrow(&client, &query, narrow).await? {
                return Ok(events);
            }
        }
        let c = conditions(&query);
        // Only fixed SQL text is built here; every client value is a bound
        // parameter.
        let sql = format!(
            "SELECT {COLUMNS} FROM events{} ORDER BY seq DESC LIMIT ${}",
            c.sql,
            c.params.len()
        );
        let rows = query_on(&client, &sql, &c.refs()).await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn after(
        &self,
        after_seq: u64,
        filter: EventFilter,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if filter.matches_nothing() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut c = Conditions::new();
        c.add("seq > ?", Box::new(to_i64(after_seq)));
        if let Some(types) = filter.event_types {
            let names: Vec<String> = types.iter().map(|t| t.as_str().to_owned()).collect();
            c.add("event_type = ANY(?)", Box::new(names));
        }
        if let Some(s) = filter.session_id {
            c.add("session_id = ?", Box::new(s));
        }
        if let Some(u) = filter.user_id {
            c.add("user_id = ?", Box::new(u));
        }
        c.add_scope(&filter.scope);
        c.params
            .push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {COLUMNS} FROM events{} ORDER BY seq ASC LIMIT ${}",
            c.sql,
            c.params.len()
        );
        self.read_events(&sql, &c.refs()).await
    }

    async fn stats(&self, since: Timestamp) -> Result<Stats, StoreError> {
        let mut client = self.client().await?;
        // One snapshot for every figure.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| store_error(&e))?;
        let by_type = counts::read(&*tx).await?;
        // The rest of `since`'s minute: a walk of the `ts` index. The
        // planner must not pick a scan of the table, which it does while
        // the table has no statistics yet (a new or freshly filled one:
        // 100 ms at 1M events against 0.1 ms), nor compile the query (JIT
        // costs tens of ms; the estimates grow with the table).
        tx.batch_execute(
            "SET LOCAL enable_seqscan = off;
             SET LOCAL enable_bitmapscan = off;
             SET LOCAL max_parallel_workers_per_gather = 0;
             SET LOCAL jit = off;",
        )
        .await
        .map_err(|e| store_error(&e))?;
        let since_count = counts::since(&*tx, instant(since)).await?;
        tx.commit().await.map_err(|e| store_error(&e))?;
        Ok(Stats {
            total_events: by_type.iter().map(|t| t.count).sum(),
            events_since: since_count,
            by_type,
        })
    }

    async fn delete_some(&self, what: Deletion, limit: usize) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| store_error(&e))?;
        // The counter row first, as appends take it: the step's trigger then
        // updates type counts in a turn of its own, never crossing an
        // append's (no deadlock), and an append waits for one step at most.
        // No JIT: the estimates of a walk over a large table pass its
        // threshold, and compiling costs more than the step.
        tx.batch_execute("SET LOCAL jit = off; SELECT last_seq FROM events_seq FOR UPDATE;")
            .await
            .map_err(|e| store_error(&e))?;
        // Each selection walks the index that leads with its narrowest
        // condition: (user_id, seq), (event_type, ts), ts, or seq.
        let order = if what.before.is_some() && what.user_id.is_none() {
            "ts"
        } else {
            "seq"
        };
        let mut c = Conditions::new();
        c.add("seq <= ?", Box::new(to_i64(what.through_seq)));
        if let Some(user) = what.user_id {
            c.add("user_id = ?", Box::new(user));
        }
        if let Some(t) = what.event_type {
            c.add("event_type = ?", Box::new(t.as_str().to_owned()));
        }
        if let Some(t) = what.before {
            c.add("ts < ?", Box::new(instant(t)));
        }
        c.params
            .push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events{} ORDER BY {order} LIMIT ${})",
            c.sql,
            c.params.len()
        );
        let deleted = tx
            .execute(sql.as_str(), &c.refs())
            .await
            .map_err(|e| store_error(&e))?;
        tx.commit().await.map_err(|e| store_error(&e))?;
        Ok(deleted)
    }

    async fn last_seq(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT last_seq FROM events_seq", &[])
            .await
            .map_err(|e| store_error(&e))?;
        Ok(from_i64(row.get(0)))
    }

    /// Every promise of `append` holds across processes: the counter row
    /// serializes their commits.
    fn shared_by_nodes(&self) -> bool {
        true
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        // A new version of the counter row: a real write, taking the same
        // lock an append takes, changing nothing.
        let client = self.client().await?;
        client
            .execute("UPDATE events_seq SET last_seq = last_seq", &[])
            .await
            .map(drop)
            .map_err(|e| store_error(&e))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| StoreError::Unavailable(describe(&e)))
    }

    /// Closes the pool: connections in use close when they are given back,
    /// and later calls fail with `Unavailable`. The server has every
    /// committed event already.
    async fn close(&self) -> Result<(), StoreError> {
        self.pool.close();
        tracing::info!(database = %self.target, "PostgreSQL event store closed");
        Ok(())
    }
}

/// Inserts a batch with the seqs the counter row gives (one statement).
async fn insert(
    client: &impl GenericClient,
    batch: Vec<NewEvent>,
) -> Result<Vec<Event>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let n = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
    let types: Vec<&str> = batch.iter().map(|e| e.event_type.as_str()).collect();
    let sources: Vec<&str> = batch.iter().map(|e| e.source.as_str()).collect();
    let sessions: Vec<Option<&str>> = batch.iter().map(|e| e.session_id.as_deref()).collect();
    let users: Vec<Option<&str>> = batch.iter().map(|e| e.user_id.as_deref()).collect();
    let payloads: Vec<&str> = batch.iter().map(|e| e.payload.as_str()).collect();
    let stamps: Vec<DateTime<Utc>> = batch.iter().map(|e| instant(e.timestamp)).collect();
    let occurred: Vec<Option<DateTime<Utc>>> =
        batch.iter().map(|e| e.occurred_at.map(instant)).collect();
    let keys: Vec<Option<&str>> = batch
        .iter()
        .map(|e| e.idempotency.as_ref().map(|i| i.key.as_str()))
        .collect();
    let statement = client
        .prepare_cached(APPEND)
        .await
        .map_err(|e| store_error(&e))?;
    let rows = client
        .query(
            &statement,
            &[
                &n, &ids, &types, &sources, &sessions, &users, &payloads, &stamps, &occurred, &keys,
            ],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                let constraint = e.as_db_error().and_then(|d| d.constraint());
                if constraint == Some("events_pkey") {
                    return StoreError::Corrupt(
                        "events_seq is behind the events table (a seq already used)".into(),
                    );
                }
                StoreError::DuplicateId(duplicate_id(&e, &batch))
            } else {
                store_error(&e)
            }
        })?;
    // Seqs are the counter's base + 1..=n; the lowest returned is the first.
    let first = rows
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .min()
        .map(from_i64)
        .ok_or_else(|| StoreError::Unavailable("the append stored nothing".into()))?;
    Ok(batch
        .into_iter()
        .zip(first..)
        .map(|(event, seq)| event.into_event(seq))
        .collect())
}

/// A transaction of an append with idempotency keys, under the counter
/// row's lock (which every append takes, from any node: no key can be
/// taken between its look-ups and its insert), and the look-up of a key's
/// holder prepared in it.
async fn keyed_transaction(
    client: &mut deadpool_postgres::Client,
) -> Result<
    (
        deadpool_postgres::Transaction<'_>,
        tokio_postgres::Statement,
    ),
    StoreError,
> {
    let tx = client.transaction().await.map_err(|e| store_error(&e))?;
    tx.execute("SELECT last_seq FROM events_seq FOR UPDATE", &[])
        .await
        .map_err(|e| store_error(&e))?;
    let holder = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events
             WHERE idempotency_key = $1 AND ts >= $2 ORDER BY seq LIMIT 1"
        ))
        .await
        .map_err(|e| store_error(&e))?;
    Ok((tx, holder))
}

/// The event stored before that holds `idempotency`'s key within its
/// window, looked up with `holder` (from [`keyed_transaction`]).
async fn key_holder(
    tx: &deadpool_postgres::Transaction<'_>,
    holder: &tokio_postgres::Statement,
    idempotency: &ep_ports::IdempotencyKey,
) -> Result<Option<Event>, StoreError> {
    let since = instant(idempotency.since);
    tx.query_opt(holder, &[&idempotency.key, &since])
        .await
        .map_err(|e| store_error(&e))?
        .map(|row| event_from_row(&row))
        .transpose()
}

/// Where each event of a keyed batch comes from.
enum Slot {
    /// Stored before, holding the key.
    Held(Event),
    /// Inserted now, at this position of the insert.
    New(usize),
    /// The same key as the event at this earlier position of the batch.
    SameAs(usize),
}

impl PostgresStore {
    /// An append with idempotency keys: under the counter row's lock (which
    /// every append takes, from any node), each key is looked up, and only
    /// the events whose key no event holds are inserted.
    async fn append_keyed(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        let mut client = self.client().await?;
        let (tx, holder) = keyed_transaction(&mut client).await?;
        let mut slots = Vec::with_capacity(batch.len());
        let mut fresh: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut to_insert = Vec::with_capacity(batch.len());
        for event in batch {
            if let Some(idempotency) = &event.idempotency {
                if let Some(&at) = fresh.get(&idempotency.key) {
                    slots.push(Slot::SameAs(at));
                    continue;
                }
                if let Some(found) = key_holder(&tx, &holder, idempotency).await? {
                    slots.push(Slot::Held(found));
                    continue;
                }
                fresh.insert(idempotency.key.clone(), slots.len());
            }
            slots.push(Slot::New(to_insert.len()));
            to_insert.push(event);
        }
        let inserted = insert(&tx, to_insert).await?;
        tx.commit().await.map_err(|e| store_error(&e))?;
        let mut out: Vec<Event> = Vec::with_capacity(slots.len());
        for slot in slots {
            let event = match slot {
                Slot::Held(event) => event,
                Slot::New(i) => inserted.get(i).cloned().ok_or_else(|| {
                    StoreError::Unavailable("the append stored fewer events than given".into())
                })?,
                Slot::SameAs(at) => out[at].clone(),
            };
            out.push(event);
        }
        Ok(out)
    }
}
