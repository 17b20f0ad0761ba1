//! The schema and its migrations, tracked in a one-row version table.
//!
//! Payloads are PostgreSQL `json`, not `jsonb`: `jsonb` re-orders keys,
//! drops duplicate ones and rewrites numbers (`1e300` comes back as 301
//! digits), so a payload would no longer come back as it was published, as
//! the contract and the port promise (the SQLite store keeps the text too).
//! `json` validates on the way in, keeps the text, and takes the same `->`
//! and `->>` operators for operators' own queries; an expression index on
//! `(payload::jsonb ->> 'key')` serves a hot one.

use tokio_postgres::Client;

/// Migrations in order; migration `i` takes the schema from version `i` to
/// `i + 1`, in one transaction.
const MIGRATIONS: &[&str] = &[
    // 1: the events, and the one counter row that assigns seq in commit
    // order (store.rs). Each filtered index ends in `seq` so that a query
    // walks it newest-first and stops at its limit.
    "CREATE TABLE events_seq (
         only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
         last_seq bigint NOT NULL
     );
     INSERT INTO events_seq (last_seq) VALUES (0);
     CREATE TABLE events (
         seq        bigint PRIMARY KEY,
         id         text NOT NULL UNIQUE,
         event_type text NOT NULL,
         source     text NOT NULL,
         session_id text,
         user_id    text,
         payload    json NOT NULL,
         ts         timestamptz NOT NULL
     );
     CREATE INDEX events_type_seq    ON events (event_type, seq);
     CREATE INDEX events_session_seq ON events (session_id, seq);
     CREATE INDEX events_user_seq    ON events (user_id, seq);
     CREATE INDEX events_ts          ON events (ts);",
    // 2: per-type and per-minute counts kept by statement triggers on
    // `events`, so that
    // stats never count the table and every writer (a node of any version,
    // an operator's own SQL) keeps them. Appends already queue on the
    // events_seq row; a trigger's update of a type's row happens inside
    // that same turn, so it adds no queue of its own. Built from the
    // stored events when migrating (counts.rs), under the events_seq lock.
    "CREATE TABLE events_type_counts (
         event_type text PRIMARY KEY,
         n          bigint NOT NULL,
         last_seq   bigint NOT NULL,
         last_ts    timestamptz NOT NULL
     );
     CREATE TABLE events_minute_counts (
         minute timestamptz PRIMARY KEY,
         n      bigint NOT NULL
     );
     CREATE FUNCTION events_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         INSERT INTO events_type_counts AS c (event_type, n, last_seq, last_ts)
         SELECT DISTINCT ON (event_type)
                event_type, count(*) OVER (PARTITION BY event_type), seq, ts
         FROM inserted
         ORDER BY event_type, seq DESC
         ON CONFLICT (event_type) DO UPDATE SET
             n = c.n + excluded.n,
             last_seq = greatest(c.last_seq, excluded.last_seq),
             last_ts = CASE WHEN excluded.last_seq > c.last_seq
                            THEN excluded.last_ts ELSE c.last_ts END;
         INSERT INTO events_minute_counts AS m (minute, n)
         SELECT date_trunc('minute', ts, 'UTC'), count(*) FROM inserted GROUP BY 1
         ON CONFLICT (minute) DO UPDATE SET n = m.n + excluded.n;
         RETURN NULL;
     END $$;
     CREATE TRIGGER events_counted_on_insert AFTER INSERT ON events
         REFERENCING NEW TABLE AS inserted
         FOR EACH STATEMENT EXECUTE FUNCTION events_count_inserted();
     CREATE FUNCTION events_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE
         gone_minute timestamptz;
         gone bigint;
         remaining bigint;
     BEGIN
         UPDATE events_type_counts c SET n = c.n - d.n
         FROM (SELECT event_type, count(*) AS n FROM deleted GROUP BY event_type) d
         WHERE c.event_type = d.event_type;
         DELETE FROM events_type_counts WHERE n <= 0;
         UPDATE events_type_counts c SET (last_seq, last_ts) = (
             SELECT e.seq, e.ts FROM events e
             WHERE e.event_type = c.event_type ORDER BY e.seq DESC LIMIT 1)
         WHERE c.last_seq IN (SELECT seq FROM deleted);
         -- Minute by minute through the primary key: the table holds a row
         -- per minute of the store's history, a join could scan it all.
         FOR gone_minute, gone IN
             SELECT date_trunc('minute', ts, 'UTC'), count(*) FROM deleted GROUP BY 1
         LOOP
             UPDATE events_minute_counts SET n = n - gone WHERE minute = gone_minute
                 RETURNING n INTO remaining;
             IF remaining <= 0 THEN
                 DELETE FROM events_minute_counts WHERE minute = gone_minute;
             END IF;
         END LOOP;
         RETURN NULL;
     END $$;
     CREATE TRIGGER events_counted_on_delete AFTER DELETE ON events
         REFERENCING OLD TABLE AS deleted
         FOR EACH STATEMENT EXECUTE FUNCTION events_count_deleted();
     CREATE FUNCTION events_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         DELETE FROM events_type_counts;
         DELETE FROM events_minute_counts;
         RETURN NULL;
     END $$;
     CREATE TRIGGER events_counted_on_truncate AFTER TRUNCATE ON events
         FOR EACH STATEMENT EXECUTE FUNCTION events_count_truncated();",
    // 3: when an event happened by its producer's clock, if it said; the
    // index holds only the events that have one.
    "ALTER TABLE events ADD COLUMN occurred_at timestamptz;
     CREATE INDEX events_occurred ON events (occurred_at) WHERE occurred_at IS NOT NULL;",
    // 4: the client's idempotency key, if it gave one; the index holds only
    // the events that have one (an append looks a key up before storing).
    "ALTER TABLE events ADD COLUMN idempotency_key text;
     CREATE INDEX events_idempotency ON events (idempotency_key, seq)
         WHERE idempotency_key IS NOT NULL;",
    // 5: retention deletes a type's older events by this index; a lease
    // lets one node at a time run a background job (retention, the xAPI
    // connector), and a cursor is how far such a job has come.
    "CREATE INDEX events_type_ts ON events (event_type, ts);
     CREATE TABLE events_leases (
         name       text PRIMARY KEY,
         holder     text NOT NULL,
         expires_at timestamptz NOT NULL
     );
     CREATE TABLE events_cursors (
         name text PRIMARY KEY,
         seq  bigint NOT NULL
     );",
];

