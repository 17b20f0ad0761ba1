//! Idle subscribers: opens N subscriptions that receive nothing and reports
//! how much the server's resident memory grew per connection.

use std::time::Duration;

use serde_json::json;

use crate::report::{now_us, print};
use crate::ws;

#[derive(clap::Args)]
pub struct Args {
    /// Subscribers to open.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// The server's process id (its memory is read from /proc).
    #[arg(long)]
    server_pid: u32,
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc status".to_owned())
}

pub async fn run(base: &str, args: Args) -> Result<(), String> {
    let before = rss_kib(args.server_pid)?;
    let tag = now_us();
    let mut held = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        held.push(
            ws::subscribe(
                base,
                &json!({"session_id": format!("idle-{tag}-{i}")}).to_string(),
            )
            .await?,
        );
    }
    // Let the server settle (buffers it allocates lazily after the ack).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(args.server_pid)?;
    let per = (after.saturating_sub(before)) as f64 / args.subscribers as f64;
    print(
        &format!("idle subscribers: {}", args.subscribers),
        &[
            ("server RSS before", format!("{before} KiB")),
            ("server RSS with subscribers", format!("{after} KiB")),
            ("per subscriber", format!("{per:.1} KiB")),
        ],
        json!({"scenario": "idle", "subscribers": args.subscribers, "rss_before_kib": before, "rss_after_kib": after, "kib_per_subscriber": (per * 10.0).round() / 10.0}),
    );
    drop(held);
    Ok(())
}
