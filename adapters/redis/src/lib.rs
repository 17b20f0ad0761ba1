//! A `Broadcaster` on Redis pub/sub: each node publishes its committed
//! batches on one channel and every node's feeds subscribe to it.
//!
//! Redis pub/sub is at most once, which the port allows: a subscription
//! whose connection drops is re-made by its feed, which then reports a gap
//! (what was published meanwhile never reaches it), and the domain reads
//! the store. Publishing goes over one connection per node that reconnects
//! by itself (redis' ConnectionManager), from a task of its own: `publish`
//! hands the batch to that task's queue and returns, as the port asks (it
//! never waits on the network); the task sends what queued up in one
//! pipeline per round trip, in order.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ep_bus_wire::{encode, feed, FeedSender};
use ep_ports::{BroadcastError, Broadcaster, EventBatch, EventFeed};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;
use tokio::sync::mpsc;

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
/// Batches queued for the publishing task at most: when Redis does not
/// keep up (or does not answer), `publish` refuses the next ones at once,
/// and other nodes find those events in the store.
const OUTBOX: usize = 1024;
/// Bytes queued for the publishing task at most, whatever the batches'
/// sizes: what a frozen server can make a node hold.
const OUTBOX_BYTES: usize = 64 * 1024 * 1024;
/// Messages sent in one pipeline at most, and bytes (a pipeline is begun
/// below both and ends once over either).
const PIPELINE_MAX: usize = 256;
const PIPELINE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Broadcasts over Redis pub/sub.
#[derive(Clone)]
pub struct RedisBroadcaster {
    client: Client,
    publisher: ConnectionManager,
    /// The publishing task's queue: each entry a batch's messages.
    outbox: mpsc::Sender<Vec<Vec<u8>>>,
    /// Bytes in the queue, counted by `publish` and by the task.
    queued_bytes: Arc<AtomicUsize>,
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
        let channel = format!("{}:batches", options.channel_prefix);
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        tokio::spawn(send_queued(
            publisher.clone(),
            channel.clone(),
            queued,
            Arc::clone(&queued_bytes),
        ));
        Ok(Self {
            client,
            publisher,
            outbox,
            queued_bytes,
            channel,
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

/// Sends the queued batches' messages on `channel`, in order: what queued
/// up while the last pipeline was out goes in the next one. Ends when every
/// sender is dropped. A pipeline that fails loses its messages (Redis
/// pub/sub is at most once): the nodes that miss them see a hole in the
/// seqs, or a quiet feed, and read the store.
async fn send_queued(
    mut connection: ConnectionManager,
    channel: String,
    mut queued: mpsc::Receiver<Vec<Vec<u8>>>,
    queued_bytes: Arc<AtomicUsize>,
) {
    let mut failing = false;
    while let Some(first) = queued.recv().await {
        let mut pipe = redis::pipe();
        let (mut messages, mut bytes) = (0, 0);
        let mut next = Some(first);
        while let Some(pieces) = next.take() {
            for piece in pieces {
                bytes += piece.len();
                pipe.cmd("PUBLISH").arg(&channel).arg(piece).ignore();
                messages += 1;
            }
            if messages < PIPELINE_MAX && bytes < PIPELINE_MAX_BYTES {
                next = queued.try_recv().ok();
            }
        }
        // Out of the queue: room for as many bytes again.
        queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        match pipe.query_async::<()>(&mut connection).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("Redis publishes go through again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, messages, "Redis publish failed; other nodes read these events from the store");
            }
            Err(e) => tracing::debug!(error = %e, messages, "Redis publish failed again"),
        }
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
        let pieces = encode(&batch, MAX_MESSAGE);
        let bytes: usize = pieces.iter().map(Vec::len).sum();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        let full =
            || unavailable("the publish queue is full (the server is slow or not answering)");
        let refused = if before + bytes > OUTBOX_BYTES && before > 0 {
            Some(full())
        } else {
            match self.outbox.try_send(pieces) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some(full()),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    Some(unavailable("the publishing task stopped"))
                }
            }
        };
        match refused {
            None => Ok(()),
            Some(e) => {
                self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
                Err(e)
            }
        }
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

    /// A forwarder to `target` that, once `frozen` is set, stops passing
    /// bytes on without closing anything: a server that stops answering.
    async fn freezing_proxy(
        target: std::net::SocketAddr,
    ) -> (std::net::SocketAddr, tokio::sync::watch::Sender<bool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{tcp, TcpListener, TcpStream};
        use tokio::sync::watch;

        async fn pump(
            mut from: tcp::OwnedReadHalf,
            mut to: tcp::OwnedWriteHalf,
            mut frozen: watch::Receiver<bool>,
        ) {
            let mut buf = vec![0; 16 * 1024];
            loop {
                if *frozen.borrow_and_update() {
                    // Hold both sockets open, pass nothing on.
                    std::future::pending::<()>().await;
                }
                tokio::select! {
                    read = from.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if to.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    },
                    _ = frozen.changed() => {}
                }
            }
        }

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (freeze, frozen) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, frozen.clone()));
                tokio::spawn(pump(server_read, client_write, frozen.clone()));
            }
        });
        (addr, freeze)
    }

    /// A broadcaster connected through a proxy that has stopped answering,
    /// or `None` without a Redis server. The proxy's sender must live as
    /// long as the test.
    async fn frozen_broadcaster() -> Option<(RedisBroadcaster, tokio::sync::watch::Sender<bool>)> {
        let url =
            ep_conformance::services::server(ep_conformance::services::Service::Redis).await?;
        let target = match Client::open(url.as_str())
            .expect("url")
            .get_connection_info()
            .addr
            .clone()
        {
            redis::ConnectionAddr::Tcp(host, port) => {
                tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .expect("resolve")
                    .next()
                    .expect("an address")
            }
            other => panic!("a TCP server is needed, not {other:?}"),
        };
        let (proxy, freeze) = freezing_proxy(target).await;
        let broadcaster = RedisBroadcaster::connect(
            &format!("redis://{proxy}"),
            RedisOptions {
                channel_prefix: ep_conformance::services::unique_name("ep-test-frozen"),
                // Longer than the tests: the old publish, which waited for
                // each reply, would wait this long.
                timeout: Duration::from_secs(60),
            },
        )
        .await
        .expect("connect");
        broadcaster.ping().await.expect("answers before the freeze");
        freeze.send_replace(true);
        Some((broadcaster, freeze))
    }

    /// Publishes a batch of one event padded to `pad` bytes; it must
    /// return without waiting for the server.
    async fn publish_now(
        broadcaster: &RedisBroadcaster,
        seq: u64,
        pad: usize,
    ) -> Result<(), BroadcastError> {
        tokio::time::timeout(
            Duration::from_secs(5),
            broadcaster.publish(ep_conformance::broadcaster::batch(seq, 1, pad)),
        )
        .await
        .expect("publish returns without waiting for the server")
    }

    /// Publishes until refused, at most `most` times from `first`: the
    /// refusal, and how many were taken before it.
    async fn publish_until_refused(
        broadcaster: &RedisBroadcaster,
        first: u64,
        most: u64,
        pad: usize,
    ) -> (BroadcastError, u64) {
        for n in 0..most {
            if let Err(e) = publish_now(broadcaster, first + n, pad).await {
                return (e, n);
            }
        }
        panic!("{most} publishes to a frozen server, none refused");
    }

    #[tokio::test]
    async fn publish_never_waits_for_a_server_that_stopped_answering() {
        let Some((broadcaster, _frozen)) = frozen_broadcaster().await else {
            return;
        };
        for seq in 1..=OUTBOX as u64 {
            publish_now(&broadcaster, seq, 0).await.expect("queued");
        }
        // The task holds at most one pipeline out; then the queue is full
        // and publish refuses at once.
        let (refused, _) =
            publish_until_refused(&broadcaster, OUTBOX as u64 + 1, PIPELINE_MAX as u64 + 1, 0)
                .await;
        assert!(refused.to_string().contains("queue is full"), "{refused}");
    }

    #[tokio::test]
    async fn a_frozen_server_makes_a_node_hold_no_more_than_the_queues_bytes() {
        let Some((broadcaster, _frozen)) = frozen_broadcaster().await else {
            return;
        };
        // Batches of about 512 KiB: the byte bound, not the count, refuses.
        let pad = 512 * 1024;
        let most = (OUTBOX_BYTES + PIPELINE_MAX_BYTES) / pad + 2;
        let (refused, taken) = publish_until_refused(&broadcaster, 1, most as u64, pad).await;
        assert!(refused.to_string().contains("queue is full"), "{refused}");
        assert!(
            taken as usize >= OUTBOX_BYTES / (pad + 1024),
            "refused early, after {taken}"
        );
        assert!(
            broadcaster.queued_bytes.load(Ordering::Acquire) <= OUTBOX_BYTES,
            "the refused batches were not counted"
        );
    }

    #[tokio::test]
    async fn the_queue_counts_no_bytes_once_its_batches_are_sent() {
        let Some(url) =
            ep_conformance::services::server(ep_conformance::services::Service::Redis).await
        else {
            return;
        };
        let broadcaster = RedisBroadcaster::connect(
            &url,
            RedisOptions {
                channel_prefix: ep_conformance::services::unique_name("ep-test-bytes"),
                timeout: Duration::from_secs(5),
            },
        )
        .await
        .expect("connect");
        let mut feed = broadcaster.subscribe().await.expect("subscribe");
        for seq in 1..=3 {
            broadcaster
                .publish(ep_conformance::broadcaster::batch(seq, 2, 1000))
                .await
                .expect("queued");
        }
        let mut received = 0;
        while received < 6 {
            let item = tokio::time::timeout(Duration::from_secs(10), feed.next())
                .await
                .expect("the batches arrive")
                .expect("the feed goes on");
            if let ep_ports::FeedItem::Batch(batch) = item {
                received += batch.len();
            }
        }
        // Taken out of the queue before they were sent: nothing counted.
        assert_eq!(broadcaster.queued_bytes.load(Ordering::Acquire), 0);
    }

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
