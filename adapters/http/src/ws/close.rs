//! The close codes the WebSocket endpoints send, and the one mapping from
//! what went wrong on a connection (tungstenite's errors included) to how the
//! connection ends.

use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::half_close::is_half_close;

/// Why the server closes a WebSocket, with the code and reason sent in the
/// close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Close {
    /// 1000: a publisher finished (it half-closed its side of the TCP
    /// connection after its last message), or a subscriber did.
    Normal,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1002: the client broke the WebSocket protocol (an unmasked frame, a
    /// reserved opcode or bit, a bad continuation, a control frame over 125
    /// bytes or fragmented, a malformed close frame).
    Protocol,
    /// 1007: a text frame (or a close reason) that is not UTF-8.
    InvalidText,
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
    /// 4001: missing or failing credential.
    Unauthorized,
    /// 4001: the token expired while the connection was live (or at the handshake).
    TokenExpired,
    /// 4001: the key was removed or changed by a reload of the keys.
    KeyRevoked,
    /// 4003: a credential without the role this endpoint needs, or a
    /// filter (or a refreshed token's scope) outside the credential's scope.
    Forbidden(String),
    /// 4002: `MAX_WS_CONNECTIONS_PER_IP` reached.
    TooManyConnections,
    /// 4003: no filter message within the time allowed.
    FilterTimeout,
    /// 4008: the subscriber did not read fast enough; resume from `last_seq`.
    SlowConsumer { last_seq: u64 },
}

impl Close {
    /// The code and the reason.
    pub(crate) fn code_and_reason(&self) -> (u16, String) {
        match self {
            Close::Normal => (1000, "Closed".into()),
            Close::GoingAway => (1001, "Server shutting down".into()),
            Close::Protocol => (1002, "Protocol error".into()),
            Close::InvalidText => (1007, "Invalid UTF-8".into()),
            Close::InvalidJson => (1007, "Invalid JSON".into()),
            Close::BadFilter => (1008, "Invalid filter".into()),
            Close::TooLarge => (1009, "Message too large".into()),
            Close::ServerError => (1011, "Internal error".into()),
            Close::AtCapacity => (1013, "Server at subscriber capacity".into()),
            Close::Unauthorized => (4001, "Unauthorized".into()),
            Close::TokenExpired => (4001, "Token expired".into()),
            Close::KeyRevoked => (4001, "Key revoked".into()),
            Close::Forbidden(reason) => (4003, forbidden_reason(reason)),
            Close::TooManyConnections => (4002, "Too many connections".into()),
            Close::FilterTimeout => (4003, "No filter message in time".into()),
            Close::SlowConsumer { last_seq } => (
                4008,
                format!("Slow consumer; resume with since_seq={last_seq}"),
            ),
        }
    }

    /// The close frame.
    pub(crate) fn message(&self) -> Message {
        let (code, reason) = self.code_and_reason();
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }))
    }
}

/// A close reason is at most 123 bytes: the refusal's text, cut on a
/// character boundary.
fn forbidden_reason(text: &str) -> String {
    let mut end = text.len().min(123);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// How a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The server closes it with this close frame.
    Close(Close),
    /// The client sent a close frame. tungstenite has queued the answer: the
    /// client's code echoed, or 1002 when that code may not be sent (0,
    /// 1005, 1006, 1015, 1016-2999, above 4999), or an empty close frame
    /// for an empty one.
    PeerClosed,
    /// The connection failed (reset, I/O error, a client that does not read
    /// what it is sent): no frame can reach the client any more.
    Lost,
}

impl std::fmt::Display for Ending {
    /// For logs: the code the server sent, or what happened instead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Close(close) => {
                let (code, reason) = close.code_and_reason();
                write!(f, "{code} {reason}")
            }
            Ending::PeerClosed => f.write_str("closed by the client"),
            Ending::Lost => f.write_str("connection lost"),
        }
    }
}

