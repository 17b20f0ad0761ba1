//! The `event-pipeline` binary: with no arguments (or `serve`), configure,
//! serve until SIGINT or SIGTERM, then shut down gracefully (every accepted
//! event committed) and exit 0; with a subcommand, a client of the service
//! (see `event_pipeline::cli`).

use std::process::ExitCode;

use clap::Parser;
use event_pipeline::cli::{self, Cli, Command};
use event_pipeline::{telemetry, Config};

fn main() -> ExitCode {
    match Cli::parse().command {
        None | Some(Command::Serve) => serve(),
        Some(command) => cli::run(command),
    }
}

/// Runs the service.
fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("event-pipeline: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(|| ep_thread_slice::shorten_current_thread_slice_or_log("ep-worker"))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("event-pipeline: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let json_logs = config.log_format == event_pipeline::config::LogFormat::Json;
    runtime.block_on(async {
        // Listen for signals before serving: a SIGTERM that comes right after
        // start-up must still stop the service gracefully.
        let signal = shutdown_signal();
        let running = match event_pipeline::start(config).await {
            Ok(running) => running,
            Err(e) => {
                // Said once: as a JSON log record for log collectors, else
                // as one plain line.
                if json_logs {
                    tracing::error!(error = %e, "start-up failed");
                } else {
                    eprintln!("event-pipeline: {e}");
                }
                return ExitCode::from(e.exit_code());
            }
        };
        let signal = reload_until_stopped(&running, signal).await;
        tracing::info!(
            signal,
            "shutting down: no new connections; committing accepted events"
        );
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Reloads the keys on every SIGHUP until `stop` resolves; returns its signal.
async fn reload_until_stopped(
    running: &event_pipeline::Running,
    stop: impl std::future::Future<Output = &'static str>,
) -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::pin!(stop);
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: keys are not reloaded");
        return stop.await;
    };
    loop {
        tokio::select! {
            name = &mut stop => return name,
            _ = hup.recv() => running.reload_keys(),
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now; the returned future
/// resolves on either, naming which.
fn shutdown_signal() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            (term, int) => {
                if let Err(e) = term.as_ref().and(int.as_ref()) {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM or SIGINT");
                }
                std::future::pending().await
            }
        }
    }
}
