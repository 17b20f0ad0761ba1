//! What this adapter counts, on the `metrics` facade (a no-op unless a
//! recorder is installed): events accepted and refused by type, transport
//! and outcome; rate-limit refusals; WebSocket connections, deliveries,
//! slow subscribers closed; and the live figures read at each scrape.

use std::sync::OnceLock;

use ep_domain::RateClass;
use ep_ports::{EventType, Timestamp};

const EVENTS: &str = "event_pipeline_events_total";
const RATE_LIMITED: &str = "event_pipeline_rate_limited_total";
const WS_CONNECTIONS: &str = "event_pipeline_websocket_connections";
const DELIVERIES: &str = "event_pipeline_deliveries_total";
/// From a live event's receipt to its subscriber's task taking it from the
/// queue, and to its frame being flushed to the socket: sampled (see
/// [`STAGE_SAMPLE_EVERY`]).
const RECEIPT_TO_DEQUEUE_SECONDS: &str = "event_pipeline_publish_to_dequeue_seconds";
const RECEIPT_TO_WRITE_SECONDS: &str = "event_pipeline_publish_to_write_seconds";
/// The delivery stages are recorded for the writes that start with an event
/// whose seq is 1 more than a multiple of this, to every subscriber it
/// reaches (so the sample covers every place in the wave of writes). A
/// sample per write would buffer two values per delivery between the
/// exporter's folds (every 5 s): at 500k deliveries/s, 40 MB.
const STAGE_SAMPLE_EVERY: u64 = 64;
const SLOW_CLOSED: &str = "event_pipeline_slow_subscribers_closed_total";
const QUEUE_DEPTH: &str = "event_pipeline_queue_depth";
const SUBSCRIBERS: &str = "event_pipeline_subscribers";
const SCHEMA_WARNINGS: &str = "event_pipeline_schema_warnings_total";
const XAPI_DELIVERED: &str = "event_pipeline_xapi_delivered_total";
const XAPI_UNMAPPED: &str = "event_pipeline_xapi_unmapped_total";
const XAPI_REFUSED: &str = "event_pipeline_xapi_refused_total";
const XAPI_FAILURES: &str = "event_pipeline_xapi_failures_total";
const XAPI_LAG_EVENTS: &str = "event_pipeline_xapi_lag_events";
const XAPI_LAG_SECONDS: &str = "event_pipeline_xapi_lag_seconds";
const BUS_SKIPPED: &str = "event_pipeline_bus_skipped_events_total";
const RETENTION_DELETED: &str = "event_pipeline_retention_deleted_total";
const RETENTION_PASSES: &str = "event_pipeline_retention_passes_total";
const RETENTION_FAILURES: &str = "event_pipeline_retention_failures_total";
const RETENTION_LAST_PASS: &str = "event_pipeline_retention_last_pass_timestamp_seconds";

/// Where an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Rest,
    WebSocket,
    Caliper,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Rest => "rest",
            Transport::WebSocket => "ws",
            Transport::Caliper => "caliper",
        }
    }
}

/// What became of a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed,
    Invalid,
    RateLimited,
    Forbidden,
    QueueFull,
    ShuttingDown,
    StoreError,
    Conflict,
    Repeat,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::Invalid => "invalid",
            Outcome::RateLimited => "rate_limited",
            Outcome::Forbidden => "forbidden",
            Outcome::QueueFull => "queue_full",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::StoreError => "store_error",
            Outcome::Conflict => "conflict",
            Outcome::Repeat => "repeat",
        }
    }
}