impl Ending {
    /// How a connection ends after reading `error`.
    pub(crate) fn after_read_error(error: &WsError) -> Self {
        match error {
            WsError::Capacity(_) => Ending::Close(Close::TooLarge),
            WsError::Utf8(_) => Ending::Close(Close::InvalidText),
            WsError::Protocol(e) => match e {
                // A client that closed TCP without the closing handshake.
                ProtocolError::ResetWithoutClosingHandshake => Ending::Lost,
                // Only after our own close frame, when nothing more is sent anyway.
                ProtocolError::SendAfterClosing | ProtocolError::ReceivedAfterClosing => {
                    Ending::PeerClosed
                }
                _ => Ending::Close(Close::Protocol),
            },
            WsError::Io(e) if is_half_close(e) => Ending::Close(Close::Normal),
            WsError::AttackAttempt => Ending::Close(Close::Protocol),
            WsError::Io(_)
            | WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Tls(_)
            | WsError::WriteBufferFull(_)
            | WsError::Url(_)
            | WsError::Http(_)
            | WsError::HttpFormat(_) => Ending::Lost,
        }
    }

    /// How a connection ends after a write failed with `error`.
    pub(crate) fn after_write_error(error: &WsError) -> Self {
        match error {
            // The reader has just seen the client's close frame.
            WsError::Protocol(ProtocolError::SendAfterClosing) => Ending::PeerClosed,
            _ => Ending::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use tokio_tungstenite::tungstenite::error::CapacityError;

    use super::*;
    use crate::ws::half_close::half_close_error;

    fn code(ending: Ending) -> Option<u16> {
        match ending {
            Ending::Close(close) => Some(close.code_and_reason().0),
            Ending::PeerClosed | Ending::Lost => None,
        }
    }

    #[test]
    fn read_errors_map_to_the_rfc_6455_codes() {
        let protocol = |e| code(Ending::after_read_error(&WsError::Protocol(e)));
        for e in [
            ProtocolError::UnmaskedFrameFromClient,
            ProtocolError::NonZeroReservedBits,
            ProtocolError::UnknownDataFrameType(3),
            ProtocolError::UnknownControlFrameType(11),
            ProtocolError::UnexpectedContinueFrame,
            ProtocolError::FragmentedControlFrame,
            ProtocolError::ControlFrameTooBig,
            ProtocolError::InvalidCloseSequence,
        ] {
            let shown = e.to_string();
            assert_eq!(protocol(e), Some(1002), "{shown}");
        }
        assert_eq!(
            code(Ending::after_read_error(&WsError::Utf8("bad".into()))),
            Some(1007)
        );
        assert_eq!(
            code(Ending::after_read_error(&WsError::Capacity(
                CapacityError::MessageTooLong {
                    size: 2,
                    max_size: 1
                }
            ))),
            Some(1009)
        );
        assert_eq!(
            code(Ending::after_read_error(&WsError::Io(half_close_error()))),
            Some(1000)
        );
        assert_eq!(
            Ending::after_read_error(&WsError::Io(io::ErrorKind::ConnectionReset.into())),
            Ending::Lost
        );
        assert_eq!(
            Ending::after_write_error(&WsError::Protocol(ProtocolError::SendAfterClosing)),
            Ending::PeerClosed
        );
    }

    #[test]
    fn every_code_sent_is_one_rfc_6455_allows() {
        for close in [
            Close::Normal,
            Close::GoingAway,
            Close::Protocol,
            Close::InvalidText,
            Close::InvalidJson,
            Close::BadFilter,
            Close::TooLarge,
            Close::ServerError,
            Close::AtCapacity,
            Close::Unauthorized,
            Close::TokenExpired,
            Close::KeyRevoked,
            Close::Forbidden("x".repeat(200)),
            Close::TooManyConnections,
            Close::FilterTimeout,
            Close::SlowConsumer { last_seq: u64::MAX },
        ] {
            let (code, reason) = close.code_and_reason();
            assert!(CloseCode::from(code).is_allowed(), "{code}");
            // A close frame's payload is at most 125 bytes: 2 for the code.
            assert!(reason.len() <= 123, "{reason}");
        }
    }
}
