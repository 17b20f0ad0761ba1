//! Logging: `tracing` to stderr, as text or JSON lines, filtered by `LOG_LEVEL`.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides
/// `LOG_LEVEL` with a full filter (e.g. `ep_domain=trace,info`).
pub fn init(config: &Config) {
    // Dependencies log their own internals at debug; keep them at warn unless
    // asked. warp logs every client that hangs up mid-request as an ERROR;
    // those are not the operator's problem, so its server target is off.
    let default = format!(
        "{},hyper=warn,hyper_util=warn,warp=warn,warp::server=off,\
         async_nats=warn,tokio_postgres=warn,deadpool=warn,redis=warn",
        config.log_level
    );
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    // Colour codes only for a person at a terminal: in a file or a log
    // collector they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already installed (tests); keep it.
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
