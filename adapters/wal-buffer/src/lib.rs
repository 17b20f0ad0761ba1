//! A SQLite VFS, a shim over the default one, that gathers the frames a
//! transaction appends to its WAL file and writes them with one call per
//! 120 KiB.
//!
//! SQLite writes each WAL frame with two `pwrite` calls (its 24-byte header,
//! then the page), and a frame that straddles two pages of the operating
//! system's cache touches both. A commit of 1,000 events writes 2,000-2,500
//! frames on a database of a million events or more, so the writer's
//! thread spent half of its time in those calls (`perf`, WebSocket publish
//! at 4 x 256 in flight). This shim copies appended frames into a buffer
//! and writes it (in calls of up to 120 KiB, what the default VFS takes)
//! when the transaction's commit frame is complete, before
//! SQLite returns from the commit or makes it visible to other connections.
//!
//! What keeps it safe:
//! - only writes at or past the furthest offset this handle has written
//!   (`end`) are buffered: appends. A write before it (SQLite rewriting a
//!   frame of the same transaction, or the checksums after that) flushes the
//!   buffer and goes straight to the file, in order. The WAL header, written
//!   at offset 0 when the WAL starts over, does the same and makes the file
//!   past it stale, so `end` starts over with it;
//! - a commit frame is the last frame a transaction writes, and its header
//!   says so (bytes 4-7, the database size after the commit, are non-zero
//!   only there): the buffer is written as soon as that frame's page is in
//!   it. Nothing SQLite does after a commit frame (checksum rewrites, the
//!   WAL index, the return to the caller) sees an unwritten byte;
//! - every other call on the file (read, sync, truncate, size, file
//!   controls, close) writes the buffer first. A failed write returns its
//!   error to the call that caused it, as the default VFS would;
//! - the buffer is written once it holds [`FLUSH_BYTES`], so a large
//!   transaction (a delete step) does not hold more.
//!
//! Files other than WAL files are the default VFS's own, untouched. A
//! process that dies loses only frames of a transaction that had not
//! committed, which SQLite would have ignored on recovery anyway.
//!
//! Measured (2026-12-05, same-run A/Bs against the build before it on this
//! 2-core machine): WebSocket publish at 4 x 256 in flight, three 8 s
//! rounds into one server, twice, 76.2k / 54.2k / 56.1k and 79.9k / 64.1k
//! / 58.4k -> 95.0k / 81.3k / 71.9k and 100.0k / 72.3k / 70.5k events/s,
//! ack p50 11.9-16.9 -> 9.0-12.0 ms; REST at 64 connections 41.4-43.8k ->
//! 48.4-49.7k events/s (0.35-0.38 -> 0.42-0.44 of the no-op), the server's
//! CPU 29.4-32.2 -> 26.7-27.5 µs per request.

#![warn(missing_docs)]

use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the VFS is registered under; give it to
/// `Connection::open_with_flags_and_vfs`.
pub const NAME: &CStr = c"ep-wal-buffer";

/// Bytes the buffer holds at most before it is written.
pub const FLUSH_BYTES: usize = 16 << 20;

/// Bytes handed to the default VFS per write call: its unix VFS writes at
/// most 128 KiB - 1 per call (it masks the length), which is 31 frames of
/// 4 KiB pages instead of 62 calls.
const WRITE_BYTES: usize = 120 << 10;

/// Size of a WAL frame header.
const FRAME_HEADER: usize = 24;

/// Why the VFS could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterError(pub c_int);

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot register the SQLite VFS {}: SQLite error {}",
            NAME.to_string_lossy(),
            self.0
        )
    }
}

impl std::error::Error for RegisterError {}

