//! Translation of SQLite errors into the port's `StoreError`.

use ep_ports::StoreError;
use rusqlite::ErrorCode;

/// Maps a rusqlite error onto the port's vocabulary.
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
        {
            StoreError::Corrupt(e.to_string())
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => {
            StoreError::Full(e.to_string())
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Maps a failure of the connection's thread (closed) or of the call itself.
pub(crate) fn call_error(e: tokio_rusqlite::Error<StoreError>) -> StoreError {
    match e {
        tokio_rusqlite::Error::Error(e) => e,
        tokio_rusqlite::Error::ConnectionClosed => {
            StoreError::Unavailable("database connection is closed".into())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Whether the error is a UNIQUE constraint violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation
            && f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}
