//! The command line. `event-pipeline` with no arguments (or `serve`)
//! serves; the other subcommands are clients of a running service
//! (`publish`, `tail`, `query`, `stats`, `event-types`) or work on the
//! configuration, credentials and the stores directly (`config`, `keys`,
//! `token`, `import-legacy`).
//!
//! Exit codes: 0 done; 1 the service or the data refused something (each
//! refusal is on stderr, with its line number for `publish`); 2 a usage,
//! configuration or connection error.

mod client;
mod credentials;
mod import;
mod output;
mod progress;
mod publish;
mod reads;
mod show_config;
mod tail;
mod ws;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use client::Remote;

/// `event-pipeline`: real-time event pub/sub for educational platforms.
#[derive(Debug, Parser)]
#[command(name = "event-pipeline", version, about, long_about = None)]
pub struct Cli {
    /// What to do; serve when left out.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST and WebSocket API (what no subcommand does).
    Serve,
    /// Publish one event from flags, or JSON lines from a file or stdin
    /// over one pipelined WebSocket; prints each stored event's id.
    Publish(publish::Args),
    /// Print events as they are stored, filtered; reconnects and resumes
    /// by itself.
    Tail(tail::Args),
    /// Stored events, newest first (GET /api/v1/events).
    Query(reads::QueryArgs),
    /// Totals by type and the router's state (GET /api/v1/stats).
    Stats(reads::ReadArgs),
    /// The registered event types (GET /api/v1/event-types).
    EventTypes(reads::ReadArgs),
    /// Print the effective configuration (environment and CONFIG_FILE),
    /// secrets masked, or the error start-up would give.
    Config(show_config::Args),
    /// Make a named key for API_KEYS_FILE.
    #[command(subcommand)]
    Keys(credentials::KeysCommand),
    /// Mint a signed token (HS256, from JWT_HS256_SECRET) for a browser or a test.
    Token(credentials::MintToken),
    /// Copy the events of the Python service's SQLite database into the
    /// configured store; running it again stores nothing twice.
    ImportLegacy(import::Args),
}

/// A failure of a subcommand, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The service answered with an error status.
    #[error("{status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its `detail` (or the body).
        detail: String,
    },
    /// Some events (or rows) were refused; each was reported already.
    #[error("{0}")]
    SomeRefused(String),
    /// The service could not be reached or the connection broke.
    #[error("{0}")]
    Connection(String),
    /// The arguments or the configuration do not work.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// The exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused { .. } | CliError::SomeRefused(_) => 1,
            CliError::Connection(_) | CliError::Usage(_) => 2,
        }
    }
}

/// Runs a client subcommand (anything but `serve`) to its end.
pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("event-pipeline: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        match command {
            Command::Serve => Ok(()),
            Command::Publish(args) => publish::run(args).await,
            Command::Tail(args) => tail::run(args).await,
            Command::Query(args) => reads::query(args).await,
            Command::Stats(args) => reads::get(&args, "/api/v1/stats").await,
            Command::EventTypes(args) => reads::get(&args, "/api/v1/event-types").await,
            Command::Config(args) => show_config::run(&args),
            Command::ImportLegacy(args) => import::run(args).await,
            Command::Keys(credentials::KeysCommand::New(args)) => credentials::new_key(&args),
            Command::Token(args) => credentials::mint(&args),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("event-pipeline: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
