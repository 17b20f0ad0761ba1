//! An `EventStore` on SQLite: one writer connection that commits each batch in
//! one transaction, one reader connection (WAL lets it read while the writer
//! writes), a schema versioned with `PRAGMA user_version`.
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed transaction is in
//! the WAL file (the operating system's cache) before `append` returns, so it
//! survives a crash or kill of the process. A power loss or kernel crash may
//! lose the last transactions committed before it (the database stays
//! consistent); `Durability::Full` (`synchronous=FULL`) closes that gap at
//! the cost of an fsync per batch. The writer writes the WAL through
//! `ep-wal-buffer`, which writes a commit's frames before the commit
//! returns, so none of this changes with it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admit;
mod checkpoint;
mod chunks;
mod counts;
mod error;
mod job_state;
mod legacy;
mod open;
mod plan;
mod rows;
mod schema;
mod space;
mod stamps;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use legacy::{LeftOut, LegacyDatabase, LegacyError, OldEvent, Skipped};
pub use open::{Durability, OpenError};
pub use schema::MigrationError;
pub use store::SqliteStore;
