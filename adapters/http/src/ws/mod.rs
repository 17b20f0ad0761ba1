//! The WebSocket endpoints: `/ws/publish` and `/ws/subscribe` (and what
//! the Server-Sent Events stream shares with them: connection limits,
//! sessions closed at shutdown, a credential's lease).
//!
//! The upgrade is done here rather than with warp's `ws()` so that the
//! connection's buffers can be sized: tungstenite's default 128 KiB read
//! buffer would cost that much per idle subscriber.

mod close;
mod closing;
mod gate;
mod half_close;
mod lease;
mod limiter;
mod publish;
mod sessions;
mod socket;
mod subscribe;
mod upgrade;

use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

pub(crate) use close::Close;
pub(crate) use lease::Lease;
pub use limiter::ConnectionLimiter;
pub(crate) use limiter::Slot;
pub(crate) use sessions::SessionTicket;
pub use sessions::WsSessions;
pub(crate) use upgrade::{__path_publish_route, __path_subscribe_route, routes};

/// How long a write to a client may take before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The frame every subscriber of an event is sent: the event as JSON,
/// serialized once and shared.
pub fn event_frame(event: &ep_ports::Event) -> Utf8Bytes {
    // An Event always serializes (string keys, no maps with other keys).
    Utf8Bytes::from(serde_json::to_string(event).unwrap_or_default())
}

/// Sends one message, flushing, within [`WRITE_TIMEOUT`]. `false` when the
/// client is gone or does not read.
async fn send<S>(sink: &mut S, message: Message) -> bool
where
    S: Sink<Message> + Unpin,
{
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await,
        Ok(Ok(()))
    )
}

/// A JSON text frame.
fn json_message(value: &serde_json::Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}
