//! Fan-out: N subscribers that all match a stream of events published at a
//! fixed rate. Reports deliveries per second, publish-to-delivery latency
//! and how many deliveries never arrived, and splits the latency into stages
//! seen from outside: publish to ack (accepted and committed), publish to the
//! event's first delivery (plus dispatched and written once), publish to
//! every delivery (plus written to all).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{find_u64, now_us, print, tick, Latency};
use crate::stages::Scrape;
use crate::ws;

#[derive(clap::Args)]
pub struct Args {
    /// Subscribers, each filtering on the benchmark's session.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Events published per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds to wait after publishing for the last deliveries.
    #[arg(long, default_value_t = 5)]
    grace: u64,
    /// Each subscriber also filters on the payload, with conditions every
    /// event meets (`timer_tick`; `question_id` and `hint`, which a tick
    /// lacks, null): the same deliveries, each event's payload parsed and
    /// checked. For the cost of payload filters.
    #[arg(long)]
    payload_filter: bool,
}

pub async fn run(base: &str, nodes: &ws::Nodes, args: Args) -> Result<(), String> {
    let session = format!("bench-fanout-{}", now_us());
    let filter = if args.payload_filter {
        json!({"session_id": session, "event_types": ["timer_tick"],
               "payload": {"question_id": null, "hint": [null, "asked"]}})
    } else {
        json!({"session_id": session})
    }
    .to_string();
    let mut subscribers = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        subscribers.push(ws::subscribe(nodes.nth(i), &filter).await?);
    }
    // `expected` is set once publishing is over: the count of acked events.
    let (expected_tx, expected_rx) = watch::channel(u64::MAX);
    let readers: Vec<_> = subscribers
        .into_iter()
        .map(|sub| tokio::spawn(ws::read_deliveries(sub, expected_rx.clone(), None)))
        .collect();

    let before = Scrape::take(base).await;
    let (mut sink, mut acks) = ws::publisher(base).await?.split();
    let total = args.rate * args.duration;
    // Each message's send time, in sending order: the service answers a
    // publisher's messages in the order they were sent, so the nth reply's
    // latency is measured from the nth send time.
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    // Counts replies until every message has one (closing earlier would drop
    // the replies still in flight, as the WebSocket protocol says), and how
    // long each took: the accepted-to-committed stage as the publisher sees it.
    let ack_counter = tokio::spawn(async move {
        let (mut ok, mut replies) = (0u64, 0u64);
        let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        while replies < total {
            match acks.next().await {
                Some(Ok(Message::Text(t))) => {
                    replies += 1;
                    ok += u64::from(t.contains("\"ok\""));
                    if let Some(sent) = sent_rx.recv().await {
                        latencies.push(now_us().saturating_sub(sent));
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        (ok, latencies)
    });
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    while sent < total {
        ticker.tick().await;
        let due = ((started.elapsed().as_secs_f64() * args.rate as f64) as u64).min(total);
        while sent < due {
            let text = tick(&session, "stu-bench", sent);
            let _ = sent_tx.send(find_u64(&text, "\"sent_us\":").unwrap_or_else(now_us));
            sink.feed(Message::text(text))
                .await
                .map_err(|e| e.to_string())?;
            sent += 1;
        }
        sink.flush().await.map_err(|e| e.to_string())?;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let (acked, ack_latencies) = ack_counter.await.map_err(|e| e.to_string())?;
    let _ = sink.send(Message::Close(None)).await;
    let _ = expected_tx.send(acked);

    let mut all = Vec::new();
    // Per event (named by its send time), the earliest delivery to any
    // subscriber: committed, dispatched and written once.
    let mut first: HashMap<u64, u64> = HashMap::new();
    let mut closed_early = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.grace);
    for reader in readers {
        match tokio::time::timeout_at(deadline, reader).await {
            Ok(Ok(seen)) => {
                closed_early += usize::from(seen.closed_early);
                for (&sent, &latency) in seen.sent.iter().zip(&seen.latencies) {
                    first
                        .entry(sent)
                        .and_modify(|l| *l = (*l).min(latency))
                        .or_insert(latency);
                }
                all.extend(seen.latencies);
            }
            _ => closed_early += 1,
        }
    }
    let stages = match (before, Scrape::take(base).await) {
        (Some(before), Some(after)) => after.means_since(&before),
        _ => Vec::new(),
    };
    let delivered = all.len() as u64;
    let expected = acked * args.subscribers as u64;
    let latency = Latency::of(all);
    let ack = Latency::of(ack_latencies);
    let first = Latency::of(first.into_values().collect());
    let rate = delivered as f64 / publish_secs;
    let mut rows = vec![
        ("published (acked)", format!("{acked} of {sent}")),
        ("deliveries", format!("{delivered} of {expected} expected")),
        ("missing", format!("{}", expected.saturating_sub(delivered))),
        ("subscribers closed early", format!("{closed_early}")),
        ("deliveries/s", format!("{rate:.0}")),
        (
            "latency p50 / p99 / p999 / max",
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2} ms",
                latency.p50_ms, latency.p99_ms, latency.p999_ms, latency.max_ms
            ),
        ),
        (
            "stages p50 / p99: to ack",
            format!("{:.2} / {:.2} ms", ack.p50_ms, ack.p99_ms),
        ),
        (
            "  to first delivery",
            format!("{:.2} / {:.2} ms", first.p50_ms, first.p99_ms),
        ),
    ];
    let mut server = serde_json::Map::new();
    if !stages.is_empty() {
        let mean = |m: Option<f64>| m.map_or("-".to_owned(), |m| format!("{m:.2}"));
        rows.push((
            "server means: committed / dequeued / written",
            format!(
                "{} ms",
                stages
                    .iter()
                    .map(|(_, m)| mean(*m))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
        ));
        for (stage, m) in &stages {
            server.insert((*stage).to_owned(), json!(m));
        }
    }
    print(
        &format!(
            "fan-out: {} subscribers on {} node(s), {} events/s for {} s",
            args.subscribers,
            nodes.len(),
            args.rate,
            args.duration
        ),
        &rows,
        json!({"scenario": "fanout", "subscribers": args.subscribers, "subscriber_nodes": nodes.len(), "rate": args.rate, "duration_s": args.duration,
               "published": acked, "deliveries": delivered, "expected": expected,
               "missing": expected.saturating_sub(delivered), "closed_early": closed_early,
               "deliveries_per_s": rate.round(), "latency": latency.json(),
               "ack_latency": ack.json(), "first_delivery_latency": first.json(),
               "server_stage_means_ms": server}),
    );
    Ok(())
}
