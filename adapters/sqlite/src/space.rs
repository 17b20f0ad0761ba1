//! Free space on the database's filesystem: after commits failed for want
//! of it, appends are taken as possible again only once a margin is free,
//! not as soon as one page fits (which would let readiness flap between
//! ready and full while each batch still fails).

use std::path::Path;

/// Free space the write probe asks for before calling the store writable
/// again: room for several batches and the WAL's growth between checkpoints.
pub(crate) const PROBE_RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes an unprivileged writer may still use on the filesystem holding
/// `path`, if the platform says.
pub(crate) fn available_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::fs::statvfs(path)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_filesystem_reports_some_space() {
        let dir = tempfile::tempdir().expect("tempdir");
        if cfg!(unix) {
            assert!(available_bytes(dir.path()).is_some_and(|n| n > 0));
        }
    }
}
