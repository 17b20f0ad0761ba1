//! A `Broadcaster` on Redis pub/sub: each node publishes its committed
//! batches on one channel and every node's feeds subscribe to it.
//!
//! Redis pub/sub is at most once, which the port allows: a subscription
//! whose connection drops is re-made by its feed, which then reports a gap
//! (what was published meanwhile never reaches it), and the domain reads
//! the store. Publishing goes over one connection per node that reconnects
//! by itself (redis' ConnectionManager).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

use async_trait::async_trait;
use ep_bus_wire::{encode, feed, FeedSender};
use ep_ports::{BroadcastError, Broadcaster, EventBatch, EventFeed};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;

/// How a node connects to Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prefix of the channel the batches go on (`{prefix}:batches`): nodes
    /// of one deployment share it, another deployment on the same Redis
    /// uses another.
    pub channel_prefix: String,
    /// How long connecting, or one command, may take.
    pub timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            channel_prefix: "event-pipeline".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Largest message published: batches are split into pieces of at most
/// this (Redis allows 512 MiB; smaller pieces keep every node's memory flat).
const MAX_MESSAGE: usize = 1024 * 1024;
/// How long a feed waits before re-making a subscription that failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(200);

/// Broadcasts over Redis pub/sub.
#[derive(Clone)]
pub struct RedisBroadcaster {
    client: Client,
    publisher: ConnectionManager,
    channel: String,
    /// Where the server is, for messages (no password).
    target: String,
}

impl std::fmt::Debug for RedisBroadcaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroadcaster")
            .field("target", &self.target)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: impl std::fmt::Display) -> BroadcastError {
    BroadcastError::Unavailable(format!("Redis: {what}"))
}

impl RedisBroadcaster {
    /// Connects to the Redis server at `url` (`redis://host:6379`).
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached now.
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, BroadcastError> {
        let client = Client::open(url).map_err(|e| unavailable(format!("bad URL: {e}")))?;
        let info = client.get_connection_info();
        let target = info.addr.to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(options.timeout)
            .set_response_timeout(options.timeout)
            .set_number_of_retries(1);
        let publisher = tokio::time::timeout(
            options.timeout,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| unavailable(format!("no answer from {target}")))?
        .map_err(|e| unavailable(format!("cannot connect to {target}: {e}")))?;
        Ok(Self {
            client,
            publisher,
            channel: format!("{}:batches", options.channel_prefix),
            target,
        })
    }

    /// A subscription to the channel, confirmed by the server.
    async fn subscription(&self) -> Result<redis::aio::PubSub, BroadcastError> {
        let mut pubsub = self
            .client
            .get_async_pubsub()
            .await
            .map_err(|e| unavailable(format!("cannot subscribe at {}: {e}", self.target)))?;
        pubsub
            .subscribe(&self.channel)
            .await
            .map_err(|e| unavailable(format!("cannot subscribe at {}: {e}", self.target)))?;
        Ok(pubsub)
    }
}

/// Forwards the subscription's messages; when its connection drops, makes
/// a new one and reports a gap; until the feed is dropped.
async fn forward(broadcaster: RedisBroadcaster, first: redis::aio::PubSub, sender: FeedSender) {
    let mut pubsub = Some(first);
    loop {
        let Some(current) = pubsub.take() else {
            // Re-subscribe, then say that what was published meanwhile is lost.
            tokio::select! {
                () = sender.closed() => return,
                () = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
            }
            match broadcaster.subscription().await {
                Ok(again) => {
                    tracing::info!(
                        "Redis subscription back; reading what was missed from the store"
                    );
                    if !sender.lost().await {
                        return;
                    }
                    pubsub = Some(again);
                }
                Err(e) => tracing::debug!(error = %e, "Redis subscription still down"),
            }
            continue;
        };
        let mut messages = current.into_on_message();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => {
                        if !sender.message(message.get_payload_bytes()).await {
                            return;
                        }
                    }
                    None => {
                        tracing::warn!("Redis subscription lost; re-subscribing");
                        break;
                    }
                },
                () = sender.closed() => return,
            }
        }
    }
}

#[async_trait]
impl Broadcaster for RedisBroadcaster {
    async fn publish(&self, batch: EventBatch) -> Result<(), BroadcastError> {
        let mut connection = self.publisher.clone();
        for piece in encode(&batch, MAX_MESSAGE) {
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(piece)
                .query_async::<i64>(&mut connection)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn subscribe(&self) -> Result<EventFeed, BroadcastError> {
        let pubsub = self.subscription().await?;
        let (sender, feed) = feed();
        tokio::spawn(forward(self.clone(), pubsub, sender));
        Ok(feed)
    }

    async fn ping(&self) -> Result<(), BroadcastError> {
        let mut connection = self.publisher.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ep_conformance::LinkedHarness;

    use super::*;

    async fn connect(url: String, prefix: String) -> Arc<dyn Broadcaster> {
        let options = RedisOptions {
            channel_prefix: prefix,
            timeout: Duration::from_secs(2),
        };
        Arc::new(
            RedisBroadcaster::connect(&url, options)
                .await
                .expect("connect"),
        )
    }

    ep_conformance::broadcaster_suite!(skippable LinkedHarness::new(
        ep_conformance::services::Service::Redis,
        "redis",
        connect
    ));

    #[tokio::test]
    async fn an_absent_server_is_unavailable_naming_it() {
        let error = RedisBroadcaster::connect(
            "redis://127.0.0.1:1",
            RedisOptions {
                timeout: Duration::from_secs(1),
                ..RedisOptions::default()
            },
        )
        .await
        .expect_err("nothing listens on port 1");
        assert!(error.to_string().contains("127.0.0.1:1"), "{error}");
    }
}
