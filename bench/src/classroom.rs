//! A classroom: S quiz sessions, each publishing a `timer_tick` every second
//! and an `answer_submitted` about every 20 s (payloads of 30-150 bytes), one
//! subscriber per session filtering on its `session_id`, and a few dashboards
//! filtering on quiz and answer events. Reports publish-to-delivery latency
//! and deliveries that never arrived.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::report::{now_us, print, Latency};
use crate::ws;

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent quiz sessions (each one subscriber and ~1.05 events/s).
    #[arg(long, default_value_t = 1_000)]
    sessions: usize,
    /// Dashboards subscribed to quiz_started, answer_submitted, quiz_completed.
    #[arg(long, default_value_t = 3)]
    dashboards: usize,
    /// WebSocket publish connections the sessions are spread over.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds to wait after publishing for the last deliveries.
    #[arg(long, default_value_t = 5)]
    grace: u64,
}

fn tick(session: &str, n: u64) -> String {
    format!(
        r#"{{"event_type":"timer_tick","source":"timer-service","session_id":"{session}","user_id":"stu-{session}","payload":{{"remaining_seconds":{},"elapsed_seconds":{n},"sent_us":{}}}}}"#,
        1800u64.saturating_sub(n),
        now_us()
    )
}

fn answer(session: &str, n: u64) -> String {
    format!(
        r#"{{"event_type":"answer_submitted","source":"quiz-engine","session_id":"{session}","user_id":"stu-{session}","payload":{{"question_id":"q-alg3-{:02}","answer":"B","correct":true,"time_spent_ms":41250,"sent_us":{}}}}}"#,
        n % 40,
        now_us()
    )
}

