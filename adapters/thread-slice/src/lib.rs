//! Asks the kernel to run the calling thread soon after it wakes, by giving
//! it a short scheduling slice (Linux 6.12 and later, `sched_setattr` with
//! `sched_runtime` under `SCHED_OTHER`).
//!
//! The publish path hands every batch between threads: the pipeline thread
//! (writer and hub) sends it to SQLite's writer connection thread and takes
//! the result back. On a machine whose cores the HTTP workers keep busy, a
//! woken thread with the default slice (1.4 ms on 2 cores) waits for a
//! running worker's turn to end: at 1,000 subscribers x 1,000 events/s a
//! 0.1-0.3 ms commit took 0.8 ms (p50) to 5 ms (p90) to start. Under
//! EEVDF a thread with a shorter slice has an earlier deadline, so the
//! kernel switches to it when it wakes; its share of the CPU (its weight,
//! from its nice value) is unchanged. Older kernels ignore the request,
//! and nothing else changes.
//!
//! Unprivileged: the policy and nice value are kept as they are.

#![warn(missing_docs)]

use std::time::Duration;

/// The slice asked for: the shortest the kernel allows (0.1 ms).
pub const SLICE: Duration = Duration::from_micros(100);

/// What became of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel runs this thread with [`SLICE`].
    Set,
    /// Not applied: this is not Linux, the kernel does not support custom
    /// slices (before 6.12), or the thread does not run under `SCHED_OTHER`
    /// (an operator's `chrt` choice, left alone).
    Unsupported,
}

/// Gives the calling thread a [`SLICE`]-long scheduling slice, keeping its
/// policy, nice value and flags.
///
/// # Errors
/// The system call's error (seccomp filters may refuse it); the thread is
/// then left as it was.
pub fn shorten_current_thread_slice() -> std::io::Result<Outcome> {
    imp::shorten(SLICE)
}

/// [`shorten_current_thread_slice`], logged: `thread` names the calling
/// thread's role in the log line. An error is logged, not returned: the
/// thread works as before, only later after a wake-up when cores are busy.
pub fn shorten_current_thread_slice_or_log(thread: &str) {
    match shorten_current_thread_slice() {
        Ok(Outcome::Set) => {
            tracing::debug!(
                thread,
                slice_us = SLICE.as_micros() as u64,
                "short scheduling slice set"
            );
        }
        Ok(Outcome::Unsupported) => {
            tracing::debug!(
                thread,
                "short scheduling slices are not supported here (Linux 6.12 or later, SCHED_OTHER)"
            );
        }
        Err(e) => {
            tracing::info!(thread, error = %e, "cannot shorten this thread's scheduling slice; it may wait longer after a wake-up while the cores are busy");
        }
    }
}

