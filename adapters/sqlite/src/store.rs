//! The SQLite `EventStore`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ep_ports::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, EventStore, NewEvent, Scope,
    Stats, StoreError, Timestamp,
};
use rusqlite::{params, params_from_iter, types::Value, OptionalExtension};
use tokio_rusqlite::Connection;

use crate::admit::admit;
use crate::checkpoint::{self, Checkpointer, WalProgress};
use crate::chunks;
use crate::counts;
use crate::error::{call_error, is_unique_violation, store_error};
use crate::open::{configure, file_identity, prepare_file, Durability, OpenError, Role};
use crate::plan;
use crate::rows::{event_from_row, COLUMNS};
use crate::schema::migrate;
use crate::space::{available_bytes, PROBE_RESERVE_BYTES};
use crate::stamps::{self, StampOrder};

/// Events in one SQLite file.
pub struct SqliteStore {
    /// Appends and deletes: one connection, so writes never wait on each other's locks.
    writer: Connection,
    /// Gets, queries, stats, ping: reads a snapshot while the writer writes.
    reader: Connection,
    path: PathBuf,
    /// The file's (device, inode) when opened: if the path stops naming that
    /// file (deleted or replaced), writes would go to a file nobody can find
    /// again, so `ping` reports the store unavailable.
    identity: (u64, u64),
    /// The writer's and the checkpointer's progress through the WAL.
    wal: Arc<WalProgress>,
    /// Keeps the WAL bounded; stops when the store closes or is dropped.
    checkpointer: Checkpointer,
    /// The newest timestamp appended, for the writer to notice an event
    /// stamped out of seq order.
    stamps: Arc<StampOrder>,
    /// The side-table rows of the newest chunk already written.
    recorded: Arc<chunks::Recorded>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    ///
    /// # Errors
    /// `OpenError` naming the path and the cause.
    pub async fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        let identity = prepare_file(&path)?;
        let sqlite_err = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let writer = open_writer(&path).await.map_err(sqlite_err)?;
        let closed = || OpenError::Sqlite {
            path: path.clone(),
            source: rusqlite::Error::InvalidPath(path.clone()),
        };
        let at = path.clone();
        let stamps = writer
            .call(move |conn| {
                // This connection's thread commits every batch: it should
                // run as soon as the pipeline hands it one.
                ep_thread_slice::shorten_current_thread_slice_or_log("sqlite-writer");
                admit(conn, &at)?;
                configure(conn, durability, Role::Writer)?;
                migrate(conn)?;
                checkpoint::copy_left_over(conn);
                StampOrder::load(conn).map_err(crate::schema::MigrationError::Sql)
            })
            .await
            .map_err(|e| match e {
                tokio_rusqlite::Error::Error(source) => OpenError::Migration {
                    path: path.clone(),
                    source,
                },
                _ => closed(),
            })?;
        let reader = open_configured(&path, durability, Role::Reader).await?;
        let checkpointer = open_configured(&path, durability, Role::Checkpointer).await?;
        let wal = Arc::new(WalProgress::default());
        Ok(Self {
            writer,
            reader,
            path,
            identity,
            checkpointer: checkpoint::spawn(checkpointer, Arc::clone(&wal)),
            wal,
            stamps: Arc::new(stamps),
            recorded: Arc::default(),
        })
    }

    /// Runs `f` on the writer connection, between two batches of appends.
    pub(crate) async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        self.writer
            .call(move |conn| f(conn).map_err(store_error))
            .await
            .map_err(call_error)
    }

    /// Appends `batch` with `insert` on the writer connection, between the
    /// WAL bookkeeping every transaction of events takes part in.
    async fn append_with<R>(
        &self,
        batch: Vec<NewEvent>,
        insert: fn(
            &mut rusqlite::Connection,
            Vec<NewEvent>,
            &StampOrder,
            &chunks::Recorded,
        ) -> Result<R, StoreError>,
    ) -> Result<R, StoreError>
    where
        R: Send + 'static,
    {
        let wal = Arc::clone(&self.wal);
        let stamps = Arc::clone(&self.stamps);
        let recorded = Arc::clone(&self.recorded);
        self.writer
            .call(move |conn| {
                wal.before_transaction(conn);
                let appended = insert(conn, batch, &stamps, &recorded);
                if appended.is_err() {
                    // Rolled back, or not known to be committed.
                    recorded.clear();
                }
                wal.after_append();
                appended
            })
            .await
            .map_err(call_error)
    }

    /// Runs `f` on the reader connection.
    pub(crate) async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        self.reader
            .call(move |conn| f(conn).map_err(store_error))
            .await
            .map_err(call_error)
    }
}

/// The writer's connection: through the VFS that writes the frames a
/// commit appends to the WAL with one call per 120 KiB instead of two per
/// frame (`ep-wal-buffer`), or through SQLite's default VFS should that
/// not register. The other connections only read the WAL.
async fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    match ep_wal_buffer::register().map(|name| name.to_str()) {
        Ok(Ok(vfs)) => {
            Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs).await
        }
        failed => {
            tracing::warn!(
                error = ?failed,
                "cannot use the WAL write buffer; writing the WAL through SQLite's default VFS"
            );
            Connection::open(path).await
        }
    }
}

/// Another connection to an already migrated database, configured.
async fn open_configured(
    path: &Path,
    durability: Durability,
    role: Role,
) -> Result<Connection, OpenError> {
    let sqlite_err = |source| OpenError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).await.map_err(sqlite_err)?;
    conn.call(move |c| configure(c, durability, role))
        .await
        .map_err(|e| match e {
            tokio_rusqlite::Error::Error(source) => sqlite_err(source),
            _ => sqlite_err(rusqlite::Error::InvalidPath(path.to_owned())),
        })?;
    Ok(conn)
}

