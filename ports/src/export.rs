//! The `EventExport` port: where a connector sends the stored events it
//! follows by seq (an xAPI Learning Record Store).

use async_trait::async_trait;

use crate::Event;

/// What became of the events of one [`EventExport::export`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Sent, and kept by the receiver (or already held: a repeat).
    pub delivered: u64,
    /// Of a type the receiver's format has no mapping for: not sent.
    pub unmapped: u64,
    /// Refused by the receiver for their content (logged with the reason):
    /// never sent again.
    pub refused: u64,
}

/// Why events could not be exported now; the same events may be sent
/// again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The receiver cannot be reached, or answered that it cannot take
    /// them now (a 5xx, a timeout, credentials refused).
    #[error("the receiver is unavailable: {0}")]
    Unavailable(String),
}

/// A receiver of stored events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventExport: Send + Sync + 'static {
    /// Sends `events` (lowest seq first). `Ok` settles every one of them:
    /// delivered, unmapped or refused. The same events sent again (after an
    /// error, a restart, or by another node) MUST NOT be kept twice by the
    /// receiver.
    ///
    /// # Errors
    /// `Unavailable`: nothing is settled; the caller sends them again.
    async fn export(&self, events: &[Event]) -> Result<Exported, ExportError>;

    /// The receiver's name for logs, metrics and the job's lease (`xapi`).
    fn name(&self) -> &'static str;
}
