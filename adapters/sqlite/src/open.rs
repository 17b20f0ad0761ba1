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

/// What a connection is for; each gets the settings its work needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The one connection that appends and deletes.
    Writer,
    /// Gets, queries, stats and pings.
    Reader,
    /// Background WAL checkpoints (see `checkpoint.rs`).
    Checkpointer,
}

/// WAL pages (4 KiB each) after which the writer checkpoints by itself: the
/// backstop, should the background checkpointer fall behind (with it, the
/// WAL starts over at `checkpoint::RESTART_FRAMES`, half of this), so
/// the WAL stays bounded whatever happens to that task. Under sustained
/// load of tens of thousands of events per second that task seldom gets
/// within one commit of the writer, and this is where the WAL starts over.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 80_000;

/// After a checkpoint lets the WAL start over, the first commit truncates it
/// to this size, so a burst does not leave a large file behind. That
/// truncation is on the commit path (freeing the file's blocks took 15-40 ms
/// when a large delete had grown the WAL to ~90 MiB), so the limit is the
/// writer's backstop: the WAL, which normally starts over at 160 MiB, is cut
/// only after it outgrew that.
const JOURNAL_SIZE_LIMIT_BYTES: u64 = WRITER_AUTOCHECKPOINT_PAGES as u64 * 4096;

/// The writer's page cache in KiB. It holds the pages the next inserts will
/// touch (the last leaf of every session's and user's index range); at
/// SQLite's default 2 MiB those were read back from the file on most inserts.
const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// The reader's page cache in KiB: room for the upper levels of every index
/// and the newest rows, which is what queries walk.
const READER_CACHE_KIB: u32 = 16 * 1024;

/// Settings for a connection in `role`. Only the writer checkpoints by
/// itself, and only as the backstop described at [`WRITER_AUTOCHECKPOINT_PAGES`].
///
/// # Errors
/// When SQLite refuses a setting.
pub(crate) fn configure(
    conn: &Connection,
    durability: Durability,
    role: Role,
) -> rusqlite::Result<()> {
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    let cache_kib = match role {
        Role::Writer => WRITER_CACHE_KIB,
        Role::Reader | Role::Checkpointer => READER_CACHE_KIB,
    };
    // No connection checkpoints by itself through SQLite's automatic
    // checkpoint: the writer's backstop is `writer_wal_hook` (the same
    // checkpoint, measured); the others never commit, and the checkpointer's
    // checkpoints are explicit.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES};"
    ))?;
    if role == Role::Writer {
        conn.wal_hook(Some(writer_wal_hook));
    }
    Ok(())
}

thread_local! {
    /// The WAL's size in frames after the last commit of the writer on this
    /// thread (each connection runs on a thread of its own).
    static WRITER_WAL_FRAMES: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// The backstop on this thread in tests, which cannot write 320 MiB.
    static TEST_BACKSTOP_PAGES: std::cell::Cell<u32> =
        const { std::cell::Cell::new(WRITER_AUTOCHECKPOINT_PAGES) };
}

/// WAL pages at which the writer's commit checkpoints by itself:
/// [`WRITER_AUTOCHECKPOINT_PAGES`], or a test's.
fn backstop_pages() -> u32 {
    #[cfg(test)]
    return TEST_BACKSTOP_PAGES.get();
    #[cfg(not(test))]
    WRITER_AUTOCHECKPOINT_PAGES
}

/// The WAL's size in frames after the writer's last commit, on the writer's
/// thread.
pub(crate) fn writer_wal_frames() -> i64 {
    WRITER_WAL_FRAMES.get()
}

/// Sets what [`writer_wal_frames`] answers on this thread.
#[cfg(test)]
pub(crate) fn set_writer_wal_frames(frames: i64) {
    WRITER_WAL_FRAMES.set(frames);
}

/// Runs after each of the writer's commits: notes the WAL's size (see
/// [`writer_wal_frames`]) and does what SQLite's automatic
/// checkpoint does (a PASSIVE checkpoint once the WAL holds
/// [`WRITER_AUTOCHECKPOINT_PAGES`]; its failure, say a reader in the way, is
/// not the commit's), and measures it: these are the commits that stall.
fn writer_wal_hook(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WRITER_WAL_FRAMES.set(i64::from(pages));
    if u32::try_from(pages).unwrap_or(0) >= backstop_pages() {
        let started = std::time::Instant::now();
        let outcome = wal.checkpoint();
        crate::checkpoint::record_stall(started);
        if let Err(e) = outcome {
            tracing::debug!(error = %e, "the writer's WAL checkpoint did not complete");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writers_commit_copies_the_wal_once_it_holds_the_backstops_pages() {
        // No background checkpointer here: only the writer's hook copies.
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("events.db")).expect("open");
        configure(&conn, Durability::Normal, Role::Writer).expect("configure");
        TEST_BACKSTOP_PAGES.set(1_000);
        conn.execute_batch("CREATE TABLE t (x BLOB)")
            .expect("schema");
        // 20 commits of ~250 pages (a row of 4,000 bytes fills about one).
        let mut largest = 0;
        for _ in 0..20 {
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
                 INSERT INTO t SELECT zeroblob(4000) FROM n",
                [],
            )
            .expect("insert");
            largest = largest.max(writer_wal_frames());
        }
        // Without the copy the WAL would hold ~5,000 pages by now.
        assert!(
            (1_000..1_300).contains(&largest),
            "the WAL held at most {largest} pages"
        );
    }
}
