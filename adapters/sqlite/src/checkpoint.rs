//! Background WAL checkpoints on a connection and thread of their own.
//!
//! While the writer is writing, this task runs PASSIVE checkpoints: each
//! copies the committed WAL pages into the database file (and fsyncs it)
//! without blocking the writer or readers. A pass that took longer than
//! [`BUSY_INTERVAL`] (the writer appended meanwhile) is followed by the next
//! at once; with nothing new in the WAL it looks every [`IDLE_INTERVAL`].
//!
//! Passive checkpoints cannot let the WAL start over while the writer keeps
//! appending: only a checkpoint that has copied every frame before the
//! writer's next transaction can. Once the WAL holds [`RESTART_FRAMES`], this
//! task catches up with passive passes until one finds almost nothing left
//! and asks the writer ([`WalProgress`]) for a restart. Once this task has
//! copied all but the writer's last commit (or all but [`HONOURED_BEHIND`]
//! pages), it keeps out of the way and the writer, before its next
//! transaction, checkpoints the rest: one batch, written moments ago, which
//! the commits behind it wait for (counted and timed as
//! `event_pipeline_wal_checkpoint_stalls_total` and
//! `event_pipeline_wal_checkpoint_stall_seconds`). That transaction starts
//! the WAL over. Delete steps also wait while this task is far behind.
//!
//! Measured against the writer checkpointing by itself at 10,000 pages
//! (which copied the 2,000-6,000 pages this task had not yet; same-run A/B,
//! 2026-12-04): WebSocket publish at 4 x 256 in flight 50.7-56.3k -> 68.7k
//! events/s, checkpoint stalls 6.2-6.5 s -> 1.2-1.3 s per run, ack p99
//! 76-90 -> 60-63 ms; publishes during a 170,000-event delete
//! (`bench/big.sh 1000000`) max 83-98 -> 52-65 ms, p999 67-70 -> 37-42 ms,
//! the delete 9.6-10.0 -> 6.6-6.8 s.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_rusqlite::Connection;

use crate::open::writer_wal_frames;

/// How often to checkpoint while the WAL grows.
const BUSY_INTERVAL: Duration = Duration::from_millis(10);

/// How often to look while the WAL does not change.
const IDLE_INTERVAL: Duration = Duration::from_millis(100);

/// How often to checkpoint while the writer is asked to let the WAL start
/// over and this task has not caught up: the sooner it has, the sooner the
/// writer finds the WAL copied between two of its transactions.
const CATCHING_UP_INTERVAL: Duration = Duration::from_millis(1);

/// WAL frames (4 KiB pages) after which the WAL starts over. Every commit
/// writes each index leaf it touches to the WAL, and the session and user
/// indexes took keys in random order, so under load the WAL grew by 1-2
/// pages per event (schema 8 keys them by chunk, [`crate::chunks`], which
/// cuts that several-fold; the figures here are from before it); starting over every 1,000 pages (SQLite's default) cost
/// the writer measurably (the batched insert rate 55k -> 97k events/s from
/// 1,000 pages to 10,000, with the writer's 64 MiB cache). Each start-over
/// costs the writer one batch's copy and two fsyncs (5-50 ms) on the commit
/// path, so the fewer the better, up to what the disk should hold: 40,000
/// pages (160 MiB) since 2026-12-04. Same-run A/Bs, 8 s of WebSocket publish
/// at 4 x 256 in flight per round, on a slow afternoon of this machine:
/// 10,000 -> 20,000 pages, ack p99 54.7-64.6 ms (median 62.3) -> 55.4-60.6
/// (median 57.1) over four rounds each; 20,000 -> 40,000, 63.7 / 68.5 /
/// 64.6 / 65.8 -> 54.7 / 53.4 / 53.2 / 77.1 ms, the writer's checkpoints
/// 0.32-0.42 -> 0.17-0.22 s per run (earlier, 10,000 -> 40,000: 50.0-65.1
/// -> 42.2-52.5 ms over six rounds). Publishes during a 170,000-event delete
/// (`bench/big.sh 1000000`'s scenario, two rounds on copies of one
/// database), 20,000 -> 40,000: max 135 / 97 -> 76 / 83 ms, the delete
/// 13.8 / 11.0 -> 10.9 / 10.3 s. At that load (40-60k events/s) the
/// checkpointer seldom gets within one commit of the writer, so the WAL
/// mostly starts over at the writer's backstop (the file reached 306-342 MB
/// in two 8 s runs): the gain is the backstop's as much as this constant's,
/// and builds that differed only in the backstop (40,000 -> 80,000 pages,
/// start-over at 20,000) gave ack p99 55.4-60.6 -> 44.3-54.3 ms.
pub(crate) const RESTART_FRAMES: i64 = 40_000;

