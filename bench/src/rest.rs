//! REST publish: C keep-alive connections in a closed loop (each sends the
//! next request when the previous answer arrived). A minimal HTTP/1.1 client
//! so that the load generator costs as little CPU as possible.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::report::{add_ratio, now_us, print, tick, Latency, Totals};

#[derive(clap::Args)]
pub struct Args {
    /// Keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Path to post to.
    #[arg(long, default_value = "/api/v1/events")]
    path: String,
    /// Also measure this URL (e.g. `noop-server`) first, the same way, and
    /// report the service's rate as a ratio to it.
    #[arg(long)]
    ceiling_url: Option<String>,
    /// Measure the ceiling and the service this many times in turn, each
    /// for `--duration`: the ratio reported is the median of the rounds'
    /// ratios, so a machine whose speed drifts during the run (a shared
    /// host's does, by half within minutes) is compared with itself.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// An extra request header, `Name: value` (repeat for more): a
    /// credential, to measure what checking it costs (`X-API-Key: ...`,
    /// `Authorization: Bearer ...`). Sent to the ceiling too.
    #[arg(long = "header")]
    headers: Vec<String>,
    #[command(flatten)]
    store_ceiling: crate::ceiling::StoreCeiling,
}

struct Outcome {
    created: u64,
    other: u64,
    latencies: Vec<u64>,
}

/// Reads one response into `buf`; returns its status code and where in
/// `buf` its body is.
pub(crate) async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, std::ops::Range<usize>), String> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|e| e.to_string())?;
            let status: u16 = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or("bad status line")?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((status, end + 4..end + 4 + length));
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn connection(
    addr: String,
    path: String,
    extra: String,
    n: usize,
    until: Instant,
) -> Result<Outcome, String> {
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut out = Outcome {
        created: 0,
        other: 0,
        latencies: Vec::new(),
    };
    let mut buf = Vec::with_capacity(4096);
    let mut i = 0u64;
    while Instant::now() < until {
        let body = tick(
            &format!("bench-rest-{}", (n as u64 * 1_000 + i) % 5_000),
            "stu-bench",
            i,
        );
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let sent = now_us();
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let (status, _) = read_response(&mut stream, &mut buf).await?;
        out.latencies.push(now_us().saturating_sub(sent));
        if status == 201 {
            out.created += 1;
        } else {
            out.other += 1;
        }
        i += 1;
    }
    Ok(out)
}

/// One timed run of every connection against `base`.
async fn measure(base: &str, args: &Args) -> Result<Totals, String> {
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let extra: String = args.headers.iter().map(|h| format!("{h}\r\n")).collect();
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let tasks: Vec<_> = (0..args.connections)
        .map(|n| {
            tokio::spawn(connection(
                addr.clone(),
                args.path.clone(),
                extra.clone(),
                n,
                until,
            ))
        })
        .collect();
    let mut run = Totals::default();
    for t in tasks {
        let o = t.await.map_err(|e| e.to_string())??;
        run.ok += o.created;
        run.other += o.other;
        run.latencies.extend(o.latencies);
    }
    run.secs = started.elapsed().as_secs_f64();
    Ok(run)
}

pub async fn run(base: &str, args: Args) -> Result<(), String> {
    let (mut service, mut ceiling) = (Totals::default(), Totals::default());
    let mut ratios = Vec::new();
    for _ in 0..args.rounds {
        let against = match &args.ceiling_url {
            Some(url) => Some(measure(url, &args).await?),
            None => None,
        };
        let run = measure(base, &args).await?;
        if let Some(against) = against {
            if against.rate() > 0.0 {
                ratios.push(run.rate() / against.rate());
            }
            // Only its rate is reported: its latencies are not kept.
            ceiling.add(Totals {
                latencies: Vec::new(),
                ..against
            });
        }
        service.add(run);
    }
    // The store's ceiling appends as many events as the service stored, so
    // that both end with databases of the same size.
    let store_ceiling = match args.store_ceiling.open().await? {
        Some(store) => Some((store.name(), store.rate(service.ok).await?))
            .filter(|(_, ceiling)| *ceiling > 0.0),
        None => None,
    };
    let rate = service.rate();
    let (created, other) = (service.ok, service.other);
    let latency = Latency::of(service.latencies);
    let mut rows = vec![
        ("201 responses/s", format!("{rate:.0}")),
        ("201 / other", format!("{created} / {other}")),
        (
            "latency p50 / p99 / p999",
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                latency.p50_ms, latency.p99_ms, latency.p999_ms
            ),
        ),
    ];
    let mut summary = json!({"scenario": "rest", "connections": args.connections, "created": created, "other": other,
                             "per_s": rate.round(), "latency": latency.json()});
    if !ratios.is_empty() {
        let ceiling_rate = ceiling.rate();
        rows.push(("no-op ceiling responses/s", format!("{ceiling_rate:.0}")));
        summary["ceiling_per_s"] = json!(ceiling_rate.round());
        add_ratio(&ratios, &mut rows, &mut summary);
    }
    if let Some((store, ceiling)) = store_ceiling {
        rows.push(("store", store.to_owned()));
        rows.push((
            "store's batched append ceiling events/s",
            format!("{ceiling:.0}"),
        ));
        rows.push((
            "ratio to the store's ceiling",
            format!("{:.2}", rate / ceiling),
        ));
        summary["store"] = json!(store);
        summary["store_ceiling_per_s"] = json!(ceiling.round());
        summary["store_ratio"] = json!((rate / ceiling * 100.0).round() / 100.0);
    }
    print(
        &format!(
            "REST publish: {} connections, {} round(s) of {} s",
            args.connections, args.rounds, args.duration
        ),
        &rows,
        summary,
    );
    Ok(())
}
