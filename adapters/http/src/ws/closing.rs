//! How every WebSocket connection ends: the close frame (ours, or the echo
//! of the client's), then the end of our side of the TCP connection, then a
//! short linger that reads and drops whatever the client still sends.
//!
//! The linger matters: a socket closed while unread bytes wait in its
//! receive buffer makes the kernel answer with a reset, and a reset can
//! destroy the close frame before the client reads it. The client sees a
//! bare TCP failure (1006) instead of the code.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::close::Ending;
use super::socket::Socket;

/// How long the close frame may take to leave.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the client has, after our close frame, to close its side.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes read and dropped while lingering.
const LINGER_BYTES: usize = 1024 * 1024;

/// Sends the close frame `ending` calls for and flushes it. `false` when
/// it could not be sent (the connection is lost).
pub(crate) async fn send_close(socket: &mut Socket, ending: &Ending) -> bool {
    let sent = async {
        match ending {
            Ending::Close(close) => {
                socket.feed(close.message()).await?;
                SinkExt::close(socket).await
            }
            // tungstenite queued the echo when it read the client's close
            // frame; closing the sink flushes it.
            Ending::PeerClosed => SinkExt::close(socket).await,
            Ending::Lost => Ok(()),
        }
    };
    match tokio::time::timeout(CLOSE_WRITE_TIMEOUT, sent).await {
        Ok(Ok(())) => !matches!(ending, Ending::Lost),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, ?ending, "WebSocket close frame not sent");
            false
        }
        Err(_) => {
            tracing::debug!(?ending, "WebSocket close frame not sent in time");
            false
        }
    }
}

/// Ends our side of the TCP connection and reads until the client ends its
/// own (at most [`LINGER`] and [`LINGER_BYTES`]), then drops the socket.
pub(crate) async fn linger(mut socket: Socket) {
    let io = socket.get_mut();
    let drained = async {
        io.shutdown().await?;
        // On the heap, and only now: an array here would sit in every
        // connection task's future (4 KiB per idle subscriber) for its life.
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut buf).await? {
                0 => break,
                n => total += n,
            }
        }
        Ok::<_, std::io::Error>(())
    };
    // Errors and timeouts end the linger the same way: the socket is dropped.
    let _ = tokio::time::timeout(LINGER, drained).await;
}
