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
    /// of 1,000) first and report the rate as a ratio to it.
    #[arg(long)]
    sqlite_ceiling: bool,
    /// Also measure the raw PostgreSQL batched append rate in this database
    /// (same schema, batches of 1,000, a schema of its own) and report the
    /// rate as a ratio to it.
    #[arg(long)]
    postgres_ceiling: Option<String>,
}

impl StoreCeiling {
    /// The ceiling's name and events/s, if one was asked for.
    pub async fn measure(&self) -> Result<Option<(&'static str, f64)>, String> {
        if self.sqlite_ceiling {
            return Ok(Some(("SQLite", sqlite_rate(300_000, 1_000).await?)));
        }
        if let Some(url) = &self.postgres_ceiling {
            return Ok(Some((
                "PostgreSQL",
                postgres_rate(url, 300_000, 1_000).await?,
            )));
        }
        Ok(None)
    }
}

/// Events per second `store` commits in batches of `batch`, with keys
/// spread as the publish scenarios spread them.
async fn store_rate(store: &dyn EventStore, events: u64, batch: u64) -> Result<f64, String> {
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
                id: EventId::new(format!("evt_{:032x}", (base as u128) << 40 | u128::from(i))),
                event_type: EventType::AnswerSubmitted,
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

/// Events per second the SQLite store commits in batches, on a temporary
/// file, with the service's schema and settings.
pub async fn sqlite_rate(events: u64, batch: u64) -> Result<f64, String> {
    let dir = std::env::temp_dir().join(format!("ep-bench-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(dir.join("events.db"), Durability::Normal)
        .await
        .map_err(|e| e.to_string())?;
    let rate = store_rate(&store, events, batch).await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

/// Events per second the PostgreSQL store commits in batches, in a schema
/// of its own in `url`'s database (dropped afterwards).
pub async fn postgres_rate(url: &str, events: u64, batch: u64) -> Result<f64, String> {
    let name = format!(
        "ep_bench_{}_{}",
        std::process::id(),
        crate::report::now_us()
    );
    let schema = TempSchema::create(url, name).await?;
    let store = PostgresStore::open(&schema.url(), PostgresOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    store_rate(&store, events, batch).await
}

pub async fn run_sqlite(args: SqliteArgs) -> Result<(), String> {
    let rate = sqlite_rate(args.events, args.batch).await?;
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
    let rate = postgres_rate(&args.database_url, args.events, args.batch).await?;
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
