//! A `Broadcaster` for one process: every committed batch goes to every feed
//! opened in this process, in commit order.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use ep_ports::{BroadcastError, Broadcaster, EventBatch, EventFeed, FeedItem};
use futures_core::Stream;
use tokio::sync::mpsc;

/// Batches each feed may hold before `publish` waits for it.
const FEED_CAPACITY: usize = 1_024;

/// Hands each committed batch to every open feed of this process.
#[derive(Default)]
pub struct LocalBroadcaster {
    feeds: Mutex<Vec<mpsc::Sender<EventBatch>>>,
}

impl LocalBroadcaster {
    /// A broadcaster with no feeds yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many feeds are open.
    pub fn feed_count(&self) -> usize {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        feeds.retain(|f| !f.is_closed());
        feeds.len()
    }
}

#[async_trait]
impl Broadcaster for LocalBroadcaster {
    async fn publish(&self, batch: EventBatch) -> Result<(), BroadcastError> {
        // Feeds are in-process consumers that never wait on the network, so
        // waiting for room here paces the writer without stalling on clients.
        let feeds: Vec<_> = self
            .feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut closed = false;
        for feed in &feeds {
            closed |= feed.send(batch.clone()).await.is_err();
        }
        if closed {
            self.feeds
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|f| !f.is_closed());
        }
        Ok(())
    }

    async fn subscribe(&self) -> Result<EventFeed, BroadcastError> {
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        self.feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        Ok(Box::pin(Feed(rx)))
    }

    /// Nothing to be disconnected from.
    async fn ping(&self) -> Result<(), BroadcastError> {
        Ok(())
    }
}

/// The receiving end of one feed as a `Stream`. It never loses a batch
/// (publishing waits for room), so it never reports a gap.
struct Feed(mpsc::Receiver<EventBatch>);

impl Stream for Feed {
    type Item = FeedItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FeedItem>> {
        self.0.poll_recv(cx).map(|b| b.map(FeedItem::Batch))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use ep_conformance::{BroadcasterHarness, Node};

    use super::*;

    /// One process, one bus: every node is the same broadcaster.
    struct OneProcess(Arc<LocalBroadcaster>);

    #[async_trait]
    impl BroadcasterHarness for OneProcess {
        async fn node(&self) -> Node {
            Node {
                broadcaster: Arc::clone(&self.0) as Arc<dyn Broadcaster>,
                link: None,
            }
        }
    }

    ep_conformance::broadcaster_suite!(async { OneProcess(Arc::new(LocalBroadcaster::new())) });

    #[tokio::test]
    async fn a_dropped_feed_is_forgotten() {
        let b = LocalBroadcaster::new();
        let f1 = b.subscribe().await.expect("feed");
        let _f2 = b.subscribe().await.expect("feed");
        drop(f1);
        b.publish(ep_conformance::broadcaster::batch(1, 1, 0))
            .await
            .expect("publish");
        assert_eq!(b.feed_count(), 1);
    }
}