/// The slice the kernel runs the calling thread with, when it reports one
/// (Linux 6.12 and later, `SCHED_OTHER` threads; the default otherwise
/// depends on the number of CPUs).
///
/// # Errors
/// The system call's error.
pub fn current_thread_slice() -> std::io::Result<Option<Duration>> {
    imp::slice()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::time::Duration;

    use super::Outcome;

    /// `SCHED_OTHER`, the default policy.
    const SCHED_OTHER: u32 = 0;
    /// `SCHED_FLAG_RESET_ON_FORK`.
    const RESET_ON_FORK: u64 = 0x01;
    /// The size of the structure's first version (`SCHED_ATTR_SIZE_VER0`),
    /// which already holds `sched_runtime`.
    const SIZE: u32 = 48;

    fn get() -> io::Result<libc::sched_attr> {
        // SAFETY: an all-zero `sched_attr` is a valid value (plain integers).
        let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is a live, writable `sched_attr` of at least `SIZE`
        // bytes; the kernel writes at most `SIZE` bytes into it. Pid 0 is
        // the calling thread.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                std::ptr::addr_of_mut!(attr),
                SIZE,
                0,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(attr)
    }

    pub(super) fn shorten(slice: Duration) -> io::Result<Outcome> {
        let mut attr = get()?;
        if attr.sched_policy != SCHED_OTHER {
            return Ok(Outcome::Unsupported);
        }
        let wanted = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
        attr.size = SIZE;
        attr.sched_runtime = wanted;
        // Reset-on-fork is kept; utilization clamps (beyond `SIZE`) are
        // kept by the kernel when their flags are not given.
        attr.sched_flags &= RESET_ON_FORK;
        // SAFETY: `attr` is a valid `sched_attr` of `SIZE` bytes that the
        // kernel only reads. Pid 0 is the calling thread; the policy and
        // nice value are the ones it just reported, so only the slice
        // changes.
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, std::ptr::addr_of!(attr), 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // A kernel before 6.12 takes the call and ignores the slice.
        Ok(if get()?.sched_runtime == wanted {
            Outcome::Set
        } else {
            Outcome::Unsupported
        })
    }

    pub(super) fn slice() -> io::Result<Option<Duration>> {
        let attr = get()?;
        Ok((attr.sched_policy == SCHED_OTHER && attr.sched_runtime > 0)
            .then(|| Duration::from_nanos(attr.sched_runtime)))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::time::Duration;

    use super::Outcome;

    pub(super) fn shorten(_slice: Duration) -> io::Result<Outcome> {
        Ok(Outcome::Unsupported)
    }

    pub(super) fn slice() -> io::Result<Option<Duration>> {
        Ok(None)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice() -> i32 {
        // SAFETY: plain system calls on the calling thread, no pointers.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    fn set_nice(value: i32) {
        // SAFETY: as above; raising one's own nice value needs no privilege.
        let rc =
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, value) };
        assert_eq!(rc, 0, "setpriority: {}", std::io::Error::last_os_error());
    }

    fn policy() -> i32 {
        // SAFETY: a plain system call on the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    /// Runs `f` on a thread of its own, whose scheduling the test may change.
    fn on_own_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::spawn(f)
            .join()
            .expect("the test thread panicked")
    }

    #[test]
    fn the_slice_is_set_where_the_kernel_has_slices_and_the_nice_value_kept() {
        let (before, outcome, after, nice_after) = on_own_thread(|| {
            set_nice(5);
            let before = current_thread_slice().expect("sched_getattr");
            let outcome = shorten_current_thread_slice().expect("sched_setattr");
            let after = current_thread_slice().expect("sched_getattr");
            (before, outcome, after, nice())
        });
        assert_eq!(nice_after, 5, "the nice value must not change");
        match before {
            // Linux 6.12 and later report every fair thread's slice.
            Some(default) => {
                assert_eq!(outcome, Outcome::Set);
                assert_eq!(after, Some(SLICE));
                assert_ne!(default, SLICE, "the default slice is longer");
            }
            None => {
                assert_eq!(outcome, Outcome::Unsupported);
                assert_eq!(after, None);
            }
        }
        // Other threads keep theirs.
        assert_eq!(
            on_own_thread(current_thread_slice).expect("sched_getattr"),
            before
        );
    }

    #[test]
    fn a_thread_under_another_policy_is_left_alone() {
        let (outcome, policy_after) = on_own_thread(|| {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: `param` is a valid `sched_param` the kernel only reads;
            // SCHED_BATCH needs no privilege.
            let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
            assert_eq!(
                rc,
                0,
                "sched_setscheduler: {}",
                std::io::Error::last_os_error()
            );
            let outcome = shorten_current_thread_slice().expect("sched_getattr");
            (outcome, policy())
        });
        assert_eq!(outcome, Outcome::Unsupported);
        assert_eq!(policy_after, libc::SCHED_BATCH);
        assert_eq!(
            on_own_thread(|| {
                let param = libc::sched_param { sched_priority: 0 };
                // SAFETY: as above.
                unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
                current_thread_slice().expect("sched_getattr")
            }),
            None,
            "only SCHED_OTHER threads report a slice"
        );
    }

    /// Whether the calling thread's children start with the default policy.
    fn resets_on_fork() -> bool {
        // SAFETY: a plain system call on the calling thread.
        let policy = unsafe { libc::sched_getscheduler(0) };
        policy & libc::SCHED_RESET_ON_FORK != 0
    }

    #[test]
    fn reset_on_fork_is_kept_as_it_was() {
        let (plain, kept) = on_own_thread(|| {
            shorten_current_thread_slice().expect("sched_setattr");
            let plain = resets_on_fork();
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: `param` is a valid `sched_param` the kernel only reads;
            // the same policy with the flag needs no privilege.
            let rc = unsafe {
                libc::sched_setscheduler(0, libc::SCHED_OTHER | libc::SCHED_RESET_ON_FORK, &param)
            };
            assert_eq!(
                rc,
                0,
                "sched_setscheduler: {}",
                std::io::Error::last_os_error()
            );
            shorten_current_thread_slice().expect("sched_setattr");
            (plain, resets_on_fork())
        });
        assert!(!plain, "the flag is not set where it was not");
        assert!(kept, "the flag is kept where it was");
    }

    #[test]
    fn the_logging_form_shortens_the_slice_too() {
        let (before, after) = on_own_thread(|| {
            let before = current_thread_slice().expect("sched_getattr");
            shorten_current_thread_slice_or_log("test");
            (before, current_thread_slice().expect("sched_getattr"))
        });
        assert_eq!(after, before.map(|_| SLICE));
    }
}
