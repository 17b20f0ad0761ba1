//! Tracks open WebSocket sessions so that shutdown can tell them to close
//! (with 1001) and wait until they have.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// The open WebSocket sessions.
#[derive(Debug)]
pub struct WsSessions {
    closing: watch::Sender<bool>,
    open: AtomicUsize,
    all_closed: Notify,
}

/// Held by one session; dropping it counts the session as closed.
pub(crate) struct SessionTicket {
    sessions: Arc<WsSessions>,
}

impl Default for WsSessions {
    fn default() -> Self {
        Self {
            closing: watch::Sender::new(false),
            open: AtomicUsize::new(0),
            all_closed: Notify::new(),
        }
    }
}

impl WsSessions {
    /// Registers a session; `None` once shutdown has begun.
    pub(crate) fn open(self: &Arc<Self>) -> Option<(SessionTicket, watch::Receiver<bool>)> {
        let closing = self.closing.subscribe();
        if *closing.borrow() {
            return None;
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        Some((
            SessionTicket {
                sessions: Arc::clone(self),
            },
            closing,
        ))
    }

    /// How many sessions are open.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Tells every session to close and waits (at most `timeout`) until they have.
    pub async fn close_all(&self, timeout: Duration) {
        self.closing.send_replace(true);
        let wait = async {
            loop {
                let notified = self.all_closed.notified();
                if self.open_count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(timeout, wait).await.is_err() {
            tracing::warn!(
                open = self.open_count(),
                "WebSocket sessions did not close in time"
            );
        }
    }
}

impl Drop for SessionTicket {
    fn drop(&mut self) {
        if self.sessions.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.sessions.all_closed.notify_waiters();
        }
    }
}