/// WAL frames past [`RESTART_FRAMES`] per millisecond the writer waits
/// before a transaction while the checkpointer catches up (see
/// [`catch_up_pause`]).
const PAUSE_STEP_FRAMES: i64 = 5_000;

/// The longest the writer waits before one transaction for the
/// checkpointer: at [`RESTART_FRAMES`] + 9 x [`PAUSE_STEP_FRAMES`] and over.
const PAUSE_MAX: Duration = Duration::from_millis(10);

/// How long the writer waits before a transaction, the WAL holding
/// `written` frames and the checkpointer not yet within a commit of it:
/// nothing below [`RESTART_FRAMES`], then 1 ms, one more per
/// [`PAUSE_STEP_FRAMES`], up to [`PAUSE_MAX`].
///
/// Under sustained load the writer appends faster than the checkpointer
/// copies on the same two cores, so the WAL reached the writer's backstop
/// before the checkpointer caught up, and the writer copied the rest in one
/// stall of 12-74 ms that every event in flight waited for (30 times in 24
/// s of WebSocket publish at 4 x 256 in flight). Waiting a little before
/// each transaction instead gives the checkpointer the cores in small
/// slices. Same-run A/B, three 8 s rounds into one server, twice: see the
/// bench README (2026-12-05).
pub(crate) fn catch_up_pause(written: i64) -> Duration {
    if written < RESTART_FRAMES {
        return Duration::ZERO;
    }
    let steps = 1 + (written - RESTART_FRAMES) / PAUSE_STEP_FRAMES;
    Duration::from_millis(u64::try_from(steps).unwrap_or(u64::MAX)).min(PAUSE_MAX)
}

/// A passive pass at least this fast found almost nothing left to copy: the
/// writer's checkpoint after it will be short.
const CAUGHT_UP: Duration = Duration::from_millis(2);

/// Passive passes at most before asking the writer, should the writer append
/// as fast as they copy.
const CATCH_UP_PASSES: usize = 4;

/// The writer's checkpoints, which its commits wait for, counted and timed.
const CHECKPOINT_STALLS: &str = "event_pipeline_wal_checkpoint_stalls_total";
const CHECKPOINT_STALL_SECONDS: &str = "event_pipeline_wal_checkpoint_stall_seconds";

/// Records a checkpoint of the writer's, begun at `started`.
pub(crate) fn record_stall(started: Instant) {
    metrics::counter!(CHECKPOINT_STALLS).increment(1);
    metrics::histogram!(CHECKPOINT_STALL_SECONDS).record(started.elapsed().as_secs_f64());
}

/// The checkpoint task and its connection: stopped when the store closes or
/// is dropped.
pub(crate) struct Checkpointer {
    task: JoinHandle<()>,
    /// The task's connection, kept here so that closing the store closes it
    /// too: SQLite copies the WAL and removes it only when the last
    /// connection closes.
    conn: Connection,
}

