//! What may be opened as the store: the file is looked at before anything
//! touches it, so a foreign database is refused as it was found.

use std::path::Path;

use rusqlite::Connection;

use crate::legacy::{self, Schema};
use crate::schema::{MigrationError, LATEST, MIGRATIONS};

/// Looks at the file before anything touches it: a database of neither
/// this service nor the Python one, or of a newer build, is refused
/// untouched (not even switched to WAL); a database of the Python service
/// at `path` is copied beside itself and migrated in place (see
/// `legacy.rs`). Runs on a connection not yet configured.
pub(crate) fn admit(conn: &mut Connection, path: &Path) -> Result<(), MigrationError> {
    match legacy::inspect(conn)? {
        Schema::Foreign(tables) => Err(MigrationError::NotOurs { tables }),
        Schema::Legacy => {
            legacy::migrate_in_place(conn, path, MIGRATIONS[0])?;
            Ok(())
        }
        Schema::Ours => match conn.query_row("PRAGMA user_version", [], |r| r.get(0))? {
            found if found > LATEST => Err(MigrationError::TooNew { found }),
            _ => Ok(()),
        },
        Schema::Empty => Ok(()),
    }
}