/// The event stored before that holds `idempotency`'s key within its
/// window, if any.
fn key_holder(
    tx: &rusqlite::Transaction<'_>,
    idempotency: &ep_ports::IdempotencyKey,
) -> Result<Option<Event>, StoreError> {
    // Made once, not per keyed event of every batch.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS} FROM events
             WHERE idempotency_key = ?1 AND timestamp >= ?2 ORDER BY seq LIMIT 1"
        )
    });
    let mut holder = tx.prepare_cached(&SQL).map_err(store_error)?;
    holder
        .query_row(
            params![idempotency.key, idempotency.since.to_string()],
            event_from_row,
        )
        .optional()
        .map_err(store_error)
}

/// Appends `batch` in one transaction (see [`insert_in`]).
fn insert_batch(
    conn: &mut rusqlite::Connection,
    batch: Vec<NewEvent>,
    stamps: &StampOrder,
    recorded: &chunks::Recorded,
) -> Result<Vec<Event>, StoreError> {
    let tx = conn.transaction().map_err(store_error)?;
    let stored = insert_in(&tx, batch, stamps, recorded)?;
    tx.commit().map_err(store_error)?;
    Ok(stored)
}

/// Appends `batch` in one transaction unless a key of it is held: then the
/// transaction is rolled back and the holders returned.
fn insert_unless_held(
    conn: &mut rusqlite::Connection,
    batch: Vec<NewEvent>,
    stamps: &StampOrder,
    recorded: &chunks::Recorded,
) -> Result<Appended, StoreError> {
    let tx = conn.transaction().map_err(store_error)?;
    let mut held = Vec::new();
    for (i, event) in batch.iter().enumerate() {
        if let Some(idempotency) = &event.idempotency {
            if let Some(holder) = key_holder(&tx, idempotency)? {
                held.push((i, holder));
            }
        }
    }
    if !held.is_empty() {
        // Dropping the transaction rolls it back: it wrote nothing.
        return Ok(Appended::Held(held));
    }
    let stored = insert_in(&tx, batch, stamps, recorded)?;
    tx.commit().map_err(store_error)?;
    Ok(Appended::Stored(stored))
}

/// Inserts `batch` and its counts in `tx`, and the last event of it stamped
/// out of seq order, if any ([`stamps`]); an event whose idempotency key is
/// held (by an event stored before or earlier in the batch) is not
/// inserted, its holder is returned in its place.
fn insert_in(
    tx: &rusqlite::Transaction<'_>,
    batch: Vec<NewEvent>,
    stamps: &StampOrder,
    recorded: &chunks::Recorded,
) -> Result<Vec<Event>, StoreError> {
    let mut stored = Vec::with_capacity(batch.len());
    let mut newest = stamps.lock();
    let mut last_break = None;
    // Positions in `stored` of events stored by an earlier append (their
    // idempotency key was held): returned, not inserted nor counted.
    let mut held = Vec::new();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (id, event_type, source, session_id, user_id, payload, timestamp, occurred_at, idempotency_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(store_error)?;
        let mut ts = String::with_capacity(32);
        for event in batch {
            // The one writer's transaction sees every committed event and
            // this batch's own: no other writer can take the key meanwhile.
            if let Some(idempotency) = &event.idempotency {
                if let Some(existing) = key_holder(tx, idempotency)? {
                    held.push(stored.len());
                    stored.push(existing);
                    continue;
                }
            }
            ts.clear();
            // Writing into a String cannot fail.
            let _ = write!(ts, "{}", event.timestamp);
            let result = insert.execute(params![
                event.id.as_str(),
                event.event_type.as_str(),
                event.source,
                event.session_id,
                event.user_id,
                event.payload.as_str(),
                ts,
                event.occurred_at.map(|t| t.to_string()),
                event.idempotency.as_ref().map(|i| i.key.as_str()),
            ]);
            match result {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(StoreError::DuplicateId(event.id)),
                Err(e) => return Err(store_error(e)),
            }
            let seq = tx.last_insert_rowid();
            if newest.is_break(&ts) {
                last_break = Some(seq);
            }
            // AUTOINCREMENT rowids start at 1 and only grow.
            stored.push(event.into_event(u64::try_from(seq).unwrap_or(0)));
        }
    }
    if let Some(seq) = last_break {
        stamps::record_break(tx, seq).map_err(store_error)?;
    }
    if held.is_empty() {
        counts::add(tx, &stored).map_err(store_error)?;
        chunks::record(tx, &stored, recorded).map_err(store_error)?;
    } else {
        let inserted: Vec<Event> = stored
            .iter()
            .enumerate()
            .filter(|(i, _)| !held.contains(i))
            .map(|(_, e)| e.clone())
            .collect();
        counts::add(tx, &inserted).map_err(store_error)?;
        chunks::record(tx, &inserted, recorded).map_err(store_error)?;
    }
    Ok(stored)
}

/// One step of a delete: at most `limit` selected events, oldest first, and
/// their counts, in one transaction. Each selection walks an index that
/// leads with its narrowest condition, so a step costs about `limit` rows:
/// a student's events by `(user_id, seq)`, a type's older events by
/// `(event_type, seq)` up to a seq bound, older events by `timestamp`,
/// else by seq.
fn delete_step(
    conn: &mut rusqlite::Connection,
    what: &Deletion,
    limit: usize,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    let (sql, args) = selection(&tx, what, limit)?;
    let doomed: Vec<(i64, String, String)> = tx
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    {
        let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
        for (seq, _, _) in &doomed {
            delete.execute([seq])?;
        }
    }
    counts::remove(&tx, &doomed)?;
    chunks::forget_emptied(&tx)?;
    if doomed.len() < limit {
        if let Some(user) = &what.user_id {
            // The last step of a student's erasure: nothing of theirs is
            // left in the side table either.
            chunks::forget_user(&tx, user)?;
        }
    }
    tx.commit()?;
    Ok(doomed.len() as u64)
}

