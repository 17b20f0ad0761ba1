//! The close codes the WebSocket endpoints send, one place for all of them.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Why a WebSocket is closed, with the code and reason sent in the close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Close {
    /// 1000: the client closed, or a publisher finished.
    Normal,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1007: the filter message was not valid JSON.
    InvalidJson,
    /// 1008: the filter message was refused (wrong type, unknown resume point).
    BadFilter,
    /// 1009: a message larger than the limit.
    TooLarge,
    /// 1011: the store failed while replaying.
    ServerError,
    /// 1013: `MAX_SUBSCRIBERS` reached.
    AtCapacity,
    /// 4001: missing or wrong API key.
    Unauthorized,
    /// 4002: `MAX_WS_CONNECTIONS_PER_IP` reached.
    TooManyConnections,
    /// 4003: no filter message within the time allowed.
    FilterTimeout,
    /// 4008: the subscriber did not read fast enough; resume from `last_seq`.
    SlowConsumer { last_seq: u64 },
}

impl Close {
    /// The close frame.
    pub(crate) fn message(&self) -> Message {
        let (code, reason): (u16, String) = match self {
            Close::Normal => (1000, "Closed".into()),
            Close::GoingAway => (1001, "Server shutting down".into()),
            Close::InvalidJson => (1007, "Invalid JSON".into()),
            Close::BadFilter => (1008, "Invalid filter".into()),
            Close::TooLarge => (1009, "Message too large".into()),
            Close::ServerError => (1011, "Internal error".into()),
            Close::AtCapacity => (1013, "Server at subscriber capacity".into()),
            Close::Unauthorized => (4001, "Unauthorized".into()),
            Close::TooManyConnections => (4002, "Too many connections".into()),
            Close::FilterTimeout => (4003, "No filter message in time".into()),
            Close::SlowConsumer { last_seq } => (
                4008,
                format!("Slow consumer; resume with since_seq={last_seq}"),
            ),
        };
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }))
    }
}
