//! The thread the publish path runs on: the writer (group commit, replies,
//! broadcast) and the hub (ordering, dispatch to subscriber queues), on a
//! tokio runtime of their own.
//!
//! On the shared runtime those two tasks waited in the run queue behind the
//! subscriber tasks the previous event had woken: at 1,000 subscribers x
//! 100 events/s (`event-pipeline-bench fanout`, server means from
//! `/metrics`) an event took 9.3 ms from receipt to commit, 4.1 ms of it
//! in each `append` whose own SQLite work takes well under 1 ms, and 7 ms
//! more to reach its subscribers' queues. A thread that sleeps until its
//! work arrives is run by the kernel at once when woken, whatever the
//! workers are doing, so each event's commit and dispatch no longer queue
//! behind the delivery of the one before. It asks for a short scheduling
//! slice (`ep_thread_slice`) so that the kernel also switches to it at
//! once when the cores are busy, rather than at the end of a worker's turn.

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The publish path's thread and runtime. Dropping it stops the runtime
/// (after the tasks on it have been shut down: see [`crate::Running`]).
pub(crate) struct Pipeline {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl Pipeline {
    /// Starts the thread.
    ///
    /// # Errors
    /// When the thread or its runtime cannot be created.
    pub(crate) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ep-pipeline".into())
            .spawn(move || {
                // Woken for every batch (its commit's result, a publish on
                // an idle queue): see `ep_thread_slice`.
                ep_thread_slice::shorten_current_thread_slice_or_log("ep-pipeline");
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    /// Where the writer and the hub are spawned.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // The thread ends by itself, dropping the runtime and whatever is
        // left on it; joining it here could block a worker of the caller's
        // runtime.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_pipeline_thread_until_it_is_dropped() {
        let pipeline = Pipeline::start().expect("thread");
        let name = pipeline
            .handle()
            .spawn(async { std::thread::current().name().map(str::to_owned) })
            .await
            .expect("ran");
        assert_eq!(name.as_deref(), Some("ep-pipeline"));

        // A task still pending when the pipeline is dropped is dropped with
        // its runtime: its sender goes, and the receiver hears of it.
        let (held, dropped) = oneshot::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        pipeline.handle().spawn(async move {
            let _held = held;
            let _ = started.send(());
            std::future::pending::<()>().await;
        });
        running.await.expect("the task started");
        drop(pipeline);
        assert!(
            dropped.await.is_err(),
            "the task was dropped, not completed"
        );
    }

    #[tokio::test]
    async fn the_pipeline_thread_runs_with_a_short_slice_where_the_kernel_has_them() {
        let default = std::thread::spawn(ep_thread_slice::current_thread_slice)
            .join()
            .expect("thread")
            .expect("sched_getattr");
        let pipeline = Pipeline::start().expect("thread");
        let slice = pipeline
            .handle()
            .spawn(async { ep_thread_slice::current_thread_slice().expect("sched_getattr") })
            .await
            .expect("ran");
        let expected = default.map(|_| ep_thread_slice::SLICE);
        assert_eq!(slice, expected);
    }
}
