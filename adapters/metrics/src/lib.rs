//! Prometheus metrics, on the `metrics` facade and its Prometheus exporter:
//! the recorder this process installs, the text `/metrics` serves, and a
//! store decorator that measures what every store does the same way
//! (commits, their size and time, publish-to-commit latency, errors).
//!
//! Why `metrics` rather than `prometheus-client`: it is a facade like
//! `tracing`, so each crate records where things happen without a registry
//! handed down to it, and with no recorder installed (`METRICS=false`) each
//! call is a no-op; the exporter renders the Prometheus text format itself,
//! with histograms on the buckets set here.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod metered_store;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use metered_store::MeteredStore;

/// Buckets of every `*_seconds` histogram: 250 µs to 10 s.
const SECONDS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Buckets of the commit batch size histogram.
const BATCH: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0,
];
/// How often histograms are folded in between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The installed recorder: renders the Prometheus text format.
#[derive(Clone)]
pub struct Metrics(PrometheusHandle);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Installs the process-wide recorder (once; later calls return the same
    /// one) and starts its upkeep on the current tokio runtime.
    pub fn install() -> Self {
        static INSTALLED: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
        let handle = INSTALLED.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(metered_store::COMMIT_BATCH_SIZE.into()),
                        BATCH,
                    )
                });
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => {
                    describe();
                    Some(handle)
                }
                Ok(Err(e)) | Err(e) => {
                    tracing::error!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        });
        let handle = handle
            .clone()
            .unwrap_or_else(|| PrometheusBuilder::new().build_recorder().handle());
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        Self(handle)
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        self.0.render()
    }
}

fn describe() {
    metered_store::describe();
}