impl Checkpointer {
    /// Stops the task and closes its connection once a pass under way ends.
    pub(crate) async fn close(&self) -> Result<(), tokio_rusqlite::Error> {
        self.task.abort();
        self.conn.clone().close().await
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one `PRAGMA wal_checkpoint(PASSIVE)` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Another checkpoint held the lock, or this task waits for the
    /// writer's: nothing done.
    pub(crate) refused: bool,
    /// Frames in the WAL when the pass ran (-1 when refused).
    pub(crate) frames: i64,
    /// Frames copied into the database file, all told (-1 when refused).
    pub(crate) copied: i64,
}

/// How long to wait after `pass`, which took `took`, given the WAL's size in
/// frames after the previous completed pass.
pub(crate) fn pause_after(pass: Pass, took: Duration, last_frames: i64) -> Duration {
    if pass.refused {
        BUSY_INTERVAL
    } else if pass.frames == last_frames {
        IDLE_INTERVAL
    } else {
        BUSY_INTERVAL.saturating_sub(took)
    }
}

/// What the writer and the checkpointer know of each other's progress
/// through the WAL, shared between them.
#[derive(Debug, Default)]
pub(crate) struct WalProgress {
    /// Frames in the WAL after the writer's last commit.
    written: AtomicI64,
    /// Frames that commit added if it appended events, 0 after a delete
    /// step.
    last_commit: AtomicI64,
    /// Frames the checkpointer's last pass had copied.
    copied: AtomicI64,
    /// The checkpointer has caught up with a WAL of [`RESTART_FRAMES`] or
    /// more and asks the writer to checkpoint the rest before a transaction.
    restart_asked: AtomicBool,
}

/// Frames the checkpointer may not have copied yet when the writer honours its
/// request, besides the writer's last commit: the writer's checkpoint copies
/// and fsyncs them (~1,000 random pages took 4 ms to write and 15 ms to
/// fsync on the measured machine's disk).
const HONOURED_BEHIND: i64 = 500;

/// Frames the checkpointer may be behind the writer before a delete step
/// waits for it (see [`WalProgress::wait_for_copies`]): each step's pages
/// are copied while the next waits its turn, so the copy the writer makes
/// before a start-over stays one batch's, and the WAL never nears the
/// writer's backstop. Kept at 5,000 when [`RESTART_FRAMES`] grew from
/// 10,000: at 10,000 (half of a 20,000-page start-over) the slowest publish
/// during a 170,000-event delete reached 75 / 102 ms (two rounds) against
/// 59-73 ms at 5,000 (four).
const DELETE_BEHIND: i64 = 5_000;

/// The longest a delete step waits for the checkpointer: whatever happens to
/// that task, deletes go on.
const DELETE_WAIT_MAX: Duration = Duration::from_secs(1);

impl WalProgress {
    /// Frames the checkpointer has yet to copy.
    fn behind(&self) -> i64 {
        self.written.load(Ordering::Acquire) - self.copied.load(Ordering::Acquire)
    }

    /// Run by the writer after each commit of events: notes the WAL's size.
    pub(crate) fn after_append(&self) {
        let written = writer_wal_frames();
        let before = self.written.swap(written, Ordering::AcqRel);
        let added = if written >= before {
            written - before
        } else {
            written
        };
        self.last_commit.store(added, Ordering::Release);
    }

    /// Run by the writer after each delete step: notes the WAL's size. A
    /// step writes more than a batch, and publishes waited for it already:
    /// the checkpointer copies it (the next step waits for that in
    /// [`WalProgress::wait_for_copies`]), not the writer.
    pub(crate) fn after_delete(&self) {
        self.written.store(writer_wal_frames(), Ordering::Release);
        self.last_commit.store(0, Ordering::Release);
    }

    /// Frames the checkpointer may still have to copy when the writer
    /// honours its request: the writer's last commit of events, or
    /// [`HONOURED_BEHIND`].
    fn slack(&self) -> i64 {
        self.last_commit
            .load(Ordering::Acquire)
            .max(HONOURED_BEHIND)
    }

    /// Whether the checkpointer asked for a restart and has copied all but
    /// the [`WalProgress::slack`]: the writer's checkpoint is due.
    fn restart_due(&self) -> bool {
        self.restart_asked.load(Ordering::Acquire) && self.behind() <= self.slack()
    }

