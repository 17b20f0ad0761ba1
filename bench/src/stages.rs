//! The service's own stage figures for a run: the means of its
//! publish-to-commit, publish-to-dequeue and publish-to-write histograms over
//! the run (the difference of two `/metrics` scrapes, `_sum` over `_count`).
//! Exact means, where the buckets would only bound the percentiles; absent
//! for a target without `/metrics` (the ceilings).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The histograms, in pipeline order, with the stage each ends at.
pub const STAGES: [(&str, &str); 3] = [
    ("event_pipeline_publish_to_commit_seconds", "committed"),
    ("event_pipeline_publish_to_dequeue_seconds", "dequeued"),
    ("event_pipeline_publish_to_write_seconds", "written"),
];

/// `(sum, count)` of each of [`STAGES`] at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Scrape([(f64, f64); 3]);

impl Scrape {
    /// Reads `base`'s `/metrics`; `None` when it has none.
    pub async fn take(base: &str) -> Option<Self> {
        let text = get(base, "/metrics").await?;
        let mut out = [(0.0, 0.0); 3];
        for line in text.lines() {
            let Some((name, value)) = line.split_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            for (i, (stage, _)) in STAGES.iter().enumerate() {
                if name.strip_prefix(stage) == Some("_sum") {
                    out[i].0 = value;
                } else if name.strip_prefix(stage) == Some("_count") {
                    out[i].1 = value;
                }
            }
        }
        Some(Self(out))
    }

    /// The mean of each stage between `earlier` and `self`, in ms, with the
    /// stage's name; `None` for a stage without samples in between.
    pub fn means_since(&self, earlier: &Self) -> Vec<(&'static str, Option<f64>)> {
        STAGES
            .iter()
            .zip(self.0.iter().zip(earlier.0.iter()))
            .map(|((_, stage), ((sum, count), (sum0, count0)))| {
                let n = count - count0;
                (*stage, (n > 0.0).then(|| (sum - sum0) / n * 1_000.0))
            })
            .collect()
    }
}

/// The body of `GET path` on `base` (`http://host:port`), if it answered 200.
async fn get(base: &str, path: &str) -> Option<String> {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}
