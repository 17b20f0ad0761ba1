//! A feed made of what a bus adapter's receiving task hands it: messages
//! (decoded here) and losses it noticed (a reconnect, dropped messages).

use std::pin::Pin;
use std::task::{Context, Poll};

use ep_ports::{EventFeed, FeedItem};
use futures_core::Stream;
use tokio::sync::mpsc;

/// Items a feed holds before its receiving task waits for the hub.
const FEED_BUFFER: usize = 256;

/// The receiving task's end of a feed.
#[derive(Debug, Clone)]
pub struct FeedSender(mpsc::Sender<FeedItem>);

/// A feed and the sender its receiving task writes to.
pub fn feed() -> (FeedSender, EventFeed) {
    let (tx, rx) = mpsc::channel(FEED_BUFFER);
    (FeedSender(tx), Box::pin(Feed(rx)))
}

impl FeedSender {
    /// Hands on one message from the bus. A message that does not decode
    /// is reported as a loss (its events, if any, come from the store).
    /// `false` once the feed is dropped: the receiving task should stop.
    pub async fn message(&self, bytes: &[u8]) -> bool {
        let item = match crate::decode(bytes) {
            Ok(batch) => FeedItem::Batch(batch),
            Err(e) => {
                tracing::warn!(error = %e, "a message on the bus was not read; its events come from the store");
                FeedItem::Gap
            }
        };
        self.0.send(item).await.is_ok()
    }

    /// Reports that messages may have been lost. `false` once the feed is
    /// dropped.
    pub async fn lost(&self) -> bool {
        self.0.send(FeedItem::Gap).await.is_ok()
    }

    /// Resolves when the feed is dropped.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

struct Feed(mpsc::Receiver<FeedItem>);

impl Stream for Feed {
    type Item = FeedItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FeedItem>> {
        self.0.poll_recv(cx)
    }
}
