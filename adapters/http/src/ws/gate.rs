//! A gate in front of something a connection task polls on every turn of
//! its loop (the client's socket, its lease, the shutdown signal, the
//! keepalive timer): it is polled again only once it has woken the task
//! since it last said "not yet". A subscriber woken a thousand times a
//! second for events then polls only its event queue, not every source.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// A gate: the waker handed to what it guards, and whether that waker
/// fired since the last poll.
pub(crate) struct Gate {
    shared: Arc<Shared>,
    /// The waker handed to the guarded source (made once).
    waker: Waker,
}

struct Shared {
    /// The guarded source woke us (or was never polled).
    open: AtomicBool,
    /// The task to wake when it does.
    task: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.open.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Gate {
    /// An open gate: the first poll reaches the source.
    pub(crate) fn new() -> Self {
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            waker: Waker::from(Arc::clone(&shared)),
            shared,
        }
    }

    /// Lets the next poll through: for a source replaced or changed (a new
    /// future, a timer reset) since it was last polled.
    pub(crate) fn open(&self) {
        self.shared.open.store(true, Ordering::Release);
    }

    /// Polls the source with `poll` if it woke us since it last returned
    /// `Pending` (and `Pending` without polling it otherwise). Whatever the
    /// source registers wakes the gate, which wakes the task of `cx`.
    pub(crate) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.shared.task.register(cx.waker());
        if !self.shared.open.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let ready = poll(&mut Context::from_waker(&self.waker));
        if ready.is_ready() {
            // It may have more at once (a socket with several messages).
            self.open();
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A source that counts its polls and is ready when told.
    struct Source {
        polls: AtomicUsize,
        waker: std::sync::Mutex<Option<Waker>>,
        ready: AtomicBool,
    }

    impl Source {
        fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.ready.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            *self.waker.lock().expect("lock") = Some(cx.waker().clone());
            Poll::Pending
        }

        fn fire(&self) {
            self.ready.store(true, Ordering::Release);
            if let Some(w) = self.waker.lock().expect("lock").take() {
                w.wake();
            }
        }
    }

    /// A task waker that counts its wakes.
    struct Task(AtomicUsize);
    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_source_is_polled_only_after_it_woke_the_task() {
        let gate = Gate::new();
        let source = Source {
            polls: AtomicUsize::new(0),
            waker: std::sync::Mutex::new(None),
            ready: AtomicBool::new(false),
        };
        let task = Arc::new(Task(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&waker);
        assert!(gate.poll(&mut cx, |cx| source.poll(cx)).is_pending());
        assert_eq!(source.polls.load(Ordering::Relaxed), 1, "open at first");
        for _ in 0..10 {
            assert!(gate.poll(&mut cx, |cx| source.poll(cx)).is_pending());
        }
        assert_eq!(
            source.polls.load(Ordering::Relaxed),
            1,
            "not woken: not polled"
        );
        source.fire();
        assert_eq!(
            task.0.load(Ordering::Relaxed),
            1,
            "its wake reaches the task"
        );
        assert!(gate.poll(&mut cx, |cx| source.poll(cx)).is_ready());
        // Ready leaves it open: a socket may hold more messages.
        assert!(gate.poll(&mut cx, |cx| source.poll(cx)).is_pending());
        assert_eq!(source.polls.load(Ordering::Relaxed), 3);
        gate.open();
        assert!(gate.poll(&mut cx, |cx| source.poll(cx)).is_pending());
        assert_eq!(source.polls.load(Ordering::Relaxed), 4, "opened by hand");
    }
}