    /// Run by the writer before each transaction: while the WAL is past
    /// [`RESTART_FRAMES`] and the checkpointer not within a commit of it,
    /// waits [`catch_up_pause`]. When the checkpointer asks
    /// and has copied all but the last commit (or [`HONOURED_BEHIND`]
    /// frames), checkpoints the rest, so that this transaction starts the WAL
    /// over. The checkpointer cannot copy the last commit between two of the
    /// writer's transactions when they come back to back, so the writer
    /// copies it: one batch, written moments ago. A checkpoint refused
    /// because a pass of the checkpointer's is running costs nothing and is
    /// tried again before the next transaction.
    pub(crate) fn before_transaction(&self, conn: &rusqlite::Connection) {
        let pause = self.pause_due();
        if !pause.is_zero() {
            // Between two transactions: the checkpointer copies meanwhile.
            std::thread::sleep(pause);
            return;
        }
        if !self.restart_due() {
            return;
        }
        // With fewer frames than were copied, the WAL started over already.
        if self.behind() >= 0 {
            let started = Instant::now();
            match checkpoint(conn) {
                Ok(pass) if pass.refused => return,
                Ok(_) => record_stall(started),
                Err(e) => {
                    tracing::debug!(error = %e, "the writer's WAL checkpoint failed");
                    return;
                }
            }
        }
        self.restart_asked.store(false, Ordering::Release);
    }

    /// How long the writer waits before its next transaction: nothing when
    /// its checkpoint is due, else [`catch_up_pause`] of the WAL's size.
    fn pause_due(&self) -> Duration {
        if self.restart_due() {
            Duration::ZERO
        } else {
            catch_up_pause(self.written.load(Ordering::Acquire))
        }
    }

    /// Run before a delete step. Deletes write the WAL faster than it can be
    /// copied (every deleted row dirties a leaf of each index), so a step
    /// waits, up to [`DELETE_WAIT_MAX`], while the checkpointer is more than
    /// [`DELETE_BEHIND`] frames behind, or has asked for a restart that is
    /// not due yet; otherwise the WAL outgrows what the writer's checkpoint
    /// can copy without stalling publishes. The domain counts the wait as the
    /// step's, so it also sizes the next step down and pauses as long.
    pub(crate) async fn wait_for_copies(&self) {
        // tokio's clock, as the sleeps: paused in tests.
        let started = tokio::time::Instant::now();
        while (self.behind() > DELETE_BEHIND
            || (self.restart_asked.load(Ordering::Acquire) && !self.restart_due()))
            && started.elapsed() < DELETE_WAIT_MAX
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Runs one passive checkpoint.
fn checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<Pass> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Pass {
            refused: r.get::<_, i64>(0)? != 0,
            frames: r.get(1)?,
            copied: r.get(2)?,
        })
    })
}

/// WAL pages left by a previous run from which copying them at open is
/// logged at info (a crash, a kill, or a process that exited without closing
/// its connections); fewer, at debug.
const LEFT_OVER_LOGGED: i64 = 1_000;

/// Run by the writer at open, before the other connections: copies into the
/// database what a previous process left in the WAL. A process killed under
/// load leaves up to the writer's backstop (80,000 pages); left there, the
/// first commits find the WAL over the backstop and the writer copies it on
/// the commit path: on a 5M-event database whose WAL held 40,565 pages (over
/// the backstop of then, 40,000) the
/// slowest of the first publishes waited 215-372 ms for that in five runs of
/// eight, and 32-37 ms in three of three with this copy, which took
/// 0.38-0.44 s. Passive: should another process have the file open,
/// this waits for nobody. The writer's next commit starts the WAL over. A
/// failure is logged, not the open's: the background checkpointer copies
/// the WAL then. Answers the pass, if it ran.
pub(crate) fn copy_left_over(conn: &rusqlite::Connection) -> Option<Pass> {
    let started = Instant::now();
    let pass = match checkpoint(conn) {
        Ok(pass) => pass,
        Err(e) => {
            tracing::warn!(error = %e, "could not copy the WAL a previous run left; the background checkpointer will");
            return None;
        }
    };
    let took_ms = started.elapsed().as_millis();
    if pass.frames >= LEFT_OVER_LOGGED {
        tracing::info!(
            pages = pass.frames,
            copied = pass.copied,
            took_ms,
            "copied the WAL a previous run left into the database"
        );
    } else {
        tracing::debug!(
            pages = pass.frames,
            copied = pass.copied,
            took_ms,
            refused = pass.refused,
            "the WAL at open"
        );
    }
    Some(pass)
}

