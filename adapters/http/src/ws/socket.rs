//! The socket every WebSocket connection owns once upgraded: what the
//! handshake makes and the endpoints and the closing code take.

use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;

use super::half_close::HalfCloseAware;

/// A connection's socket once upgraded.
pub(crate) type Socket = WebSocketStream<HalfCloseAware<TokioIo<hyper::upgrade::Upgraded>>>;
