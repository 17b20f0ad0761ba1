//! WebSocket publish: W connections, each keeping `in_flight` events sent
//! but not yet acknowledged. Reports acknowledged events per second and the
//! time from send to acknowledgement.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{add_ratio, now_us, print, tick, Latency, Totals};
use crate::ws;

#[derive(clap::Args)]
pub struct Args {
    /// WebSocket connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Events in flight per connection.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Measure the store's ceiling and the service this many times in turn
    /// (each service run for `--duration`): the ratio reported is the
    /// median of the rounds' ratios, as in `rest --rounds`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    #[command(flatten)]
    ceiling: crate::ceiling::StoreCeiling,
}

/// Keys spread like the SQLite ceiling's (1,000 sessions, 5,000 users), so
/// that both insert into the indexes the same way.
fn body(connection: usize, seq: u64) -> String {
    let k = seq
        .wrapping_mul(7_919)
        .wrapping_add(connection as u64 * 104_729);
    tick(&format!("s{}", k % 1_000), &format!("u{}", k % 5_000), seq)
}

struct Outcome {
    acked: u64,
    errors: u64,
    latencies: Vec<u64>,
}

async fn connection(
    base: String,
    n: usize,
    window: usize,
    until: Instant,
) -> Result<Outcome, String> {
    let mut ws = ws::publisher(&base).await?;
    let mut sent_at: VecDeque<u64> = VecDeque::with_capacity(window);
    let mut out = Outcome {
        acked: 0,
        errors: 0,
        latencies: Vec::new(),
    };
    let mut seq = 0u64;
    loop {
        let running = Instant::now() < until;
        while running && sent_at.len() < window {
            ws.feed(Message::text(body(n, seq)))
                .await
                .map_err(|e| e.to_string())?;
            sent_at.push_back(now_us());
            seq += 1;
        }
        ws.flush().await.map_err(|e| e.to_string())?;
        if sent_at.is_empty() {
            break;
        }
        let mut reply = ws.next().await;
        loop {
            match reply {
                Some(Ok(Message::Text(t))) => {
                    let sent = sent_at.pop_front().unwrap_or_else(now_us);
                    out.latencies.push(now_us().saturating_sub(sent));
                    if t.contains("\"ok\"") {
                        out.acked += 1;
                    } else {
                        out.errors += 1;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection closed".into()),
            }
            match ws.next().now_or_never() {
                Some(next) => reply = next,
                None => break,
            }
        }
    }
    Ok(out)
}

/// One timed run of every connection: acknowledged (`ok`), errors (`other`).
async fn measure(base: &str, args: &Args) -> Result<Totals, String> {
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.connections)
        .map(|n| tokio::spawn(connection(base.to_owned(), n, args.in_flight, until)))
        .collect();
    let mut run = Totals::default();
    for t in tasks {
        let o = t.await.map_err(|e| e.to_string())??;
        run.ok += o.acked;
        run.other += o.errors;
        run.latencies.extend(o.latencies);
    }
    run.secs = started.elapsed().as_secs_f64();
    Ok(run)
}

pub async fn run(base: &str, args: Args) -> Result<(), String> {
    let mut service = Totals::default();
    let (mut ceiling_rates, mut ratios) = (Vec::new(), Vec::new());
    let ceiling = args.ceiling.open().await?;
    for _ in 0..args.rounds {
        let run = measure(base, &args).await?;
        // Each round's ceiling appends as many events as the service
        // acknowledged in it: both databases are as full at every round.
        if let Some(store) = &ceiling {
            let rate = store.rate(run.ok).await?;
            if rate > 0.0 {
                ratios.push(run.rate() / rate);
                ceiling_rates.push(rate);
            }
        }
        service.add(run);
    }
    let rate = service.rate();
    let (acked, errors) = (service.ok, service.other);
    let latency = Latency::of(service.latencies);
    let mut rows = vec![
        ("acknowledged events/s", format!("{rate:.0}")),
        ("acknowledged / errors", format!("{acked} / {errors}")),
        (
            "ack latency p50 / p99 / p999",
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                latency.p50_ms, latency.p99_ms, latency.p999_ms
            ),
        ),
    ];
    let mut summary = json!({"scenario": "ws-publish", "connections": args.connections, "in_flight": args.in_flight,
                             "acked": acked, "errors": errors, "events_per_s": rate.round(), "latency": latency.json()});
    if let (Some(store), false) = (&ceiling, ratios.is_empty()) {
        let ceiling = ceiling_rates.iter().sum::<f64>() / ceiling_rates.len() as f64;
        rows.push(("store", store.name().to_owned()));
        rows.push((
            "store's batched append ceiling events/s",
            format!("{ceiling:.0}"),
        ));
        summary["store"] = json!(store.name());
        summary["ceiling_per_s"] = json!(ceiling.round());
        add_ratio(&ratios, &mut rows, &mut summary);
    }
    print(
        &format!(
            "WebSocket publish: {} connections x {} in flight, {} round(s) of {} s",
            args.connections, args.in_flight, args.rounds, args.duration
        ),
        &rows,
        summary,
    );
    Ok(())
}
