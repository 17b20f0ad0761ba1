//! The runtime subscriber connections run on, apart from the one that
//! accepts connections and serves publishers and REST.
//!
//! At 1,000 subscribers an event wakes 1,000 connection tasks. On one
//! shared runtime a publisher's next message, read when its socket is
//! ready, waited in the run queue behind all of them (`event-pipeline-bench
//! fanout`: publisher ack p50 18.6 ms against the bare broadcaster's
//! 6-7 ms), and an event read late is delivered late. Tokio has no task
//! priorities; two runtimes leave the choice to the kernel, which runs a
//! thread woken by its socket (a publisher's worker, mostly idle) before
//! the turn of one that is busy writing to subscribers.
//!
//! It has `WS_DELIVERY_THREADS` workers, by default half the cores (see
//! `Config::delivery_threads`).

use tokio::runtime::{Handle, Runtime};

/// The subscribers' runtime. Dropping it stops its workers without waiting
/// for them (after `Running::shutdown` has closed every session).
pub(crate) struct Delivery {
    handle: Handle,
    /// Taken only when dropped.
    runtime: Option<Runtime>,
}

impl Delivery {
    /// Starts `threads` workers (at least one).
    ///
    /// # Errors
    /// When the runtime's threads cannot be created.
    pub(crate) fn start(threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("ep-subscribers")
            .worker_threads(threads.max(1))
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Where subscriber connections, and the wake-ups of a dispatch, run.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its workers end, which may not be
        // done from an async context such as the caller's.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