/// Registers the VFS (once per process; later calls answer the first
/// call's outcome) over SQLite's default VFS, without making it the
/// default. Answers its name.
///
/// # Errors
/// When SQLite has no default VFS or refuses the registration.
pub fn register() -> Result<&'static CStr, RegisterError> {
    static REGISTERED: OnceLock<Result<(), RegisterError>> = OnceLock::new();
    (*REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` answers SQLite's default VFS (or
        // NULL), which lives as long as the process. The copy is leaked: a
        // registered VFS must outlive every connection that uses it.
        unsafe {
            let root = ffi::sqlite3_vfs_find(std::ptr::null());
            if root.is_null() {
                return Err(RegisterError(ffi::SQLITE_ERROR));
            }
            let Some(open) = (*root).xOpen else {
                return Err(RegisterError(ffi::SQLITE_ERROR));
            };
            ROOT_OPEN.get_or_init(|| open);
            let mut vfs: ffi::sqlite3_vfs = *root;
            vfs.szOsFile = c_int::try_from(HEADER)
                .ok()
                .and_then(|h| h.checked_add((*root).szOsFile))
                .ok_or(RegisterError(ffi::SQLITE_ERROR))?;
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = NAME.as_ptr();
            vfs.pAppData = root.cast::<c_void>();
            vfs.xOpen = Some(x_open);
            let vfs = Box::leak(Box::new(vfs));
            match ffi::sqlite3_vfs_register(vfs, 0) {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(RegisterError(rc)),
            }
        }
    }))
    .map(|()| NAME)
}

/// The default VFS's `xOpen`.
static ROOT_OPEN: OnceLock<
    unsafe extern "C" fn(
        *mut ffi::sqlite3_vfs,
        ffi::sqlite3_filename,
        *mut ffi::sqlite3_file,
        c_int,
        *mut c_int,
    ) -> c_int,
> = OnceLock::new();

thread_local! {
    /// Write calls made to WAL files on this thread (each connection runs
    /// on one thread at a time).
    static WAL_WRITES: Cell<u64> = const { Cell::new(0) };
}

/// Write calls this shim has made to WAL files on the calling thread: how
/// tests see that frames are gathered.
pub fn wal_writes_on_this_thread() -> u64 {
    WAL_WRITES.get()
}

/// Writes `amount` bytes at `offset` through the default VFS's file,
/// counted.
unsafe fn write_through(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    WAL_WRITES.set(WAL_WRITES.get() + 1);
    let (inner, methods) = inner(file);
    methods.xWrite.map_or(ffi::SQLITE_IOERR_WRITE, |write| {
        write(inner, buf, amount, offset)
    })
}

/// A WAL file: SQLite's `sqlite3_file` with this shim's methods, the
/// default VFS's file after it (at [`HEADER`] bytes in the same memory),
/// and the buffer.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    state: *mut State,
}

/// Where the default VFS's file starts in the memory SQLite gives a file.
const HEADER: usize = std::mem::size_of::<WalFile>().next_multiple_of(16);

/// The buffered frames of a WAL file.
#[derive(Default)]
struct State {
    /// Frames appended and not yet written.
    buffer: Vec<u8>,
    /// The file offset of `buffer[0]`.
    start: i64,
    /// The furthest offset written through this handle (buffered or not)
    /// since the WAL last started over.
    end: i64,
    /// The last write was a commit frame's header: write the buffer after
    /// its page.
    commit_pending: bool,
}

/// Opens `name`: a WAL file with this shim's methods, any other file as the
/// default VFS opens it (in the same memory, with its own methods).
unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let root = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
    let Some(open) = ROOT_OPEN.get() else {
        return ffi::SQLITE_ERROR;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        return open(root, name, file, flags, out_flags);
    }
    let wal = file.cast::<WalFile>();
    let inner = file.cast::<u8>().add(HEADER).cast::<ffi::sqlite3_file>();
    (*wal).base.pMethods = std::ptr::null();
    let rc = open(root, name, inner, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    (*wal).inner = inner;
    (*wal).state = Box::into_raw(Box::default());
    (*wal).base.pMethods = &WAL_METHODS;
    ffi::SQLITE_OK
}

// The methods below are called by SQLite with a file it opened through
// `x_open` with `SQLITE_OPEN_WAL`: `file` points to a live `WalFile` whose
// `inner` (the default VFS's open file) and `state` were set there, and
// SQLite calls one method of a file at a time, from the thread that uses
// its connection. `x_close` frees `state`; SQLite calls nothing after it.
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// The default VFS's file and its methods behind `file`.
unsafe fn inner(
    file: *mut ffi::sqlite3_file,
) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    let inner = (*file.cast::<WalFile>()).inner;
    (inner, &*(*inner).pMethods)
}

/// Writes the buffer, if it holds anything, in calls of up to [`WRITE_BYTES`].
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    let state = &mut *(*file.cast::<WalFile>()).state;
    state.commit_pending = false;
    if state.buffer.is_empty() {
        return ffi::SQLITE_OK;
    }
    let mut rc = ffi::SQLITE_OK;
    let mut offset = state.start;
    for chunk in state.buffer.chunks(WRITE_BYTES) {
        // A chunk is at most WRITE_BYTES, which fits.
        let len = chunk.len() as c_int;
        rc = write_through(file, chunk.as_ptr().cast::<c_void>(), len, offset);
        if rc != ffi::SQLITE_OK {
            break;
        }
        offset += i64::from(len);
    }
    state.buffer.clear();
    rc
}

/// Writes the buffer and, if that went well, answers `then` called with the
/// default VFS's file and methods.
unsafe fn after_flush(
    file: *mut ffi::sqlite3_file,
    then: impl FnOnce(*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) -> c_int,
) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (inner, methods) = inner(file);
    then(inner, methods)
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let flushed = flush(file);
    let (inner, methods) = inner(file);
    let closed = methods.xClose.map_or(ffi::SQLITE_OK, |close| close(inner));
    let wal = file.cast::<WalFile>();
    drop(Box::from_raw((*wal).state));
    (*wal).state = std::ptr::null_mut();
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    after_flush(file, |inner, methods| {
        methods.xRead.map_or(ffi::SQLITE_IOERR_READ, |read| {
            read(inner, buf, amount, offset)
        })
    })
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    let state = &mut *(*file.cast::<WalFile>()).state;
    let appends = offset >= state.end;
    if !appends || (!state.buffer.is_empty() && offset != state.start + state.buffer.len() as i64) {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if !appends {
        // A rewrite before the end, or the header of a WAL starting over.
        let rc = write_through(file, buf, amount, offset);
        if rc == ffi::SQLITE_OK {
            let state = &mut *(*file.cast::<WalFile>()).state;
            state.end = if offset == 0 {
                offset + i64::from(amount)
            } else {
                state.end.max(offset + i64::from(amount))
            };
        }
        return rc;
    }
    let state = &mut *(*file.cast::<WalFile>()).state;
    if state.buffer.is_empty() {
        state.start = offset;
    }
    state.buffer.extend_from_slice(bytes);
    state.end = offset + i64::from(amount);
    if state.commit_pending || state.buffer.len() >= FLUSH_BYTES {
        return flush(file);
    }
    state.commit_pending = len == FRAME_HEADER && bytes[4..8] != [0; 4];
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    let rc = after_flush(file, |inner, methods| {
        methods
            .xTruncate
            .map_or(ffi::SQLITE_IOERR_TRUNCATE, |truncate| truncate(inner, size))
    });
    let state = &mut *(*file.cast::<WalFile>()).state;
    state.end = state.end.min(size);
    rc
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    after_flush(file, |inner, methods| {
        methods
            .xSync
            .map_or(ffi::SQLITE_IOERR_FSYNC, |sync| sync(inner, flags))
    })
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    after_flush(file, |inner, methods| {
        methods
            .xFileSize
            .map_or(ffi::SQLITE_IOERR_FSTAT, |file_size| file_size(inner, size))
    })
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (inner, methods) = inner(file);
    methods
        .xLock
        .map_or(ffi::SQLITE_OK, |lock| lock(inner, level))
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (inner, methods) = inner(file);
    methods
        .xUnlock
        .map_or(ffi::SQLITE_OK, |unlock| unlock(inner, level))
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (inner, methods) = inner(file);
    methods
        .xCheckReservedLock
        .map_or(ffi::SQLITE_OK, |check| check(inner, out))
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    after_flush(file, |inner, methods| {
        methods
            .xFileControl
            .map_or(ffi::SQLITE_NOTFOUND, |control| control(inner, op, arg))
    })
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (inner, methods) = inner(file);
    methods.xSectorSize.map_or(4096, |sector| sector(inner))
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (inner, methods) = inner(file);
    methods
        .xDeviceCharacteristics
        .map_or(0, |characteristics| characteristics(inner))
}