/// Publishes for `sessions` (index, name) until `until`; returns events sent
/// per session and answers sent, after every reply arrived.
async fn publisher(
    base: String,
    sessions: Vec<(usize, String)>,
    total_sessions: usize,
    until: Instant,
) -> Result<(Vec<u64>, u64, u64), String> {
    let (mut sink, mut replies) = ws::publisher(&base).await?.split();
    // Each session ticks at its own offset within the second.
    let mut order: Vec<(u64, usize)> = sessions
        .iter()
        .enumerate()
        .map(|(k, (i, _))| ((*i as u64 * 1_000) / total_sessions.max(1) as u64, k))
        .collect();
    order.sort_unstable();
    let mut sent = vec![0u64; sessions.len()];
    let (mut answers, mut total) = (0u64, 0u64);
    let (done_tx, done_rx) = watch::channel(u64::MAX);
    let counter = tokio::spawn(async move {
        let (mut got, mut errors) = (0u64, 0u64);
        let mut done = done_rx;
        loop {
            if got >= *done.borrow() {
                break;
            }
            let message = tokio::select! {
                m = replies.next() => m,
                _ = done.changed() => continue,
            };
            match message {
                Some(Ok(Message::Text(t))) => {
                    got += 1;
                    errors += u64::from(!t.contains("\"ok\""));
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
        errors
    });
    let start = Instant::now();
    let mut cursor = 0usize;
    let mut second = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    while Instant::now() < until {
        ticker.tick().await;
        let elapsed = start.elapsed().as_millis() as u64;
        while second * 1_000 + order.get(cursor).map_or(1_000, |o| o.0) <= elapsed {
            if cursor == order.len() {
                cursor = 0;
                second += 1;
                continue;
            }
            let k = order[cursor].1;
            let (i, name) = &sessions[k];
            sink.feed(Message::text(tick(name, second)))
                .await
                .map_err(|e| e.to_string())?;
            sent[k] += 1;
            total += 1;
            if (second + *i as u64).is_multiple_of(20) {
                sink.feed(Message::text(answer(name, second)))
                    .await
                    .map_err(|e| e.to_string())?;
                sent[k] += 1;
                answers += 1;
                total += 1;
            }
            cursor += 1;
        }
        sink.flush().await.map_err(|e| e.to_string())?;
    }
    let _ = done_tx.send(total);
    let errors = counter.await.map_err(|e| e.to_string())?;
    let _ = sink.send(Message::Close(None)).await;
    Ok((sent, answers, errors))
}

pub async fn run(base: &str, nodes: &ws::Nodes, args: Args) -> Result<(), String> {
    let run = format!("cls{}", now_us() % 1_000_000_000);
    let names: Vec<String> = (0..args.sessions).map(|i| format!("{run}-{i}")).collect();

    // Subscribers: one per session, then the dashboards; 64 handshakes at a time.
    let gate = Arc::new(Semaphore::new(64));
    let mut connecting = Vec::with_capacity(args.sessions + args.dashboards);
    let dashboard = json!({"event_types": ["quiz_started", "answer_submitted", "quiz_completed"]});
    let filters = names
        .iter()
        .map(|name| json!({"session_id": name}))
        .chain(std::iter::repeat_n(dashboard, args.dashboards));
    for (i, filter) in filters.enumerate() {
        let (node, gate) = (nodes.nth(i).to_owned(), Arc::clone(&gate));
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            ws::subscribe(&node, &filter.to_string()).await
        }));
    }
    let mut expected_tx = Vec::new();
    let mut readers = Vec::new();
    for c in connecting {
        let sub = c.await.map_err(|e| e.to_string())??;
        let (tx, rx) = watch::channel(u64::MAX);
        expected_tx.push(tx);
        readers.push(tokio::spawn(ws::read_deliveries(
            sub,
            rx,
            Some(format!("\"session_id\":\"{run}-")),
        )));
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let publishers: Vec<_> = (0..args.publishers.max(1))
        .map(|p| {
            let mine: Vec<(usize, String)> = (0..args.sessions)
                .filter(|i| i % args.publishers.max(1) == p)
                .map(|i| (i, names[i].clone()))
                .collect();
            tokio::spawn(publisher(base.to_owned(), mine, args.sessions, until))
        })
        .collect();
    let mut per_session = vec![0u64; args.sessions];
    let (mut answers, mut errors) = (0u64, 0u64);
    for (p, task) in publishers.into_iter().enumerate() {
        let (sent, a, e) = task.await.map_err(|e| e.to_string())??;
        for (k, i) in (0..args.sessions)
            .filter(|i| i % args.publishers.max(1) == p)
            .enumerate()
        {
            per_session[i] = sent[k];
        }
        answers += a;
        errors += e;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let published: u64 = per_session.iter().sum();
    for (i, tx) in expected_tx.iter().enumerate() {
        let _ = tx.send(if i < args.sessions {
            per_session[i]
        } else {
            answers
        });
    }
    let expected = published + answers * args.dashboards as u64;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.grace);
    let (mut all, mut closed_early) = (Vec::new(), 0usize);
    for r in readers {
        match tokio::time::timeout_at(deadline, r).await {
            Ok(Ok(seen)) => {
                closed_early += usize::from(seen.closed_early);
                all.extend(seen.latencies);
            }
            _ => closed_early += 1,
        }
    }
    let delivered = all.len() as u64;
    let latency = Latency::of(all);
    print(
        &format!(
            "classroom: {} sessions, {} dashboards, {} s",
            args.sessions, args.dashboards, args.duration
        ),
        &[
            (
                "events published/s",
                format!("{:.0}", published as f64 / publish_secs),
            ),
            (
                "published (answers) / refused",
                format!("{published} ({answers}) / {errors}"),
            ),
            ("deliveries", format!("{delivered} of {expected} expected")),
            ("missing", format!("{}", expected.saturating_sub(delivered))),
            ("subscribers closed early", format!("{closed_early}")),
            (
                "publish-to-delivery p50 / p99 / p999 / max",
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2} ms",
                    latency.p50_ms, latency.p99_ms, latency.p999_ms, latency.max_ms
                ),
            ),
        ],
        json!({"scenario": "classroom", "subscriber_nodes": nodes.len(), "sessions": args.sessions, "dashboards": args.dashboards, "duration_s": args.duration,
               "published": published, "answers": answers, "refused": errors, "events_per_s": (published as f64 / publish_secs).round(),
               "deliveries": delivered, "expected": expected, "missing": expected.saturating_sub(delivered),
               "closed_early": closed_early, "latency": latency.json()}),
    );
    Ok(())
}