/// Describes every metric of this adapter (once, at start-up).
pub fn describe() {
    metrics::describe_counter!(
        EVENTS,
        "Published events by event type (unknown: not a registered one), transport and outcome"
    );
    metrics::describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by class and caller (a key's name, token, api_key or anonymous)");
    metrics::describe_gauge!(WS_CONNECTIONS, "Open WebSocket connections by endpoint");
    metrics::describe_counter!(DELIVERIES, "Events written to subscribers");
    metrics::describe_histogram!(
        RECEIPT_TO_DEQUEUE_SECONDS,
        metrics::Unit::Seconds,
        "Time from a live event's receipt to its subscriber taking it from its queue (first event of each write)"
    );
    metrics::describe_histogram!(
        RECEIPT_TO_WRITE_SECONDS,
        metrics::Unit::Seconds,
        "Time from a live event's receipt to its frame being flushed to the subscriber (first event of each write)"
    );
    metrics::describe_counter!(
        SLOW_CLOSED,
        "Subscribers closed with 4008 for not reading fast enough"
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Events accepted and not yet committed");
    metrics::describe_counter!(
        BUS_SKIPPED,
        "Committed events the bus did not take within its budget, or while it rested after failing: other nodes read them from the store"
    );
    metrics::describe_gauge!(SUBSCRIBERS, "Live subscriptions on this node");
    metrics::describe_counter!(
        SCHEMA_WARNINGS,
        "Events stored although their payload broke their type's schema (SCHEMA_MODE=warn), by type"
    );
    metrics::describe_counter!(
        XAPI_DELIVERED,
        "Events this node sent to the xAPI LRS as statements (kept, or already held)"
    );
    metrics::describe_counter!(
        XAPI_UNMAPPED,
        "Events of types with no xAPI mapping (or without a student), skipped by this node's connector"
    );
    metrics::describe_counter!(
        XAPI_REFUSED,
        "Statements the LRS refused for their content (logged with its reason), skipped"
    );
    metrics::describe_counter!(
        XAPI_FAILURES,
        "Tries to reach the LRS that failed (each page is sent again, with back-off)"
    );
    metrics::describe_gauge!(
        XAPI_LAG_EVENTS,
        "Events stored after the xAPI connector's saved cursor (on the node holding its lease)"
    );
    metrics::describe_gauge!(
        XAPI_LAG_SECONDS,
        "Age of the oldest event the xAPI connector has not settled (0: none waiting)"
    );
    metrics::describe_counter!(
        RETENTION_DELETED,
        "Events deleted by retention (RETENTION) on this node, by type"
    );
    metrics::describe_counter!(
        RETENTION_PASSES,
        "Retention passes this node ran to their end (holding the retention lease)"
    );
    metrics::describe_counter!(
        RETENTION_FAILURES,
        "Retention passes that stopped on a store error"
    );
    metrics::describe_gauge!(
        RETENTION_LAST_PASS,
        "When this node's last retention pass ended (Unix seconds)"
    );
}

/// One published event's fate.
pub(crate) fn event(event_type: Option<EventType>, transport: Transport, outcome: Outcome) {
    metrics::counter!(
        EVENTS,
        "event_type" => event_type.map_or("unknown", EventType::as_str),
        "transport" => transport.label(),
        "outcome" => outcome.label()
    )
    .increment(1);
}

/// A request of `caller` (a key's name, `token`, `api_key` or
/// `anonymous`: never a secret, never one label per token) refused by the
/// limit of `class`.
pub(crate) fn rate_limited(class: RateClass, caller: &str) {
    let class = match class {
        RateClass::Publish => "publish",
        RateClass::Query => "query",
        RateClass::Admin => "admin",
        RateClass::WsPublish => "ws_publish",
    };
    metrics::counter!(RATE_LIMITED, "class" => class, "caller" => caller.to_owned()).increment(1);
}

/// A WebSocket connection opened (`+1`) or closed (`-1`) on `route`.
pub(crate) fn websocket(route: &'static str, change: f64) {
    metrics::gauge!(WS_CONNECTIONS, "endpoint" => route).increment(change);
}

/// `n` events written to a subscriber.
pub(crate) fn delivered(n: usize) {
    // Looked up once, not on each of a million writes a second: the
    // recorder is installed before the server serves (`Metrics::install`).
    static DELIVERED: OnceLock<metrics::Counter> = OnceLock::new();
    DELIVERED
        .get_or_init(|| metrics::counter!(DELIVERIES))
        .increment(n as u64);
}

/// Whether the stages of a write that starts with event `seq` are recorded.
pub(crate) fn stage_sampled(seq: u64) -> bool {
    seq % STAGE_SAMPLE_EVERY == 1
}

/// The stages of one write to a subscriber, for the first event it carried
/// (received at `received`, taken from the queue at `dequeued`), now flushed.
/// Clocks of other nodes are not this one's: the figures include their skew.
pub(crate) fn delivery_stages(received: Timestamp, dequeued: Timestamp) {
    metrics::histogram!(RECEIPT_TO_DEQUEUE_SECONDS).record(seconds(received, dequeued));
    metrics::histogram!(RECEIPT_TO_WRITE_SECONDS).record(seconds(received, Timestamp::now()));
}

/// Seconds from `from` to `to`; 0 when a clock (another node's) puts `to`
/// first.
fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.as_micros().saturating_sub(from.as_micros()).max(0) as f64 / 1e6
}

/// A subscriber closed with 4008.
pub(crate) fn slow_subscriber_closed() {
    metrics::counter!(SLOW_CLOSED).increment(1);
}

/// The live figures, set just before a scrape renders them.
/// The domain's count of payloads stored despite their schema, by type.
pub(crate) fn schema_warnings(counts: &[(EventType, u64)]) {
    for (event_type, n) in counts {
        metrics::counter!(SCHEMA_WARNINGS, "event_type" => event_type.as_str()).absolute(*n);
    }
}

/// What the xAPI connector has done on this node, read at each scrape
/// (only when it runs).
pub(crate) fn export(report: &ep_domain::ExportReport) {
    if !report.running {
        return;
    }
    metrics::counter!(XAPI_DELIVERED).absolute(report.delivered);
    metrics::counter!(XAPI_UNMAPPED).absolute(report.unmapped);
    metrics::counter!(XAPI_REFUSED).absolute(report.refused);
    metrics::counter!(XAPI_FAILURES).absolute(report.failures);
    if report.holding {
        metrics::gauge!(XAPI_LAG_EVENTS).set(report.lag_events as f64);
        metrics::gauge!(XAPI_LAG_SECONDS).set(report.lag_seconds);
    }
}

/// What retention has done on this node, read at each scrape.
pub(crate) fn retention(report: &ep_domain::RetentionReport) {
    for (event_type, n) in &report.deleted {
        metrics::counter!(RETENTION_DELETED, "event_type" => event_type.as_str()).absolute(*n);
    }
    metrics::counter!(RETENTION_PASSES).absolute(report.passes);
    metrics::counter!(RETENTION_FAILURES).absolute(report.failures);
    if let Some(at) = report.last_pass {
        metrics::gauge!(RETENTION_LAST_PASS).set(at.as_micros() as f64 / 1e6);
    }
}

/// Committed events the bus did not take, read at each scrape.
pub(crate) fn bus_skipped(events: u64) {
    metrics::counter!(BUS_SKIPPED).absolute(events);
}

pub(crate) fn live(queue_depth: usize, subscribers: usize) {
    metrics::gauge!(QUEUE_DEPTH).set(queue_depth as f64);
    metrics::gauge!(SUBSCRIBERS).set(subscribers as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_start_in_sixty_four_is_timed_beginning_with_the_first_event() {
        assert!(stage_sampled(1), "the first event of a store is timed");
        assert!(stage_sampled(65) && stage_sampled(129));
        assert!(!stage_sampled(0) && !stage_sampled(2) && !stage_sampled(64));
        assert_eq!((1..=6_400).filter(|&s| stage_sampled(s)).count(), 100);
    }

    #[test]
    fn a_stage_is_in_seconds_and_never_negative() {
        let at = Timestamp::from_micros;
        assert_eq!(seconds(at(1_000_000), at(2_500_000)), 1.5);
        assert_eq!(seconds(at(7), at(7)), 0.0);
        assert_eq!(seconds(at(2_000_000), at(1_000_000)), 0.0);
    }
}
