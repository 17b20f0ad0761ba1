//! A TCP forwarder between an adapter and its server that a test can cut
//! and restore: how the suites and the end-to-end tests see what an adapter
//! does when its connection drops mid-stream.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every connection made to [`Link::addr`] to a target address,
/// until cut.
#[derive(Debug)]
pub struct Link {
    addr: SocketAddr,
    /// `true` while forwarding; dropped with the link, which ends its tasks.
    open: watch::Sender<bool>,
    /// Connections made to the link, forwarded or not.
    attempts: Arc<AtomicUsize>,
}

impl Link {
    /// Listens on `127.0.0.1:0` and forwards to `target`.
    ///
    /// # Errors
    /// When no local port can be bound.
    pub async fn to(target: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (open, state) = watch::channel(true);
        let attempts = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept(listener, target, state, Arc::clone(&attempts)));
        Ok(Self {
            addr,
            open,
            attempts,
        })
    }

    /// How many connections were made to the link so far (while cut too):
    /// how a test knows that a client is retrying.
    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::Acquire)
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every forwarded connection at once, and every new one until
    /// [`Link::restore`]: to the adapter, the server went away.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    mut state: watch::Receiver<bool>,
    attempts: Arc<AtomicUsize>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            changed = state.changed() => {
                if changed.is_err() {
                    return; // the link was dropped
                }
                continue;
            }
        };
        let Ok((client, _)) = accepted else { continue };
        attempts.fetch_add(1, Ordering::AcqRel);
        if !*state.borrow() {
            drop(client);
            continue;
        }
        tokio::spawn(forward(client, target, state.clone()));
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, mut state: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let cut = async {
        loop {
            if state.changed().await.is_err() || !*state.borrow() {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = cut => {}
    }
}
