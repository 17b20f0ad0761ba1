//! What this adapter counts, on the `metrics` facade (a no-op unless a
//! recorder is installed): events accepted and refused by type, transport
//! and outcome; rate-limit refusals; WebSocket connections, deliveries,
//! slow subscribers closed; and the live figures read at each scrape.

use ep_domain::RateClass;
use ep_ports::EventType;

const EVENTS: &str = "event_pipeline_events_total";
const RATE_LIMITED: &str = "event_pipeline_rate_limited_total";
const WS_CONNECTIONS: &str = "event_pipeline_websocket_connections";
const DELIVERIES: &str = "event_pipeline_deliveries_total";
const SLOW_CLOSED: &str = "event_pipeline_slow_subscribers_closed_total";
const QUEUE_DEPTH: &str = "event_pipeline_queue_depth";
const SUBSCRIBERS: &str = "event_pipeline_subscribers";

/// Where an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Rest,
    WebSocket,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Rest => "rest",
            Transport::WebSocket => "ws",
        }
    }
}

/// What became of a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed,
    Invalid,
    RateLimited,
    QueueFull,
    ShuttingDown,
    StoreError,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::Invalid => "invalid",
            Outcome::RateLimited => "rate_limited",
            Outcome::QueueFull => "queue_full",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::StoreError => "store_error",
        }
    }
}

/// Describes every metric of this adapter (once, at start-up).
pub fn describe() {
    metrics::describe_counter!(
        EVENTS,
        "Published events by event type (unknown: not a registered one), transport and outcome"
    );
    metrics::describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by class");
    metrics::describe_gauge!(WS_CONNECTIONS, "Open WebSocket connections by endpoint");
    metrics::describe_counter!(DELIVERIES, "Events written to subscribers");
    metrics::describe_counter!(
        SLOW_CLOSED,
        "Subscribers closed with 4008 for not reading fast enough"
    );
    metrics::describe_gauge!(QUEUE_DEPTH, "Events accepted and not yet committed");
    metrics::describe_gauge!(SUBSCRIBERS, "Live subscriptions on this node");
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

/// A request refused by the limit of `class`.
pub(crate) fn rate_limited(class: RateClass) {
    let class = match class {
        RateClass::Publish => "publish",
        RateClass::Query => "query",
        RateClass::Admin => "admin",
    };
    metrics::counter!(RATE_LIMITED, "class" => class).increment(1);
}

/// A WebSocket connection opened (`+1`) or closed (`-1`) on `route`.
pub(crate) fn websocket(route: &'static str, change: f64) {
    metrics::gauge!(WS_CONNECTIONS, "endpoint" => route).increment(change);
}

/// `n` events written to a subscriber.
pub(crate) fn delivered(n: usize) {
    metrics::counter!(DELIVERIES).increment(n as u64);
}

/// A subscriber closed with 4008.
pub(crate) fn slow_subscriber_closed() {
    metrics::counter!(SLOW_CLOSED).increment(1);
}

/// The live figures, set just before a scrape renders them.
pub(crate) fn live(queue_depth: usize, subscribers: usize) {
    metrics::gauge!(QUEUE_DEPTH).set(queue_depth as f64);
    metrics::gauge!(SUBSCRIBERS).set(subscribers as f64);
}
