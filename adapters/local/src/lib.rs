//! A `Broadcaster` for one process: every committed batch goes to every feed
//! opened in this process, in commit order.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use ep_ports::{BroadcastError, Broadcaster, EventBatch, EventFeed};
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

    fn subscribe(&self) -> Result<EventFeed, BroadcastError> {
        let (tx, rx) = mpsc::channel(FEED_CAPACITY);
        self.feeds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        Ok(Box::pin(Feed(rx)))
    }
}

/// The receiving end of one feed as a `Stream`.
struct Feed(mpsc::Receiver<EventBatch>);

impl Stream for Feed {
    type Item = EventBatch;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EventBatch>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use ep_conformance::new_event;
    use ep_ports::EventType;
    use futures_util::StreamExt;

    fn batch(n: i64) -> EventBatch {
        vec![Arc::new(
            new_event(n, EventType::TimerTick, None, None).into_event(n as u64 + 1),
        )]
        .into()
    }

    #[tokio::test]
    async fn every_feed_sees_every_batch_in_order() {
        let b = LocalBroadcaster::new();
        let mut f1 = b.subscribe().expect("feed");
        let mut f2 = b.subscribe().expect("feed");
        for n in 0..3 {
            b.publish(batch(n)).await.expect("publish");
        }
        for feed in [&mut f1, &mut f2] {
            for n in 0..3u64 {
                assert_eq!(feed.next().await.expect("batch")[0].seq, n + 1);
            }
        }
    }

    #[tokio::test]
    async fn a_dropped_feed_is_forgotten_and_publishing_goes_on() {
        let b = LocalBroadcaster::new();
        let f1 = b.subscribe().expect("feed");
        let mut f2 = b.subscribe().expect("feed");
        drop(f1);
        b.publish(batch(0)).await.expect("publish");
        assert_eq!(b.feed_count(), 1);
        assert_eq!(f2.next().await.expect("batch")[0].seq, 1);
    }

    #[tokio::test]
    async fn a_feed_sees_nothing_published_before_it_opened() {
        let b = LocalBroadcaster::new();
        b.publish(batch(0)).await.expect("publish");
        let mut f = b.subscribe().expect("feed");
        b.publish(batch(1)).await.expect("publish");
        assert_eq!(f.next().await.expect("batch")[0].seq, 2);
    }
}
