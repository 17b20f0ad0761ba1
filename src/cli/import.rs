//! `import-legacy`: the events of the Python service's SQLite database,
//! copied into the configured store (SQLite, PostgreSQL) through the
//! `EventStore` port, in timestamp order, each keeping its id, timestamp
//! and payload. An event whose id the store holds already is skipped, so a
//! second run (or a run after an interrupted one) stores nothing twice.

use std::path::{Path, PathBuf};

use ep_store_sqlite::LegacyDatabase;

use super::progress;
use super::CliError;
use crate::config::{redact_url, Config, StoreKind};

/// How many left-out rows are named one by one before only the count.
const NAMED_LEFT_OUT: usize = 20;

/// `event-pipeline import-legacy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Python service's SQLite database (its events.db, or a copy).
    pub path: PathBuf,
    /// Events stored per commit.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub batch: u32,
}

/// Copies every event of `args.path` the store does not hold yet.
pub(crate) async fn run(args: Args) -> Result<(), CliError> {
    let config =
        Config::from_env().map_err(|e| CliError::Usage(format!("configuration error: {e}")))?;
    let target = target(&config, &args.path)?;
    let mut old = LegacyDatabase::open(&args.path).map_err(|e| CliError::Usage(e.to_string()))?;
    let (store, _) = crate::connect::open_store(&config)
        .await
        .map_err(|e| CliError::Connection(e.to_string()))?;
    let total = old.total();
    let bar = progress::bar(total as u64, "events");
    let (mut imported, mut present, mut left_out) = (0usize, 0usize, 0usize);
    loop {
        let rows = old
            .next_batch(args.batch as usize)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        if rows.is_empty() {
            break;
        }
        let mut fresh = Vec::with_capacity(rows.len());
        for row in rows {
            bar.inc(1);
            match row {
                Ok(event) => match store.get(&event.id).await {
                    Ok(Some(_)) => present += 1,
                    Ok(None) => fresh.push(event),
                    Err(e) => return Err(store_failed(&target, &e, imported)),
                },
                Err(skipped) => {
                    left_out += 1;
                    if left_out <= NAMED_LEFT_OUT {
                        bar.suspend(|| eprintln!("left out {}: {}", skipped.id, skipped.reason));
                    }
                }
            }
        }
        let n = fresh.len();
        if n > 0 {
            store
                .append(fresh)
                .await
                .map_err(|e| store_failed(&target, &e, imported))?;
            imported += n;
        }
    }
    bar.finish_and_clear();
    // As the service does when it stops: on SQLite the database file alone
    // then holds what was imported. Everything is committed already, so a
    // close that fails is a warning, not the import's failure.
    if let Err(e) = store.close().await {
        eprintln!("warning: {e}; the service recovers it when it next opens the database");
    }
    if left_out > NAMED_LEFT_OUT {
        eprintln!("... and {} more left out", left_out - NAMED_LEFT_OUT);
    }
    eprintln!(
        "imported {imported} of {total} events from {} into {target} ({present} already there, {left_out} left out)",
        args.path.display()
    );
    Ok(())
}

/// The configured store, for messages; refuses a target the import cannot
/// sensibly go to.
fn target(config: &Config, path: &Path) -> Result<String, CliError> {
    match config.event_store {
        StoreKind::Sqlite => {
            let same = match (
                std::fs::canonicalize(path),
                std::fs::canonicalize(&config.database_path),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if same {
                return Err(CliError::Usage(format!(
                    "{} is the configured DATABASE_PATH: start the service on it instead, which migrates it in place",
                    path.display()
                )));
            }
            Ok(format!("SQLite at {}", config.database_path.display()))
        }
        StoreKind::Postgres => Ok(format!(
            "PostgreSQL at {}",
            redact_url(config.database_url.as_deref().unwrap_or_default())
        )),
        StoreKind::Memory => Err(CliError::Usage(
            "EVENT_STORE=memory: an import into memory is gone when the command ends; configure the store the service runs on"
                .into(),
        )),
    }
}

fn store_failed(target: &str, e: &ep_ports::StoreError, imported: usize) -> CliError {
    CliError::Connection(format!(
        "{target}: {e} (after {imported} events; run the import again to go on: events already stored are skipped)"
    ))
}