/// The version that adds `events_type_counts`: migrating to it counts the
/// stored events.
const COUNTED: usize = 2;

/// The schema version this build writes.
pub(crate) const LATEST: i32 = MIGRATIONS.len() as i32;

/// Held while migrating, so that nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6576_656e_745f_7069; // "event_pi"

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The database was written by a newer build.
    #[error("database schema version {found} is newer than this build supports ({LATEST}); upgrade event-pipeline")]
    TooNew {
        /// The version found.
        found: i32,
    },
    /// PostgreSQL refused a statement.
    #[error("schema migration failed: {0}")]
    Sql(String),
}

fn sql(e: tokio_postgres::Error) -> MigrationError {
    MigrationError::Sql(crate::error::describe(&e))
}

/// Runs every migration the database has not had yet.
pub(crate) async fn migrate(client: &mut Client) -> Result<i32, MigrationError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(sql)?;
    let outcome = migrate_locked(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let version = outcome?;
    unlocked.map_err(sql)?;
    Ok(version)
}

async fn migrate_locked(client: &mut Client) -> Result<i32, MigrationError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS events_schema (version integer NOT NULL)")
        .await
        .map_err(sql)?;
    let found: i32 = match client
        .query_opt("SELECT version FROM events_schema", &[])
        .await
        .map_err(sql)?
    {
        Some(row) => row.get(0),
        None => {
            client
                .execute("INSERT INTO events_schema (version) VALUES (0)", &[])
                .await
                .map_err(sql)?;
            0
        }
    };
    if found > LATEST {
        return Err(MigrationError::TooNew { found });
    }
    for (i, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i as i32 + 1;
        let tx = client.transaction().await.map_err(sql)?;
        if i + 1 == COUNTED {
            // Appends (of nodes still on an older version too) wait until
            // the counts and the triggers that keep them commit together.
            tx.execute("SELECT last_seq FROM events_seq FOR UPDATE", &[])
                .await
                .map_err(sql)?;
        }
        tx.batch_execute(migration).await.map_err(sql)?;
        if i + 1 == COUNTED {
            crate::counts::rebuild(&tx).await.map_err(sql)?;
        }
        tx.execute("UPDATE events_schema SET version = $1", &[&version])
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(LATEST)
}