/// One passive pass, and when the WAL has grown to [`RESTART_FRAMES`], the
/// catch-up passes and the request to the writer. Answers the first pass and
/// how long it took; once it has asked and caught up, runs none (answering
/// a refused pass) until the writer has checkpointed.
fn pass(conn: &mut rusqlite::Connection, wal: &WalProgress) -> rusqlite::Result<(Pass, Duration)> {
    if wal.restart_due() {
        // Caught up: keep out of the way of the writer's checkpoint.
        let waiting = Pass {
            refused: true,
            frames: -1,
            copied: -1,
        };
        return Ok((waiting, Duration::ZERO));
    }
    let started = Instant::now();
    let first = checkpoint(conn)?;
    let took = started.elapsed();
    if first.refused {
        return Ok((first, took));
    }
    wal.copied.store(first.copied, Ordering::Release);
    if first.frames < RESTART_FRAMES {
        return Ok((first, took));
    }
    let mut last = took;
    for _ in 0..CATCH_UP_PASSES {
        if last < CAUGHT_UP {
            break;
        }
        let started = Instant::now();
        let pass = checkpoint(conn)?;
        last = started.elapsed();
        if pass.refused {
            return Ok((first, took));
        }
        wal.copied.store(pass.copied, Ordering::Release);
    }
    wal.restart_asked.store(true, Ordering::Release);
    Ok((first, took))
}

