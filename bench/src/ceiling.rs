//! Same-run ceilings: a no-op publish server (parse the event, answer 201,
//! store nothing) and the raw batched append rate of each store (SQLite,
//! PostgreSQL) with the service's own schema. Figures are reported as ratios to these, which hold on a
//! shared machine where absolute numbers drift.

use std::time::Instant;

use ep_ports::{EventId, EventStore, EventType, NewEvent, Payload, Timestamp};
use ep_store_postgres::testing::TempSchema;
use ep_store_postgres::{PostgresOptions, PostgresStore};
use ep_store_sqlite::{Durability, SqliteStore};
use serde_json::json;
use warp::Filter;

use crate::report::print;

#[derive(clap::Args)]
pub struct ServerArgs {
    /// Port to serve the no-op publish endpoint on (127.0.0.1).
    #[arg(long, default_value_t = 18101)]
    port: u16,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct NewEventBody {
    event_type: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    payload: serde_json::Value,
}

/// Serves `POST /api/v1/events` that parses the event and answers 201 with
/// an id, storing nothing: the ceiling for HTTP publish on this machine.
pub async fn serve_noop(args: ServerArgs) -> Result<(), String> {
    let route = warp::post()
        .and(warp::path!("api" / "v1" / "events"))
        .and(warp::body::json())
        .map(|e: NewEventBody| {
            let id = format!("evt_{:032x}", crate::report::now_us());
            warp::reply::with_status(
                warp::reply::json(&json!({"id": id, "event_type": e.event_type})),
                warp::http::StatusCode::CREATED,
            )
        });
    eprintln!("no-op publish server on 127.0.0.1:{}", args.port);
    warp::serve(route).run(([127, 0, 0, 1], args.port)).await;
    Ok(())
}

#[derive(clap::Args)]
pub struct SqliteArgs {
    /// Events to insert.
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    /// Events per transaction.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
}

#[derive(clap::Args)]
pub struct PostgresArgs {
    /// The database to measure in (a schema of its own is made and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    database_url: String,
    /// Events to insert.
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    /// Events per transaction.
    #[arg(long, default_value_t = 1_000)]
    batch: u64,
}

/// The store a publish scenario also measures, for its ratio.
#[derive(clap::Args, Clone)]
pub struct StoreCeiling {
    /// Also measure the raw SQLite batched insert rate (same schema, batches
    /// of 1,000), appending as many events as the service stored in the
    /// same round to a database kept across rounds, and report the rate as
    /// a ratio to it.
    #[arg(long)]
    sqlite_ceiling: bool,
    /// Also measure the raw PostgreSQL batched append rate in this database
    /// (same schema, batches of 1,000, a schema of its own), as
    /// `--sqlite-ceiling` does, and report the rate as a ratio to it.
    #[arg(long)]
    postgres_ceiling: Option<String>,
}

impl StoreCeiling {
    /// The store to measure the ceiling on, if one was asked for.
    pub async fn open(&self) -> Result<Option<CeilingStore>, String> {
        if self.sqlite_ceiling {
            return CeilingStore::sqlite().await.map(Some);
        }
        if let Some(url) = &self.postgres_ceiling {
            return CeilingStore::postgres(url).await.map(Some);
        }
        Ok(None)
    }
}

/// Events per transaction in a ceiling.
const CEILING_BATCH: u64 = 1_000;

/// A temporary store with the service's schema that ceilings are measured
/// on. It keeps what each measurement appended: a scenario run in rounds
/// measures each round's ceiling on a database as full as the service's
/// (SQLite's batched rate falls as the file grows: 74k/s over the first
/// 300,000 events, 46k/s over 900,000).
pub struct CeilingStore {
    name: &'static str,
    store: Box<dyn EventStore>,
    /// Removed when the store is dropped.
    dir: Option<std::path::PathBuf>,
    /// Dropped (with its schema) after the store.
    _schema: Option<TempSchema>,
}

impl CeilingStore {
    /// SQLite on a temporary file, with the service's settings.
    async fn sqlite() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "ep-bench-sqlite-{}-{}",
            std::process::id(),
            crate::report::now_us()
        ));
        let store = SqliteStore::open(dir.join("events.db"), Durability::Normal)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            name: "SQLite",
            store: Box::new(store),
            dir: Some(dir),
            _schema: None,
        })
    }

    /// PostgreSQL in a schema of its own in `url`'s database.
    async fn postgres(url: &str) -> Result<Self, String> {
        let name = format!(
            "ep_bench_{}_{}",
            std::process::id(),
            crate::report::now_us()
        );
        let schema = TempSchema::create(url, name).await?;
        let store = PostgresStore::open(&schema.url(), PostgresOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            name: "PostgreSQL",
            store: Box::new(store),
            dir: None,
            _schema: Some(schema),
        })
    }

    /// The store's name, as the reports print it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Events per second appending `events` more in batches of 1,000.
    pub async fn rate(&self, events: u64) -> Result<f64, String> {
        store_rate(&*self.store, events, CEILING_BATCH).await
    }
}

impl Drop for CeilingStore {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Events per second `store` commits in batches of `batch`, with keys
/// spread as the publish scenarios spread them (0 with nothing to append).
async fn store_rate(store: &dyn EventStore, events: u64, batch: u64) -> Result<f64, String> {
    if events == 0 {
        return Ok(0.0);
    }
    let payload = Payload::from_json(
        r#"{"question_id":"q-17","answer":"B","correct":true,"elapsed_ms":5321}"#.into(),
    )
    .map_err(|e| e.to_string())?;
    let base = Timestamp::now().as_micros();
    let started = Instant::now();
    let mut n = 0u64;
    while n < events {
        let size = batch.min(events - n);
        let chunk: Vec<NewEvent> = (n..n + size)
            .map(|i| NewEvent {
                idempotency: None,
                occurred_at: None,
                id: EventId::new(format!("evt_{:032x}", (base as u128) << 40 | u128::from(i))),
                event_type: EventType::ANSWER_SUBMITTED,
                source: "quiz-service".into(),
                session_id: Some(format!("s{}", i % 1_000)),
                user_id: Some(format!("u{}", i % 5_000)),
                payload: payload.clone(),
                timestamp: Timestamp::from_micros(base + i as i64),
            })
            .collect();
        store.append(chunk).await.map_err(|e| e.to_string())?;
        n += size;
    }
    Ok(events as f64 / started.elapsed().as_secs_f64())
}

pub async fn run_sqlite(args: SqliteArgs) -> Result<(), String> {
    let ceiling = CeilingStore::sqlite().await?;
    let rate = store_rate(&*ceiling.store, args.events, args.batch).await?;
    print(
        &format!(
            "SQLite ceiling: {} events in batches of {}",
            args.events, args.batch
        ),
        &[("events/s", format!("{rate:.0}"))],
        json!({"scenario": "sqlite-ceiling", "events": args.events, "batch": args.batch, "events_per_s": rate.round()}),
    );
    Ok(())
}

pub async fn run_postgres(args: PostgresArgs) -> Result<(), String> {
    let ceiling = CeilingStore::postgres(&args.database_url).await?;
    let rate = store_rate(&*ceiling.store, args.events, args.batch).await?;
    print(
        &format!(
            "PostgreSQL ceiling: {} events in batches of {}",
            args.events, args.batch
        ),
        &[("events/s", format!("{rate:.0}"))],
        json!({"scenario": "postgres-ceiling", "events": args.events, "batch": args.batch, "events_per_s": rate.round()}),
    );
    Ok(())
}
