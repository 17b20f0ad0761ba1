//! Subscribe handshakes: C workers each open `/ws/subscribe` (with the
//! credential given, e.g. `?token=`), send `{}`, wait for the `subscribed`
//! ack and close, over and over: what admitting a subscriber costs.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::report::{now_us, print, Latency};
use crate::ws::ws_url;

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent workers.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds of handshaking.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// The query string of the handshake, e.g. `token=eyJ...` or `api_key=...`.
    #[arg(long, default_value = "")]
    query: String,
}

/// One handshake, subscription and close; the time to the ack.
async fn once(url: &str) -> Result<u64, String> {
    let started = now_us();
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    ws.send(Message::text("{}"))
        .await
        .map_err(|e| format!("send filter: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => break,
            Some(Ok(Message::Text(t))) => return Err(format!("refused: {t}")),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("subscribe: {e}")),
            None => return Err("closed while subscribing".into()),
        }
    }
    let took = now_us().saturating_sub(started);
    let _ = ws.close(None).await;
    // Read to the server's close so that its slot is free before the next.
    while let Some(Ok(_)) = ws.next().await {}
    Ok(took)
}

pub async fn run(base: &str, args: Args) -> Result<(), String> {
    let path = if args.query.is_empty() {
        "/ws/subscribe".to_owned()
    } else {
        format!("/ws/subscribe?{}", args.query)
    };
    let url = ws_url(base, &path);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let workers: Vec<_> = (0..args.connections)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut took = Vec::new();
                while Instant::now() < until {
                    took.push(once(&url).await?);
                }
                Ok::<_, String>(took)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.map_err(|e| e.to_string())??);
    }
    let secs = started.elapsed().as_secs_f64();
    let count = latencies.len();
    let rate = count as f64 / secs;
    let latency = Latency::of(latencies);
    print(
        &format!(
            "Subscribe handshakes: {} workers, {} s",
            args.connections, args.duration
        ),
        &[
            ("subscribed/s", format!("{rate:.0}")),
            (
                "to the ack p50 / p99 / p999",
                format!(
                    "{:.2} / {:.2} / {:.2} ms",
                    latency.p50_ms, latency.p99_ms, latency.p999_ms
                ),
            ),
        ],
        json!({"scenario": "handshakes", "connections": args.connections, "subscribed": count,
               "per_s": rate.round(), "latency": latency.json()}),
    );
    Ok(())
}
