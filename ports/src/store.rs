//! The `EventStore` port: durable storage of events.

use async_trait::async_trait;

use crate::{
    Appended, Deletion, Event, EventFilter, EventId, EventQuery, NewEvent, Stats, Timestamp,
};

/// Why a store operation failed. Adapter errors (SQL, I/O) are translated into
/// these before they cross the port; the text is for operators' logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or refused the operation (I/O error,
    /// database locked, connection closed). Retrying later may succeed.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with data the store cannot read back (a row that
    /// does not decode, a schema from an unknown future version).
    #[error("event store holds unreadable data: {0}")]
    Corrupt(String),
    /// The backend has no room left (a full disk, a quota reached): nothing
    /// can be committed until space is freed. Retrying later may succeed.
    #[error("event store full: {0}")]
    Full(String),
    /// An event with this id is already stored. Ids are minted unique, so
    /// this means a bug or a replayed batch; nothing of the batch was stored.
    #[error("event id {0} is already stored")]
    DuplicateId(EventId),
}

/// Durable storage of events.
///
/// Implementations MUST pass the shared conformance suite (crate
/// `ep-conformance`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends a batch in ONE transaction and returns the stored events with
    /// their sequence numbers, in batch order.
    ///
    /// Sequence numbers MUST be strictly increasing in COMMIT order across
    /// every writer of the store: once an event with seq `n` is visible,
    /// every event with a lower seq that will ever exist is visible too (a
    /// subscriber resuming after `n` can never miss one committed later
    /// with a lower seq). They MUST never be reused, not even after every
    /// event was deleted, and SHOULD be dense (each batch continuing where
    /// the last committed one ended), so that a node can tell a lost
    /// broadcast from silence. When this returns `Ok`, the events MUST
    /// survive a crash of the process.
    ///
    /// A store that keeps these promises only for one process says so with
    /// [`EventStore::shared_by_nodes`] returning `false`.
    ///
    /// An event with an [`IdempotencyKey`](crate::IdempotencyKey) whose key
    /// is held by an event received at or after the key's `since` (stored
    /// before, by any writer, or earlier in this batch) is NOT stored: that
    /// event is returned in its place, whatever its content (the caller
    /// tells a repeat from a conflict). Two appends of the same key, from
    /// any writers at once, store it once.
    ///
    /// # Errors
    /// `DuplicateId` if any id is already stored; `Full` or `Unavailable` if
    /// the batch could not be committed. On any error nothing of the batch is
    /// stored.
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<Event>, StoreError>;

    /// Appends a batch in ONE transaction, with every promise of
    /// [`EventStore::append`], unless an event's
    /// [`IdempotencyKey`](crate::IdempotencyKey) is held by an event stored
    /// before (by any writer, received at or after the key's `since`): then
    /// NOTHING of the batch is stored, and every holder is returned with the
    /// position of the event whose key it holds ([`Appended::Held`]). The
    /// check and the append are one transaction, so a key taken by another
    /// writer meanwhile is either seen here or waits for it. A group whose
    /// events are committed together or not at all (a Caliper envelope)
    /// is appended with it: the caller drops the repeats it is told of and
    /// appends the rest again, or refuses the group for a conflict.
    ///
    /// The caller gives each key at most once per batch (it settles repeats
    /// within a group itself); a store need not check.
    ///
    /// # Errors
    /// As [`EventStore::append`]; on any error nothing of the batch is stored.
    async fn append_unless_held(&self, batch: Vec<NewEvent>) -> Result<Appended, StoreError>;

    /// The event with this id, or `None`.
    ///
    /// # Errors
    /// `Unavailable` or `Corrupt`; an unknown id is `Ok(None)`, not an error.
    async fn get(&self, id: &EventId) -> Result<Option<Event>, StoreError>;

    /// The events matching every condition of `query`, highest `seq` first,
    /// at most `query.limit` of them.
    ///
    /// # Errors
    /// `Unavailable` or `Corrupt`.
    async fn query(&self, query: EventQuery) -> Result<Vec<Event>, StoreError>;

    /// The events with `seq` greater than `after_seq` that match `filter`,
    /// LOWEST `seq` first, at most `limit` of them. Subscribers resume with it:
    /// paging with the last `seq` returned MUST neither skip nor repeat events.
    ///
    /// # Errors
    /// `Unavailable` or `Corrupt`.
    async fn after(
        &self,
        after_seq: u64,
        filter: EventFilter,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Totals, with `events_since` counting events whose timestamp is strictly
    /// after `since`. MUST reflect every committed append and delete, and
    /// SHOULD cost O(event types) plus an index range for `events_since`,
    /// not a count of the whole table.
    ///
    /// # Errors
    /// `Unavailable` or `Corrupt`.
    async fn stats(&self, since: Timestamp) -> Result<Stats, StoreError>;

    /// Deletes, in ONE transaction, at most `limit` of the events `what`
    /// selects and returns how many it deleted; fewer than `limit` means
    /// none is left. The domain calls it in steps so that a large delete
    /// never holds appends up for longer than one step: a step MUST NOT
    /// block appends for longer than its own transaction, and SHOULD cost
    /// about `limit` rows of work whatever the table's size (an index walk,
    /// not a scan). [`EventStore::stats`] MUST reflect each committed step.
    ///
    /// # Errors
    /// `Unavailable`; nothing of the step is deleted then.
    async fn delete_some(&self, what: Deletion, limit: usize) -> Result<u64, StoreError>;

    /// The highest seq ever assigned, deleted events included (0 for a store
    /// that never held one). A node starts delivering after it, and checks
    /// it to find events whose broadcast it missed.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn last_seq(&self) -> Result<u64, StoreError>;

    /// Whether several service processes (nodes) may append to this store
    /// at once with every promise of [`EventStore::append`] kept across all
    /// of them. Only such a store may be shared by several nodes.
    fn shared_by_nodes(&self) -> bool;

    /// Checks that the backend answers. SHOULD be cheap and SHOULD NOT block
    /// behind long-running writes.
    ///
    /// # Errors
    /// `Unavailable` when the backend cannot serve requests.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Commits the smallest write the backend can make, storing no event
    /// and changing nothing a reader sees, to learn whether appends would
    /// commit now. The domain calls it (rarely) while appends fail, so that
    /// a store that recovers (space freed) is seen to, even with no traffic.
    ///
    /// # Errors
    /// As `append` would: `Full`, `Unavailable`.
    async fn probe_write(&self) -> Result<(), StoreError>;

    /// Ends the store's work once its caller has committed all it will (a
    /// graceful shutdown): what the store holds in memory or in side files
    /// is put where its next open finds it without recovery (SQLite copies
    /// its write-ahead log into the database file and removes it, so the
    /// file alone holds every event), and its connections are closed.
    /// Calling it again does nothing. Calls made after it MUST fail with
    /// `Unavailable`, or answer as before (a store with nothing to release);
    /// they MUST NOT panic or hang.
    ///
    /// # Errors
    /// `Unavailable` when the backend could not finish; every committed
    /// event is still there for the next open.
    async fn close(&self) -> Result<(), StoreError>;
}
