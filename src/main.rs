//! The `event-pipeline` binary: configure, serve until SIGINT or SIGTERM, then
//! shut down gracefully (every accepted event committed) and exit 0.

use std::process::ExitCode;

use event_pipeline::{telemetry, Config};

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("event-pipeline: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("event-pipeline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let running = match event_pipeline::start(config).await {
            Ok(running) => running,
            Err(e) => {
                tracing::error!(error = %e, "start-up failed");
                eprintln!("event-pipeline: {e}");
                return ExitCode::FAILURE;
            }
        };
        let signal = shutdown_signal().await;
        tracing::info!(
            signal,
            "shutting down: no new connections; committing accepted events"
        );
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Resolves on SIGINT or SIGTERM, naming which.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the service");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
