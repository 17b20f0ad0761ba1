//! Translation of PostgreSQL and pool errors into the port's `StoreError`.

use deadpool_postgres::PoolError;
use ep_ports::StoreError;
use tokio_postgres::error::SqlState;

/// Maps a PostgreSQL error onto the port's vocabulary.
pub(crate) fn store_error(e: &tokio_postgres::Error) -> StoreError {
    match e.code() {
        Some(code) if *code == SqlState::DISK_FULL => StoreError::Full(e.to_string()),
        Some(code) if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Unavailable(describe(e)),
    }
}

/// A pool that gave no connection: the server is down or unreachable.
pub(crate) fn pool_error(e: &PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => store_error(e),
        other => StoreError::Unavailable(format!("no PostgreSQL connection: {other}")),
    }
}

/// The error with the server's message, which tokio-postgres' own text
/// ("db error") leaves out, or with its cause ("error connecting to
/// server" alone does not say that the host name does not resolve).
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("PostgreSQL: {} ({})", db.message(), db.code().code());
    }
    let mut text = format!("PostgreSQL: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// Whether the error is a UNIQUE violation.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}
