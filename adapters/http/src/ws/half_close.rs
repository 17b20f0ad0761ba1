//! A client's half-close (TCP FIN without a close frame) as an error that
//! leaves the WebSocket writable.
//!
//! tungstenite treats end-of-stream as the end of the connection: it marks
//! the socket terminated and refuses every later write. But a client that
//! sends its last messages and then shuts down its sending side (what a
//! script piping a file does) still reads: it should get the replies to
//! what it sent, then a close frame. This wrapper turns end-of-stream into
//! an I/O error of its own, which tungstenite passes up without changing its
//! state, so the replies and the close frame can still be written.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The error a read returns once the client has half-closed.
#[derive(Debug, thiserror::Error)]
#[error("the client closed its side of the connection")]
struct HalfClosed;

/// The I/O error standing for the client's half-close.
pub(crate) fn half_close_error() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, HalfClosed)
}

/// Whether `error` is the client's half-close.
pub(crate) fn is_half_close(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<HalfClosed>())
}

/// A stream whose end-of-stream reads as [`half_close_error`].
#[derive(Debug)]
pub(crate) struct HalfCloseAware<S>(pub(crate) S);

impl<S: AsyncRead + Unpin> AsyncRead for HalfCloseAware<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.0).poll_read(cx, buf))?;
        if buf.filled().len() == before && buf.remaining() > 0 {
            return Poll::Ready(Err(half_close_error()));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HalfCloseAware<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn data_reads_through_and_the_end_is_the_half_close_error() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = HalfCloseAware(server);
        client.write_all(b"last words").await.expect("write");
        client.shutdown().await.expect("half-close");
        let mut got = vec![0; 10];
        server.read_exact(&mut got).await.expect("data first");
        assert_eq!(got, b"last words");
        let error = server.read(&mut [0; 8]).await.expect_err("then the end");
        assert!(is_half_close(&error), "{error}");
        // The other direction still works.
        server.write_all(b"reply").await.expect("still writable");
        let mut reply = [0; 5];
        client.read_exact(&mut reply).await.expect("reply");
        assert_eq!(&reply, b"reply");
        assert!(!is_half_close(&io::ErrorKind::UnexpectedEof.into()));
    }
}