/// The query that picks one delete step's rows (seq, type, timestamp),
/// oldest first. Only fixed SQL text is built; every value is a bound
/// parameter. A student's events are walked through the chunks that hold
/// them ([`chunks`]).
fn selection(
    conn: &rusqlite::Connection,
    what: &Deletion,
    limit: usize,
) -> rusqlite::Result<(String, Vec<Value>)> {
    let mut sql = String::from("SELECT seq, event_type, timestamp FROM events");
    let walk = plan::key_walk(conn, None, what.user_id.as_deref(), 0)?;
    plan::push_index(&mut sql, walk.as_ref());
    sql.push_str(" WHERE seq <= ?");
    let mut args = vec![Value::Integer(
        i64::try_from(what.through_seq).unwrap_or(i64::MAX),
    )];
    if let Some(user) = &what.user_id {
        sql.push_str(" AND user_id = ?");
        args.push(Value::Text(user.clone()));
    }
    if let Some(t) = what.event_type {
        sql.push_str(" AND event_type = ?");
        args.push(Value::Text(t.as_str().to_owned()));
    }
    if let Some(before) = what.before {
        sql.push_str(" AND timestamp < ?");
        args.push(Value::Text(before.to_string()));
        if what.event_type.is_some() && what.user_id.is_none() {
            // A type's older events (retention): walked on (event_type, seq)
            // up to the newest event stamped before the instant, found on
            // the timestamp index; the domain stamps events in seq order,
            // so no index on (event_type, timestamp) is needed (one more
            // B-tree write per append: 15% of REST publish). An event
            // stamped out of seq order (an import) waits for a later pass.
            sql.push_str(
                " AND seq <= (SELECT seq FROM events WHERE timestamp < ? ORDER BY timestamp DESC LIMIT 1)",
            );
            args.push(Value::Text(before.to_string()));
        }
    }
    if walk.is_none() && what.before.is_some() && what.event_type.is_none() {
        sql.push_str(" ORDER BY timestamp");
    } else {
        plan::push_order(&mut sql, &mut args, walk.as_ref(), false);
    }
    sql.push_str(" LIMIT ?");
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    Ok((sql, args))
}

/// Appends the caller's scope to a query: each present list as `column IN
/// (...)`, every value a bound parameter. The caller answers an empty list
/// ([`Scope::allows_nothing`]) without asking.
fn push_scope(sql: &mut String, args: &mut Vec<Value>, scope: &Scope) {
    for (field, list) in scope.lists() {
        if let Some(values) = list {
            let marks = vec!["?"; values.len()].join(", ");
            let _ = write!(sql, " AND {} IN ({marks})", field.name());
            args.extend(values.iter().map(|v| Value::Text(v.clone())));
        }
    }
}

fn run_query(conn: &mut rusqlite::Connection, query: EventQuery) -> rusqlite::Result<Vec<Event>> {
    let (sql, args) = query_statement(conn, query)?;
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), event_from_row)?;
    rows.collect()
}

/// The statement that answers `query`, and its arguments. Only fixed SQL
/// text is built here (an index name is one of ours); every client value
/// is a bound parameter.
fn query_statement(
    conn: &rusqlite::Connection,
    query: EventQuery,
) -> rusqlite::Result<(String, Vec<Value>)> {
    let mut sql = format!("SELECT {COLUMNS} FROM events");
    let since = query.since.map(|t| t.to_string());
    let floor = match &since {
        Some(since) => stamps::since_floor(conn, since)?,
        None => None,
    };
    // A session's or a user's events: through the chunks that hold them.
    let walk = match plan::key_walk(
        conn,
        query.session_id.as_deref(),
        query.user_id.as_deref(),
        floor.unwrap_or(0),
    )? {
        Some(walk) => Some(walk),
        None => plan::query_index(conn, &query, floor.is_some())?,
    };
    plan::push_index(&mut sql, walk.as_ref());
    sql.push_str(" WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::with_capacity(5);
    if let Some(t) = query.event_type {
        sql.push_str(" AND event_type = ?");
        args.push(Value::Text(t.as_str().to_owned()));
    }
    if let Some(s) = query.session_id {
        sql.push_str(" AND session_id = ?");
        args.push(Value::Text(s));
    }
    if let Some(u) = query.user_id {
        sql.push_str(" AND user_id = ?");
        args.push(Value::Text(u));
    }
    if let Some(since) = since {
        if let Some(floor) = floor {
            sql.push_str(" AND seq >= ?");
            args.push(Value::Integer(floor));
        }
        sql.push_str(" AND timestamp > ?");
        args.push(Value::Text(since));
    }
    if let Some(from) = query.occurred_since {
        sql.push_str(" AND occurred_at >= ?");
        args.push(Value::Text(from.to_string()));
    }
    if let Some(before) = query.occurred_before {
        sql.push_str(" AND occurred_at < ?");
        args.push(Value::Text(before.to_string()));
    }
    push_scope(&mut sql, &mut args, &query.scope);
    plan::push_order(&mut sql, &mut args, walk.as_ref(), true);
    sql.push_str(" LIMIT ?");
    args.push(Value::Integer(
        i64::try_from(query.limit).unwrap_or(i64::MAX),
    ));
    Ok((sql, args))
}

fn run_after(
    conn: &mut rusqlite::Connection,
    after_seq: u64,
    filter: EventFilter,
    limit: usize,
) -> rusqlite::Result<Vec<Event>> {
    // Only fixed SQL text is built here (the index name is one of ours);
    // every client value is a bound parameter.
    let mut sql = format!("SELECT {COLUMNS} FROM events");
    let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let from = after.saturating_add(1);
    let walk = match plan::key_walk(
        conn,
        filter.session_id.as_deref(),
        filter.user_id.as_deref(),
        from,
    )? {
        Some(walk) => Some(walk),
        // A resume of a caller scoped to a class from far back would
        // otherwise walk every event since then.
        None => plan::scope_index(conn, &filter.scope, filter.event_types.is_some(), from)?,
    };
    plan::push_index(&mut sql, walk.as_ref());
    sql.push_str(" WHERE seq > ?");
    let mut args: Vec<Value> = vec![Value::Integer(after)];
    if let Some(types) = &filter.event_types {
        let marks = vec!["?"; types.len()].join(", ");
        sql.push_str(&format!(" AND event_type IN ({marks})"));
        args.extend(types.iter().map(|t| Value::Text(t.as_str().to_owned())));
    }
    if let Some(s) = filter.session_id {
        sql.push_str(" AND session_id = ?");
        args.push(Value::Text(s));
    }
    if let Some(u) = filter.user_id {
        sql.push_str(" AND user_id = ?");
        args.push(Value::Text(u));
    }
    push_scope(&mut sql, &mut args, &filter.scope);
    plan::push_order(&mut sql, &mut args, walk.as_ref(), false);
    sql.push_str(" LIMIT ?");
    args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), event_from_row)?;
    rows.collect()
}

