//! Opening the database file: its folder and file permissions, the
//! connection settings, and the schema migration.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::schema::MigrationError;

/// How hard a commit tries to survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL` in WAL mode: commits survive a process crash; the
    /// last ones may be lost on power loss. The default.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced and survives power loss.
    Full,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The missing folder of the database could not be created.
    #[error("cannot create the folder {folder} for the database {path}: {source}")]
    CreateDir {
        /// The database file.
        path: PathBuf,
        /// The folder.
        folder: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The database file could not be created or opened.
    #[error("cannot open the database file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// SQLite refused to open or configure the database.
    #[error("cannot open the database {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot prepare the database {path}: {source}")]
    Migration {
        /// The file.
        path: PathBuf,
        /// Why.
        source: MigrationError,
    },
}

/// Creates the database's folder (mode 0700, only the folders that are
/// missing: an existing folder's mode is never touched) and the file itself
/// (mode 0600) if missing. Returns the file's (device, inode) identity.
pub(crate) fn prepare_file(path: &Path) -> Result<(u64, u64), OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| OpenError::CreateDir {
                    path: path.to_owned(),
                    folder: dir.to_owned(),
                    source,
                })?;
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| OpenError::File {
            path: path.to_owned(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| OpenError::File {
        path: path.to_owned(),
        source,
    })?;
    Ok((meta.dev(), meta.ino()))
}

/// The (device, inode) identity of the file now at `path`, if any.
pub(crate) fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Settings every connection gets. Checkpoints are left to the
/// checkpointer (see `checkpoint.rs`), never done by the writer.
pub(crate) fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 1000;"
    ))
}
