//! A `Broadcaster` on NATS: each node publishes its committed batches on
//! one core NATS subject and every node's feeds subscribe to it.
//!
//! Core NATS is at most once, which the port allows: a feed reports a gap
//! whenever the client reconnects (messages published meanwhile never
//! reach it) or NATS dropped messages for a slow subscription, and the
//! domain reads the store. JetStream would add server-side storage of
//! every batch, which the event store already is; nothing here needs it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event};
use async_trait::async_trait;
use ep_bus_wire::{encode, feed, FeedSender};
use ep_ports::{BroadcastError, Broadcaster, EventBatch, EventFeed};
use futures_util::StreamExt;
use tokio::sync::watch;

/// How a node connects to NATS.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// Prefix of the subject the batches go on (`{prefix}.batches`): nodes
    /// of one deployment share it, another deployment on the same NATS
    /// uses another.
    pub subject_prefix: String,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            subject_prefix: "event-pipeline".into(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Longest a publish may wait to hand a message to the client.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest the server may take to confirm a new subscription.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// Room left in a message for NATS' own framing.
const MESSAGE_OVERHEAD: usize = 1024;

/// Broadcasts over one NATS connection per node.
#[derive(Debug, Clone)]
pub struct NatsBroadcaster {
    client: Client,
    subject: String,
    /// Bumped at every reconnect and every slow-consumer drop: each feed
    /// then reports a gap.
    losses: watch::Receiver<u64>,
}

fn unavailable(what: impl std::fmt::Display) -> BroadcastError {
    BroadcastError::Unavailable(format!("NATS: {what}"))
}

impl NatsBroadcaster {
    /// Connects to the NATS server at `url` (`nats://host:4222`). Once
    /// connected, the client reconnects by itself whenever the connection
    /// drops.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached now.
    pub async fn connect(url: &str, options: NatsOptions) -> Result<Self, BroadcastError> {
        let (losses_tx, losses) = watch::channel(0u64);
        let losses_tx = Arc::new(losses_tx);
        let was_disconnected = Arc::new(AtomicBool::new(false));
        let client = ConnectOptions::new()
            .name("event-pipeline")
            .connection_timeout(options.connect_timeout)
            .event_callback(move |event| {
                let losses = Arc::clone(&losses_tx);
                let was_disconnected = Arc::clone(&was_disconnected);
                async move {
                    match event {
                        Event::Disconnected => {
                            was_disconnected.store(true, Ordering::Release);
                            tracing::warn!("NATS connection lost; reconnecting");
                        }
                        Event::Connected => {
                            if was_disconnected.swap(false, Ordering::AcqRel) {
                                tracing::info!("NATS connection back; reading what was missed from the store");
                                losses.send_modify(|n| *n += 1);
                            }
                        }
                        Event::SlowConsumer(sid) => {
                            tracing::warn!(sid, "NATS dropped messages for a slow feed; reading them from the store");
                            losses.send_modify(|n| *n += 1);
                        }
                        other => tracing::info!(event = %other, "NATS"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| unavailable(format!("cannot connect to {url}: {e}")))?;
        Ok(Self {
            client,
            subject: format!("{}.batches", options.subject_prefix),
            losses,
        })
    }
}

impl NatsBroadcaster {
    /// Returns once the server has every subscription made so far on this
    /// connection, so that whatever any node publishes from now on reaches
    /// them. (`flush` only says the bytes left: a publish from another
    /// connection could still reach the server first.) The server handles a
    /// connection's commands in order, so a message to a fresh inbox that
    /// comes back proves every earlier SUB was handled.
    async fn confirm_subscriptions(&self) -> Result<(), BroadcastError> {
        let inbox = self.client.new_inbox();
        let mut probe = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(unavailable)?;
        self.client
            .publish(inbox, Vec::new().into())
            .await
            .map_err(unavailable)?;
        tokio::time::timeout(CONFIRM_TIMEOUT, probe.next())
            .await
            .map_err(|_| unavailable("the server did not confirm the subscription"))?
            .ok_or_else(|| unavailable("the connection closed while subscribing"))?;
        Ok(())
    }
}

/// Forwards a subscription's messages, and a gap at every loss, until the
/// feed is dropped or the client closes.
async fn forward(
    mut subscriber: async_nats::Subscriber,
    sender: FeedSender,
    mut losses: watch::Receiver<u64>,
) {
    loop {
        tokio::select! {
            message = subscriber.next() => match message {
                Some(message) => {
                    if !sender.message(&message.payload).await {
                        break;
                    }
                }
                None => break,
            },
            changed = losses.changed() => {
                if changed.is_err() || !sender.lost().await {
                    break;
                }
            }
            () = sender.closed() => break,
        }
    }
    // Dropping the subscriber unsubscribes.
}

#[async_trait]
impl Broadcaster for NatsBroadcaster {
    async fn publish(&self, batch: EventBatch) -> Result<(), BroadcastError> {
        // While disconnected the client would queue publishes and, once its
        // queue is full, wait: refuse at once instead (the events are
        // committed; every node finds them in the store).
        if self.client.connection_state() != State::Connected {
            return Err(unavailable("not connected"));
        }
        let max = self
            .client
            .server_info()
            .max_payload
            .saturating_sub(MESSAGE_OVERHEAD)
            .max(MESSAGE_OVERHEAD);
        for piece in encode(&batch, max) {
            tokio::time::timeout(
                PUBLISH_TIMEOUT,
                self.client.publish(self.subject.clone(), piece.into()),
            )
            .await
            .map_err(|_| unavailable("publish timed out"))?
            .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn subscribe(&self) -> Result<EventFeed, BroadcastError> {
        let subscriber = self
            .client
            .subscribe(self.subject.clone())
            .await
            .map_err(unavailable)?;
        self.confirm_subscriptions().await?;
        let (sender, feed) = feed();
        let mut losses = self.losses.clone();
        losses.mark_unchanged();
        tokio::spawn(forward(subscriber, sender, losses));
        Ok(feed)
    }

    async fn ping(&self) -> Result<(), BroadcastError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            other => Err(unavailable(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use ep_conformance::LinkedHarness;

    use super::*;

    async fn connect(url: String, prefix: String) -> Arc<dyn Broadcaster> {
        let options = NatsOptions {
            subject_prefix: prefix,
            ..NatsOptions::default()
        };
        Arc::new(
            NatsBroadcaster::connect(&url, options)
                .await
                .expect("connect"),
        )
    }

    ep_conformance::broadcaster_suite!(skippable LinkedHarness::new(
        ep_conformance::services::Service::Nats,
        "nats",
        connect
    ));

    #[tokio::test]
    async fn an_absent_server_is_unavailable_naming_it() {
        let error = NatsBroadcaster::connect(
            "nats://127.0.0.1:1",
            NatsOptions {
                connect_timeout: Duration::from_secs(1),
                ..NatsOptions::default()
            },
        )
        .await
        .expect_err("nothing listens on port 1");
        assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
    }
}