fn read_stats(conn: &mut rusqlite::Connection, since: Timestamp) -> rusqlite::Result<Stats> {
    // One read transaction: every figure comes from the same snapshot.
    let tx = conn.transaction()?;
    let by_type = counts::read(&tx)?;
    let events_since = counts::since(&tx, since)?;
    tx.commit()?;
    Ok(Stats {
        total_events: by_type.iter().map(|r| r.count).sum(),
        events_since,
        by_type,
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.append_with(batch, insert_batch).await
    }

    async fn append_unless_held(&self, batch: Vec<NewEvent>) -> Result<Appended, StoreError> {
        if batch.is_empty() {
            return Ok(Appended::Stored(Vec::new()));
        }
        self.append_with(batch, insert_unless_held).await
    }

    async fn get(&self, id: &EventId) -> Result<Option<Event>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events WHERE id = ?1"))?
                .query_row([id], event_from_row)
                .optional()
        })
        .await
    }

    async fn query(&self, query: EventQuery) -> Result<Vec<Event>, StoreError> {
        if query.scope.allows_nothing() {
            return Ok(Vec::new());
        }
        self.read(move |conn| run_query(conn, query)).await
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
        self.read(move |conn| run_after(conn, after_seq, filter, limit))
            .await
    }

    async fn stats(&self, since: Timestamp) -> Result<Stats, StoreError> {
        self.read(move |conn| read_stats(conn, since)).await
    }

    async fn delete_some(&self, what: Deletion, limit: usize) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        self.wal.wait_for_copies().await;
        let wal = Arc::clone(&self.wal);
        let recorded = Arc::clone(&self.recorded);
        self.writer
            .call(move |conn| {
                wal.before_transaction(conn);
                let deleted = delete_step(conn, &what, limit).map_err(store_error);
                // The step may have removed side-table rows.
                recorded.clear();
                wal.after_delete();
                deleted
            })
            .await
            .map_err(call_error)
    }

    async fn last_seq(&self) -> Result<u64, StoreError> {
        // AUTOINCREMENT keeps the highest seq ever used here, deletes or not.
        self.read(|conn| {
            conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?
                .query_row([], |r| r.get::<_, i64>(0))
                .optional()
        })
        .await
        .map(|seq| seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// One file, one writer connection in one process: commit order holds
    /// within it, and nothing here was built or tested for other processes
    /// writing the same file.
    fn shared_by_nodes(&self) -> bool {
        false
    }

    async fn probe_write(&self) -> Result<(), StoreError> {
        if let Some(free) = available_bytes(&self.path) {
            if free < PROBE_RESERVE_BYTES {
                return Err(StoreError::Full(format!(
                    "{} KiB free on the database's filesystem; appends resume once {} MiB are",
                    free / 1024,
                    PROBE_RESERVE_BYTES / (1024 * 1024)
                )));
            }
        }
        // Writing the schema version back unchanged rewrites the database
        // header page: one WAL frame, committed like a batch of events.
        self.writer
            .call(|conn| {
                let version: i64 = conn
                    .query_row("PRAGMA user_version", [], |r| r.get(0))
                    .map_err(store_error)?;
                conn.pragma_update(None, "user_version", version)
                    .map_err(store_error)
            })
            .await
            .map_err(call_error)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if file_identity(&self.path) != Some(self.identity) {
            return Err(StoreError::Unavailable(format!(
                "the database file {} was removed or replaced",
                self.path.display()
            )));
        }
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await
        .map(drop)
    }

    /// Stops the checkpointer and closes its connection, the reader's and
    /// the writer's (after what was queued on each). The last of them to
    /// close copies the WAL into the database file and removes it (unless
    /// another process has the file open), so that the file alone holds
    /// every event and the next open has nothing to recover. A WAL at the
    /// writer's backstop (320 MiB) takes about a second to copy.
    async fn close(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        // Each is closed even if one before it failed: the more are closed,
        // the fewer file handles a failed close leaves behind.
        let outcomes = [
            self.checkpointer.close().await,
            self.reader.clone().close().await,
            self.writer.clone().close().await,
        ];
        if let Some(Err(e)) = outcomes.into_iter().find(Result::is_err) {
            return Err(StoreError::Unavailable(format!(
                "closing the database {}: {e}",
                self.path.display()
            )));
        }
        let wal_left = wal_path(&self.path).exists();
        tracing::info!(
            took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            wal_left,
            "SQLite event store closed"
        );
        Ok(())
    }
}

/// The WAL file of the database at `path`.
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path().join("events.db"), Durability::Normal)
            .await
            .expect("open");
        (store, dir)
    }

    ep_conformance::conformance_suite!(temp_store());
    ep_conformance::job_state_suite!(temp_store());

    /// The writer's thread commits every batch and asks for a short
    /// scheduling slice; the reader's does not.
    #[tokio::test]
    async fn the_writer_thread_alone_runs_with_a_short_slice() {
        let default = std::thread::spawn(ep_thread_slice::current_thread_slice)
            .join()
            .expect("thread")
            .expect("sched_getattr");
        let (store, _dir) = temp_store().await;
        let slice = |conn: &mut rusqlite::Connection| {
            let _ = conn;
            Ok(ep_thread_slice::current_thread_slice().expect("sched_getattr"))
        };
        assert_eq!(
            store.write(slice).await.expect("writer"),
            default.map(|_| ep_thread_slice::SLICE)
        );
        assert_eq!(store.read(slice).await.expect("reader"), default);
    }

    /// The writer writes a commit's WAL frames through the buffering VFS:
    /// a batch of 500 events (hundreds of frames) takes a few write calls,
    /// where SQLite's own VFS makes two per frame.
    #[tokio::test]
    async fn the_writer_writes_a_batchs_frames_in_a_few_calls() {
        let (store, _dir) = temp_store().await;
        let writes = |conn: &mut rusqlite::Connection| {
            let _ = conn;
            Ok(ep_wal_buffer::wal_writes_on_this_thread())
        };
        let before = store.write(writes).await.expect("writer");
        let events = (0..500)
            .map(|i| {
                ep_conformance::new_event(
                    i,
                    ep_ports::EventType::TIMER_TICK,
                    Some(&format!("s{}", i % 37)),
                    Some(&format!("u{}", i % 91)),
                )
            })
            .collect();
        store.append(events).await.expect("append");
        let calls = store.write(writes).await.expect("writer") - before;
        assert!((1..=12).contains(&calls), "{calls} write calls");
    }

    /// After a close the database file alone holds every event: the WAL is
    /// copied into it and removed, and the next open finds them all.
    #[tokio::test]
    async fn closing_copies_the_wal_into_the_file_and_removes_it() {
        let (store, dir) = temp_store().await;
        let path = dir.path().join("events.db");
        for batch in 0..4 {
            let events = (0..500)
                .map(|i| {
                    ep_conformance::new_event(
                        batch * 500 + i,
                        ep_ports::EventType::TIMER_TICK,
                        Some(&format!("s{}", i % 37)),
                        Some(&format!("u{}", i % 101)),
                    )
                })
                .collect();
            store.append(events).await.expect("append");
        }
        let wal = wal_path(&path);
        assert!(
            std::fs::metadata(&wal).expect("a WAL while open").len() > 0,
            "the appends are in the WAL"
        );
        store.close().await.expect("close");
        assert!(!wal.exists(), "the WAL is removed at close");
        let raw = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("raw open");
        let (count, top): (i64, i64) = raw
            .query_row("SELECT COUNT(*), MAX(seq) FROM events", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("count");
        assert_eq!((count, top), (2_000, 2_000));
    }

    /// A query whose time range holds few events walks that range's index
    /// (at 5M events, `since=` a minute ago with nothing newer scanned the
    /// table); one whose range holds more, one for a session or a user, or
    /// a `since` with a floor, leaves the walk to SQLite. The conformance
    /// case `time_range_queries_answer_exactly_over_many_events` checks the
    /// answers both ways.
    #[tokio::test]
    async fn a_short_time_range_walks_its_own_index() {
        use ep_conformance::store::{fill_for_time_ranges, time_range_query, time_ranges};
        use ep_ports::{EventQuery, EventType};

        let (store, dir) = temp_store().await;
        fill_for_time_ranges(&store).await;
        let raw = rusqlite::Connection::open(dir.path().join("events.db")).expect("raw open");
        for (range, few) in time_ranges() {
            let query = time_range_query(Some(EventType::TIMER_TICK), range);
            let index = match (few, range.0) {
                (false, _) => None,
                (true, Some(_)) => Some("ix_events_timestamp"),
                (true, None) => Some("ix_events_occurred"),
            };
            let chosen = crate::plan::query_index(&raw, &query, false).expect("plan");
            assert_eq!(walked(chosen), index, "{query:?}");
            let floored = crate::plan::query_index(&raw, &query, true).expect("plan");
            let index = index.filter(|_| range.0.is_none());
            assert_eq!(walked(floored), index, "with a floor: {query:?}");
        }
        let one_session = EventQuery {
            session_id: Some("s1".into()),
            ..time_range_query(None, time_ranges()[0].0)
        };
        assert_eq!(
            crate::plan::query_index(&raw, &one_session, false).expect("plan"),
            None
        );
    }

    /// A query of a caller scoped to few sessions, users or types walks the
    /// index of the list holding the fewest (a class's sessions asking for
    /// `timer_tick` walked every `timer_tick` newest first); a scope over
    /// many, a query naming a session, or a type list beside a type the
    /// query names leaves the walk to SQLite. The conformance case
    /// `scoped_queries_answer_exactly_over_many_events` checks the answers.
    #[tokio::test]
    async fn a_scope_of_few_events_walks_its_own_index() {
        use ep_conformance::store::{fill_for_scopes, scopes_over_many_events};
        use ep_ports::{EventQuery, EventType};

        let (store, dir) = temp_store().await;
        fill_for_scopes(&store).await;
        let raw = rusqlite::Connection::open(dir.path().join("events.db")).expect("raw open");
        let expected = [
            Some("ix_events_session_chunk"),
            Some("ix_events_user_chunk"),
            Some("ix_events_type_seq"),
            None,
            Some("ix_events_user_chunk"),
            None,
            // 96 events in the class's sessions, 40 of the student's.
            Some("ix_events_user_chunk"),
        ];
        for ((scope, few), index) in scopes_over_many_events().into_iter().zip(expected) {
            assert_eq!(few, index.is_some(), "{scope:?}");
            let query = EventQuery {
                scope: scope.clone(),
                ..EventQuery::latest(100)
            };
            let chosen = crate::plan::query_index(&raw, &query, false).expect("plan");
            assert_eq!(walked(chosen), index, "{query:?}");
            let one_session = EventQuery {
                session_id: Some("class-a".into()),
                ..query.clone()
            };
            assert_eq!(
                crate::plan::query_index(&raw, &one_session, false).expect("plan"),
                None
            );
        }
        // The index for `timer_tick` under the `i`th scope.
        let typed = |i: usize| {
            let query = EventQuery {
                event_type: Some(EventType::TIMER_TICK),
                scope: scopes_over_many_events()[i].0.clone(),
                ..EventQuery::latest(100)
            };
            walked(crate::plan::query_index(&raw, &query, false).expect("plan"))
        };
        assert_eq!(typed(2), None, "rare types beside a named type");
        assert_eq!(typed(0), Some("ix_events_session_chunk"), "a class");
    }

    /// The index a walk goes down.
    fn walked(walk: Option<crate::plan::Walk>) -> Option<&'static str> {
        walk.as_ref().map(crate::plan::Walk::index)
    }

    /// How SQLite runs `sql` with `args`: each step's detail.
    fn plan_of(conn: &rusqlite::Connection, sql: &str, args: Vec<Value>) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain")
            .query_map(params_from_iter(args), |r| r.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan rows")
    }

    /// A `since` query walks a type's events down to the first event
    /// stamped after `since`, not to the type's oldest (at 1,000,000 events,
    /// `event_type=error_occurred` with 117 events since two days ago and
    /// `limit=1000` walked all 7,000 of the type), whether its range is
    /// large or short (a short one was read whole through the timestamp
    /// index and sorted: 8 ms for a day's 8,300 events); a break above that
    /// event takes the floor away, and a short range then walks its own
    /// index. The conformance case
    /// `since_queries_answer_exactly_over_events_stamped_out_of_order`
    /// checks the answers.
    #[tokio::test]
    async fn a_since_query_stops_at_the_first_event_stamped_after_it() {
        use ep_conformance::store::{
            at, fill_for_time_ranges, time_range_query, TIME_RANGE_EVENTS,
        };
        use ep_ports::EventType;

        let (store, dir) = temp_store().await;
        fill_for_time_ranges(&store).await;
        let raw = rusqlite::Connection::open(dir.path().join("events.db")).expect("raw open");
        let floored = ["SEARCH events USING INDEX ix_events_type_seq (event_type=? AND seq>?)"];
        let answers = |since| {
            time_range_query(
                Some(EventType::ANSWER_SUBMITTED),
                (Some(at(since)), None, None),
            )
        };
        let (many, short) = (answers(7), answers(TIME_RANGE_EVENTS - 7));
        let (sql, args) = query_statement(&raw, many.clone()).expect("statement");
        // Event 8, the first stamped after event 7, has seq 9.
        assert!(args.contains(&Value::Integer(9)), "{sql} {args:?}");
        assert_eq!(plan_of(&raw, &sql, args), floored, "{sql}");
        let (sql, args) = query_statement(&raw, short.clone()).expect("statement");
        assert!(
            args.contains(&Value::Integer(TIME_RANGE_EVENTS - 5)),
            "{sql} {args:?}"
        );
        assert_eq!(plan_of(&raw, &sql, args), floored, "{sql}");

        let late = ep_ports::NewEvent {
            timestamp: at(3),
            ..ep_conformance::new_event(99_999, EventType::QUIZ_STARTED, None, None)
        };
        store.append(vec![late]).await.expect("append");
        let (_, args) = query_statement(&raw, many).expect("statement");
        assert!(
            !args.contains(&Value::Integer(9)),
            "a break above it: {args:?}"
        );
        let (sql, args) = query_statement(&raw, short).expect("statement");
        assert_eq!(
            plan_of(&raw, &sql, args),
            [
                "SEARCH events USING INDEX ix_events_timestamp (timestamp>?)",
                "USE TEMP B-TREE FOR ORDER BY"
            ],
            "{sql}"
        );
    }

    /// The newest timestamp is read from the file at open: an event stamped
    /// before those of an earlier run is a break, and `since` finds them.
    #[tokio::test]
    async fn an_event_stamped_before_an_earlier_runs_events_is_a_break() {
        use ep_conformance::store::at;
        use ep_ports::{EventQuery, EventType};

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        let store = SqliteStore::open(&path, Durability::Normal)
            .await
            .expect("open");
        // More than a `since` range's own index is walked for (10,000).
        for from in (0..10_050).step_by(1_000) {
            let first_run = (from..(from + 1_000).min(10_050))
                .map(|i| ep_conformance::new_event(100 + i, EventType::TIMER_TICK, None, None))
                .collect();
            store.append(first_run).await.expect("append");
        }
        store.close().await.expect("close");
        drop(store);
        let store = SqliteStore::open(&path, Durability::Normal)
            .await
            .expect("reopen");
        let behind = ep_conformance::new_event(50, EventType::TIMER_TICK, None, None);
        store.append(vec![behind]).await.expect("append");
        let found = store
            .query(EventQuery {
                since: Some(at(40)),
                ..EventQuery::latest(100)
            })
            .await
            .expect("query");
        let seqs: Vec<u64> = found.iter().map(|e| e.seq).collect();
        let want: Vec<u64> = (9_952..=10_051).rev().collect();
        assert_eq!(seqs, want);
    }

    /// Each kind of delete step walks an index that leads with its
    /// narrowest condition: never a scan of the table, never a sort.
    #[tokio::test]
    async fn every_delete_selection_walks_an_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("events.db");
        {
            let store = SqliteStore::open(&path, Durability::Normal)
                .await
                .expect("open");
            // The student's events, in two chunks.
            for n in [1, 1 << chunks::CHUNK_BITS] {
                let event =
                    ep_conformance::new_event(n, ep_ports::EventType::TIMER_TICK, None, Some("u"));
                store.append(vec![event]).await.expect("append");
            }
        }
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        let t = Timestamp::from_micros(0);
        let cases = [
            (Deletion::through(9), "PRIMARY KEY"),
            (Deletion::through(9).before(t), "ix_events_timestamp"),
            (Deletion::through(9).of_user("u"), "ix_events_user_chunk"),
            (
                Deletion::through(9).of_user("u").before(t),
                "ix_events_user_chunk",
            ),
            (
                Deletion::through(9)
                    .of_type(ep_ports::EventType::TIMER_TICK)
                    .before(t),
                "ix_events_type_seq (event_type=? AND seq<?)",
            ),
        ];
        for (what, index) in cases {
            let (sql, args) = selection(&conn, &what, 10).expect("selection");
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan")
                .query_map(params_from_iter(args), |r| r.get(3))
                .expect("rows")
                .collect::<rusqlite::Result<_>>()
                .expect("plan rows");
            let plan = plan.join("; ");
            assert!(plan.contains(index), "{what:?}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{what:?} sorts: {plan}");
        }
    }

    /// Events in two chunks of seq: sessions and users found across the
    /// boundary newest first and oldest first, as a walk of all events
    /// finds them; a query's walk seeks the chunked index without a sort;
    /// a student's erasure leaves no side-table row of theirs, and deletes
    /// past a chunk leave none of that chunk's.
    #[tokio::test]
    async fn sessions_and_users_are_found_across_chunks_and_forgotten_with_their_events() {
        use ep_ports::{EventQuery, EventType};

        let (store, dir) = temp_store().await;
        let span = (1_i64 << chunks::CHUNK_BITS) + 700;
        let session = |i: i64| format!("s{}", i % 7);
        let user = |i: i64| format!("u{}", i % 5);
        for from in (0..span).step_by(1_000) {
            let batch = (from..(from + 1_000).min(span))
                .map(|i| {
                    let (s, u) = (session(i), user(i));
                    ep_conformance::new_event(i, EventType::TIMER_TICK, Some(&s), Some(&u))
                })
                .collect();
            store.append(batch).await.expect("append");
        }
        let all = store
            .after(0, EventFilter::default(), usize::MAX)
            .await
            .expect("all");
        assert_eq!(all.len() as i64, span);
        let boundary = 1_u64 << chunks::CHUNK_BITS;
        let of = |f: &dyn Fn(&Event) -> bool| -> Vec<u64> {
            all.iter().filter(|e| f(e)).map(|e| e.seq).collect()
        };
        let in_s3 = of(&|e| e.session_id.as_deref() == Some("s3"));
        let of_u2 = of(&|e| e.user_id.as_deref() == Some("u2"));
        // Newest first, 150 of them: past the boundary into chunk 0.
        async fn seqs(store: &SqliteStore, q: EventQuery) -> Vec<u64> {
            let found = store.query(q).await.expect("query");
            found.iter().map(|e| e.seq).collect()
        }
        let expected: Vec<u64> = in_s3.iter().rev().take(150).copied().collect();
        assert!(expected.last() < Some(&boundary) && expected[0] >= boundary);
        let q = EventQuery {
            session_id: Some("s3".into()),
            ..EventQuery::latest(150)
        };
        assert_eq!(seqs(&store, q).await, expected);
        let expected: Vec<u64> = of_u2.iter().rev().take(200).copied().collect();
        let q = EventQuery {
            user_id: Some("u2".into()),
            ..EventQuery::latest(200)
        };
        assert_eq!(seqs(&store, q).await, expected);
        // A class's sessions (a scope), newest first across the boundary:
        // few enough events to walk the sessions' chunks and sort them.
        let class = Scope {
            session_ids: Some(vec!["s3".into(), "s5".into()]),
            ..Scope::unrestricted()
        };
        let expected: Vec<u64> = all
            .iter()
            .rev()
            .filter(|e| class.allows(e))
            .take(3_000)
            .map(|e| e.seq)
            .collect();
        assert!(expected.last() < Some(&boundary));
        let q = EventQuery {
            scope: class.clone(),
            ..EventQuery::latest(3_000)
        };
        assert_eq!(seqs(&store, q).await, expected);
        let filter = EventFilter {
            scope: class,
            ..EventFilter::default()
        };
        let found: Vec<u64> = store
            .after(boundary - 50, filter, 30)
            .await
            .expect("after")
            .iter()
            .map(|e| e.seq)
            .collect();
        let expected: Vec<u64> = in_s3_or_s5(&all)
            .into_iter()
            .filter(|&s| s > boundary - 50)
            .take(30)
            .collect();
        assert_eq!(found, expected);
        // Oldest first from before the boundary.
        let after = boundary - 20;
        let filter = EventFilter {
            session_id: Some("s3".into()),
            ..EventFilter::default()
        };
        let found: Vec<u64> = store
            .after(after, filter, 40)
            .await
            .expect("after")
            .iter()
            .map(|e| e.seq)
            .collect();
        let expected: Vec<u64> = in_s3
            .iter()
            .filter(|&&s| s > after)
            .take(40)
            .copied()
            .collect();
        assert_eq!(found, expected);

        let raw = rusqlite::Connection::open(dir.path().join("events.db")).expect("raw open");
        let (sql, args) = query_statement(
            &raw,
            EventQuery {
                session_id: Some("s3".into()),
                ..EventQuery::latest(150)
            },
        )
        .expect("statement");
        let plan = plan_of(&raw, &sql, args).join("; ");
        assert!(plan.contains("ix_events_session_chunk"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");

        let rows = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).expect("count") };
        assert_eq!(
            rows("SELECT COUNT(*) FROM user_chunks WHERE user_id = 'u2'"),
            2
        );
        let through = all.last().expect("events").seq;
        while store
            .delete_some(Deletion::through(through).of_user("u2"), 1_000)
            .await
            .expect("erase")
            > 0
        {}
        assert_eq!(
            rows("SELECT COUNT(*) FROM user_chunks WHERE user_id = 'u2'"),
            0,
            "erased"
        );
        assert_eq!(
            rows("SELECT COUNT(*) FROM user_chunks"),
            8,
            "four other students in two chunks"
        );
        // Every event of chunk 0 (seq 1 to 16,383) and a few of chunk 1.
        while store
            .delete_some(Deletion::through(boundary + 10), 5_000)
            .await
            .expect("delete")
            > 0
        {}
        assert_eq!(
            rows("SELECT COUNT(*) FROM session_chunks WHERE chunk = 0"),
            0
        );
        assert_eq!(rows("SELECT COUNT(*) FROM user_chunks WHERE chunk = 0"), 0);
        assert_eq!(
            rows("SELECT COUNT(*) FROM session_chunks WHERE chunk = 1"),
            7
        );
    }

    /// The writer writes a key's side-table row once per chunk, in the
    /// newest chunk too: rows removed behind its back (here by hand, to see
    /// it) are not written again for keys it has recorded there.
    #[tokio::test]
    async fn the_writer_writes_a_keys_row_once_per_chunk() {
        use ep_ports::EventType;

        let (store, dir) = temp_store().await;
        let event = |n: i64, session: &str| {
            ep_conformance::new_event(n, EventType::TIMER_TICK, Some(session), Some(session))
        };
        // Up to the first seq of chunk 1.
        let first_of_1 = 1_i64 << chunks::CHUNK_BITS;
        for from in (1..first_of_1).step_by(2_000) {
            let batch = (from..(from + 2_000).min(first_of_1))
                .map(|n| event(n, "old"))
                .collect();
            store.append(batch).await.expect("append");
        }
        store
            .append(vec![event(first_of_1, "a"), event(first_of_1 + 1, "b")])
            .await
            .expect("append");
        let raw = rusqlite::Connection::open(dir.path().join("events.db")).expect("raw open");
        let rows = || -> i64 {
            raw.query_row(
                "SELECT COUNT(*) FROM session_chunks WHERE chunk = 1 AND session_id IN ('a', 'b')",
                [],
                |r| r.get(0),
            )
            .expect("count")
        };
        assert_eq!(rows(), 2);
        raw.execute("DELETE FROM session_chunks WHERE chunk = 1", [])
            .expect("delete");
        store
            .append(vec![event(first_of_1 + 2, "a"), event(first_of_1 + 3, "b")])
            .await
            .expect("append");
        assert_eq!(rows(), 0, "both remembered in chunk 1");
        store
            .append(vec![event(first_of_1 + 4, "c")])
            .await
            .expect("append");
        let c: i64 = raw
            .query_row(
                "SELECT COUNT(*) FROM session_chunks WHERE chunk = 1 AND session_id = 'c'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(c, 1, "a new key is written");
    }

    /// A student erased and back in the same chunk is found again: the
    /// erasure removed their side-table row, and the writer's memory of the
    /// rows it wrote is cleared with it.
    #[tokio::test]
    async fn a_student_erased_and_back_is_found_again() {
        use ep_ports::{EventQuery, EventType};

        let (store, _dir) = temp_store().await;
        let event = |n| ep_conformance::new_event(n, EventType::TIMER_TICK, Some("s"), Some("u"));
        store
            .append(vec![event(1), event(2)])
            .await
            .expect("append");
        while store
            .delete_some(Deletion::through(2).of_user("u"), 10)
            .await
            .expect("erase")
            > 0
        {}
        store.append(vec![event(3)]).await.expect("append");
        let of = |session: Option<&str>, user: Option<&str>| EventQuery {
            session_id: session.map(str::to_owned),
            user_id: user.map(str::to_owned),
            ..EventQuery::latest(10)
        };
        let found = store.query(of(None, Some("u"))).await.expect("query");
        assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
        let found = store.query(of(Some("s"), None)).await.expect("query");
        assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    }

    /// Rows of chunks older than the oldest event are forgotten a bounded
    /// number per delete step, also by steps that delete nothing.
    #[tokio::test]
    async fn delete_steps_forget_old_chunks_rows_a_thousand_at_a_time() {
        let (store, dir) = temp_store().await;
        let event =
            ep_conformance::new_event(1, ep_ports::EventType::TIMER_TICK, Some("now"), None);
        store.append(vec![event]).await.expect("append");
        let raw = rusqlite::Connection::open(dir.path().join("events.db")).expect("raw open");
        // 2,500 sessions of a chunk whose events are gone (-1: before any
        // seq), and the live one's.
        for i in 0..2_500 {
            raw.execute(
                "INSERT INTO session_chunks VALUES (?1, -1)",
                [format!("old-{i}")],
            )
            .expect("insert");
        }
        let left = || -> i64 {
            raw.query_row("SELECT COUNT(*) FROM session_chunks", [], |r| r.get(0))
                .expect("count")
        };
        let step = chunks::FORGET_PER_STEP;
        assert_eq!(left(), 2_501);
        assert_eq!(
            store
                .delete_some(Deletion::through(0), 100)
                .await
                .expect("step"),
            0
        );
        assert_eq!(left(), 2_501 - step);
        store
            .delete_some(Deletion::through(0), 100)
            .await
            .expect("step");
        store
            .delete_some(Deletion::through(0), 100)
            .await
            .expect("step");
        assert_eq!(left(), 1, "only the live session's row");
    }

    /// The seqs of the events of sessions s3 and s5, oldest first.
    fn in_s3_or_s5(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .filter(|e| matches!(e.session_id.as_deref(), Some("s3" | "s5")))
            .map(|e| e.seq)
            .collect()
    }

    /// Events whose payloads fill a few pages each.
    fn bulky(from: i64, n: i64) -> Vec<NewEvent> {
        (from..from + n)
            .map(|i| {
                let mut e =
                    ep_conformance::new_event(i, ep_ports::EventType::TIMER_TICK, None, None);
                e.payload =
                    ep_ports::Payload::from_json(format!(r#"{{"pad":"{}"}}"#, "x".repeat(20_000)))
                        .expect("payload");
                e
            })
            .collect()
    }

    #[tokio::test]
    async fn a_database_that_cannot_grow_refuses_appends_as_full_and_takes_them_again_after() {
        let (store, _dir) = temp_store().await;
        store.append(bulky(0, 1)).await.expect("room at first");
        // SQLite's own page limit gives the error a full disk gives.
        let cap = |extra: i64| {
            store.writer.call(move |conn| {
                let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                conn.pragma_update(None, "max_page_count", pages + extra)?;
                Ok::<_, rusqlite::Error>(())
            })
        };
        cap(0).await.expect("cap");
        let refused = store.append(bulky(1, 5)).await.expect_err("no room");
        assert!(matches!(refused, StoreError::Full(_)), "{refused:?}");
        assert_eq!(
            store
                .stats(Timestamp::from_micros(0))
                .await
                .expect("stats")
                .total_events,
            1,
            "nothing of the refused batch is stored"
        );
        cap(1_000).await.expect("room again");
        store.append(bulky(1, 5)).await.expect("commits again");
        store.probe_write().await.expect("probe");
    }
}