/// Starts checkpointing on `conn` (a connection of its own), sharing `wal`
/// with the writer (see [`WalProgress::before_transaction`]).
pub(crate) fn spawn(conn: Connection, wal: Arc<WalProgress>) -> Checkpointer {
    let kept = conn.clone();
    let task = tokio::spawn(async move {
        // The WAL's size in frames at the previous completed pass.
        let mut last_frames = -1;
        loop {
            let shared = Arc::clone(&wal);
            let result = conn.call(move |c| pass(c, &shared)).await;
            let pause = match result {
                Ok((pass, took)) => {
                    let mut pause = pause_after(pass, took, last_frames);
                    if !pass.refused && wal.restart_asked.load(Ordering::Acquire) {
                        pause = pause.min(CATCHING_UP_INTERVAL);
                    }
                    if !pass.refused {
                        last_frames = pass.frames;
                    }
                    pause
                }
                Err(tokio_rusqlite::Error::ConnectionClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                    IDLE_INTERVAL
                }
            };
            if pause.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(pause).await;
            }
        }
    });
    Checkpointer { task, conn: kept }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_millis(1);
    const SLOW: Duration = Duration::from_millis(30);

    fn pass(frames: i64) -> Pass {
        Pass {
            refused: false,
            frames,
            copied: frames,
        }
    }

    #[test]
    fn a_refused_pass_is_retried_soon_not_taken_for_an_idle_wal() {
        let refused = Pass {
            refused: true,
            frames: -1,
            copied: -1,
        };
        assert_eq!(pause_after(refused, FAST, -1), BUSY_INTERVAL);
        assert_eq!(pause_after(refused, FAST, 500), BUSY_INTERVAL);
    }

    #[test]
    fn the_writer_waits_longer_the_further_the_wal_is_past_its_start_over() {
        let ms = |frames| catch_up_pause(frames).as_millis();
        assert_eq!(ms(0), 0);
        assert_eq!(ms(RESTART_FRAMES - 1), 0);
        assert_eq!(ms(RESTART_FRAMES), 1);
        assert_eq!(ms(RESTART_FRAMES + PAUSE_STEP_FRAMES - 1), 1);
        assert_eq!(ms(RESTART_FRAMES + PAUSE_STEP_FRAMES), 2);
        assert_eq!(ms(RESTART_FRAMES + 9 * PAUSE_STEP_FRAMES), 10);
        assert_eq!(ms(i64::MAX), 10);
    }

    #[test]
    fn an_unchanged_wal_is_looked_at_rarely() {
        assert_eq!(pause_after(pass(500), FAST, 500), IDLE_INTERVAL);
    }

    #[test]
    fn a_growing_wal_is_followed_and_a_long_pass_at_once() {
        assert_eq!(pause_after(pass(900), FAST, 500), BUSY_INTERVAL - FAST);
        assert_eq!(pause_after(pass(900), SLOW, 500), Duration::ZERO);
    }

    /// The writer's commits leave the WAL at `commits` frames, the
    /// checkpointer has copied `copied` and asks for a restart; then the
    /// writer begins a transaction. Answers whether it honoured the request.
    fn answered(commits: &[i64], copied: i64) -> bool {
        let wal = WalProgress::default();
        for &frames in commits {
            crate::open::set_writer_wal_frames(frames);
            wal.after_append();
        }
        wal.copied.store(copied, Ordering::Release);
        wal.restart_asked.store(true, Ordering::Release);
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        wal.before_transaction(&conn);
        !wal.restart_asked.load(Ordering::Acquire)
    }

    #[test]
    fn the_writer_pauses_past_the_start_over_until_its_checkpoint_is_due() {
        let wal = WalProgress::default();
        crate::open::set_writer_wal_frames(RESTART_FRAMES - 1);
        wal.after_append();
        assert_eq!(wal.pause_due(), Duration::ZERO, "below the start-over");
        crate::open::set_writer_wal_frames(RESTART_FRAMES + 10);
        wal.after_append();
        assert_eq!(wal.pause_due(), Duration::from_millis(1), "not asked");
        wal.restart_asked.store(true, Ordering::Release);
        wal.copied.store(0, Ordering::Release);
        assert_eq!(
            wal.pause_due(),
            Duration::from_millis(1),
            "asked, far behind"
        );
        wal.copied.store(RESTART_FRAMES, Ordering::Release);
        assert_eq!(wal.pause_due(), Duration::ZERO, "the writer's turn");
    }

    #[test]
    fn the_writer_answers_a_restart_once_the_checkpointer_is_close_behind() {
        let near = 10_000 + HONOURED_BEHIND;
        assert!(answered(&[9_000, 10_000], 10_000), "all copied");
        assert!(answered(&[9_900, near], 10_000), "close behind");
        assert!(answered(&[12_000, 5], 10_000), "the WAL started over");
        assert!(
            !answered(&[9_900, near + 1], 9_899),
            "more than 500 behind, and behind the commit before"
        );
        // A commit of 2,000 frames, all copied before it: the writer copies
        // it before its next transaction.
        assert!(answered(&[10_000, 12_000], 10_000));
        assert!(!answered(&[10_000, 12_000], 9_999), "not the one before");
    }

    #[test]
    fn the_writer_never_copies_a_delete_step() {
        let wal = WalProgress::default();
        crate::open::set_writer_wal_frames(10_000);
        wal.after_append();
        crate::open::set_writer_wal_frames(12_000);
        wal.after_delete();
        wal.copied.store(10_000, Ordering::Release);
        wal.restart_asked.store(true, Ordering::Release);
        assert!(!wal.restart_due(), "the step's 2,000 frames are not copied");
        wal.copied.store(11_600, Ordering::Release);
        assert!(wal.restart_due(), "all but 400 copied");
    }

    #[tokio::test(start_paused = true)]
    async fn a_delete_step_waits_for_the_checkpointer_but_not_for_ever() {
        let wal = WalProgress::default();
        wal.written.store(DELETE_BEHIND, Ordering::Release);
        let started = tokio::time::Instant::now();
        wal.wait_for_copies().await;
        assert_eq!(started.elapsed(), Duration::ZERO, "close enough: no wait");
        wal.written.store(DELETE_BEHIND + 1, Ordering::Release);
        wal.wait_for_copies().await;
        let waited = started.elapsed();
        assert!(
            waited >= DELETE_WAIT_MAX && waited <= DELETE_WAIT_MAX + Duration::from_millis(5),
            "waited up to the bound: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_delete_step_goes_on_once_the_checkpointer_has_caught_up() {
        let wal = Arc::new(WalProgress::default());
        wal.written.store(RESTART_FRAMES, Ordering::Release);
        let checkpointer = Arc::clone(&wal);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            checkpointer.copied.store(RESTART_FRAMES, Ordering::Release);
        });
        let started = tokio::time::Instant::now();
        wal.wait_for_copies().await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited <= Duration::from_millis(55),
            "{waited:?}"
        );
    }

    /// A WAL-mode database whose WAL holds at least `frames` frames, written
    /// by `writer` and never checkpointed; and the checkpointer's connection.
    fn wal_of(
        frames: i64,
    ) -> (
        tempfile::TempDir,
        rusqlite::Connection,
        rusqlite::Connection,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wal.db");
        let writer = rusqlite::Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (x BLOB);",
            )
            .expect("schema");
        // One row of 4,000 bytes fills about a page: a frame per row.
        writer
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO t SELECT zeroblob(4000) FROM n",
                [frames],
            )
            .expect("fill");
        let checkpointer = rusqlite::Connection::open(&path).expect("open");
        (dir, writer, checkpointer)
    }

    #[test]
    fn at_open_the_wal_left_by_a_previous_run_is_copied_and_starts_over() {
        // `_left` holds the frames, as a process that died before closing.
        let (_dir, _left, conn) = wal_of(2_000);
        let pass = super::copy_left_over(&conn).expect("copy");
        assert!(
            !pass.refused && pass.frames >= 2_000 && pass.copied == pass.frames,
            "{pass:?}"
        );
        conn.execute("INSERT INTO t VALUES (1)", []).expect("write");
        let after = super::checkpoint(&conn).expect("pass");
        assert!(after.frames < 10, "the WAL started over: {after:?}");
    }

    #[test]
    fn a_pass_copies_a_small_wal_and_asks_for_nothing() {
        let (_dir, _writer, mut conn) = wal_of(100);
        let wal = WalProgress::default();
        let (first, _) = super::pass(&mut conn, &wal).expect("pass");
        assert!(!first.refused);
        assert!(
            first.frames >= 100 && first.copied == first.frames,
            "{first:?}"
        );
        assert_eq!(wal.copied.load(Ordering::Acquire), first.copied);
        assert!(!wal.restart_asked.load(Ordering::Acquire));
    }

    #[test]
    fn a_pass_over_a_full_wal_asks_the_writer_then_keeps_out_of_its_way() {
        let (_dir, writer, mut conn) = wal_of(RESTART_FRAMES);
        let wal = WalProgress::default();
        crate::open::set_writer_wal_frames(RESTART_FRAMES + 10);
        wal.after_append();
        let (first, _) = super::pass(&mut conn, &wal).expect("pass");
        assert!(first.frames >= RESTART_FRAMES, "{first:?}");
        assert!(wal.restart_asked.load(Ordering::Acquire), "asked");
        assert!(wal.restart_due(), "everything is copied");
        let (waiting, _) = super::pass(&mut conn, &wal).expect("pass");
        assert!(waiting.refused, "no pass while the writer's turn is due");
        wal.before_transaction(&writer);
        assert!(!wal.restart_asked.load(Ordering::Acquire), "answered");
        writer
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("write");
        let (after, _) = super::pass(&mut conn, &wal).expect("pass");
        assert!(after.frames < 10, "the WAL started over: {after:?}");
    }
}
