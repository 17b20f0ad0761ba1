//! The configurable limits the domain enforces.

/// Limits on what is accepted, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most top-level keys a payload may have (`MAX_PAYLOAD_KEYS`).
    pub max_payload_keys: usize,
    /// Most bytes a payload may take, serialized compactly (`MAX_PAYLOAD_BYTES`).
    pub max_payload_bytes: usize,
    /// Most events accepted but not yet committed (`MAX_QUEUE_SIZE`, at least 1).
    pub max_queue_size: usize,
    /// Most events the writer commits in one transaction.
    pub max_batch: usize,
    /// Most events one batch publish may carry (`MAX_BATCH_EVENTS`).
    pub max_batch_events: usize,
    /// How far ahead of this node's clock an `occurred_at` may be
    /// (`MAX_CLOCK_SKEW_SECONDS`).
    pub max_clock_skew: std::time::Duration,
    /// How long an idempotency key stands for the event first published
    /// with it (`IDEMPOTENCY_WINDOW_SECONDS`).
    pub idempotency_window: std::time::Duration,
    /// The longest the writer waits for the bus to take a committed batch
    /// before batches go by the store only for a while (see
    /// [`crate::bus_gate`]); `None` waits as long as it takes, for an
    /// in-process broadcaster, whose waiting paces the writer.
    pub bus_budget: Option<std::time::Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_keys: 50,
            max_payload_bytes: 65_536,
            max_queue_size: 10_000,
            max_batch: 1_024,
            max_batch_events: 1_000,
            max_clock_skew: std::time::Duration::from_secs(300),
            idempotency_window: std::time::Duration::from_secs(86_400),
            bus_budget: Some(crate::bus_gate::BUS_BUDGET),
        }
    }
}

/// Longest idempotency key, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;
/// Longest `source`, in characters.
pub const MAX_SOURCE_CHARS: usize = 100;
/// Longest `session_id` or `user_id`, in characters.
pub const MAX_ID_CHARS: usize = 200;
/// Longest `event_type` filter accepted by queries, in characters.
pub const MAX_EVENT_TYPE_FILTER_CHARS: usize = 50;
/// Largest `limit` a query may ask for.
pub const MAX_QUERY_LIMIT: usize = 1_000;
/// `limit` when a query gives none.
pub const DEFAULT_QUERY_LIMIT: usize = 100;
