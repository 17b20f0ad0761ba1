//! `event-pipeline-bench`: a load generator for a running event-pipeline.
//!
//! Each scenario prints a human-readable table and one JSON line (for
//! scripts). Run the service with limits raised for load, e.g.
//! `RATE_LIMIT_PUBLISH=1000000/second MAX_WS_CONNECTIONS_PER_IP=100000`.

mod big;
mod broadcaster;
mod ceiling;
mod classroom;
mod fanout;
mod handshakes;
mod idle;
mod report;
mod rest;
mod stages;
mod ws;
mod ws_publish;

use clap::{Parser, Subcommand};

/// Load generator for event-pipeline.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Base URL of the service (publishers, and subscribers unless
    /// `--subscribe-url` says otherwise).
    #[arg(long, default_value = "http://127.0.0.1:8001", global = true)]
    url: String,
    /// Base URLs subscribers connect to, round robin (several nodes); the
    /// fan-out and classroom scenarios take them. Repeat or separate
    /// with commas. Default: `--url`.
    #[arg(long, global = true, value_delimiter = ',')]
    subscribe_url: Vec<String>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// REST publish, closed loop over keep-alive connections.
    Rest(rest::Args),
    /// WebSocket publish with many events in flight per connection.
    WsPublish(ws_publish::Args),
    /// N subscribers all matching a paced stream of events: delivery rate and latency.
    Fanout(fanout::Args),
    /// Subscribe handshakes in a closed loop: connect, `{}`, ack, close.
    Handshakes(handshakes::Args),
    /// N idle subscribers: the server's memory per connection.
    Idle(idle::Args),
    /// S quiz sessions: a tick per second and an answer every ~20 s each, a
    /// subscriber per session, and dashboards.
    Classroom(classroom::Args),
    /// Serve a bare WebSocket broadcaster (the fan-out ceiling) until killed.
    FanoutCeiling(broadcaster::Args),
    /// Serve the no-op publish endpoint (the HTTP ceiling) until killed.
    NoopServer(ceiling::ServerArgs),
    /// The raw SQLite batched insert rate with the service's schema.
    SqliteCeiling(ceiling::SqliteArgs),
    /// The raw PostgreSQL batched append rate with the service's schema.
    PostgresCeiling(ceiling::PostgresArgs),
    /// Write N events of the realistic mix over a 120-day term straight
    /// into a store, for `big` (before the service opens it).
    Fill(big::FillArgs),
    /// Against a service on a filled store: stats, the contract's queries,
    /// and a large delete with the publish latency during it.
    Big(big::BigArgs),
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("cannot start the async runtime: {e}");
            std::process::exit(1)
        });
    let subscribers = if cli.subscribe_url.is_empty() {
        ws::Nodes::new(vec![cli.url.clone()])
    } else {
        ws::Nodes::new(cli.subscribe_url.clone())
    };
    let result = runtime.block_on(async {
        match cli.scenario {
            Scenario::Rest(args) => rest::run(&cli.url, args).await,
            Scenario::Fill(args) => big::fill(args).await,
            Scenario::Big(args) => big::run(&cli.url, args).await,
            Scenario::WsPublish(args) => ws_publish::run(&cli.url, args).await,
            Scenario::Fanout(args) => fanout::run(&cli.url, &subscribers, args).await,
            Scenario::Idle(args) => idle::run(&cli.url, args).await,
            Scenario::Handshakes(args) => handshakes::run(&cli.url, args).await,
            Scenario::Classroom(args) => classroom::run(&cli.url, &subscribers, args).await,
            Scenario::NoopServer(args) => ceiling::serve_noop(args).await,
            Scenario::FanoutCeiling(args) => broadcaster::serve(args).await,
            Scenario::SqliteCeiling(args) => ceiling::run_sqlite(args).await,
            Scenario::PostgresCeiling(args) => ceiling::run_postgres(args).await,
        }
    });
    if let Err(e) = result {
        eprintln!("event-pipeline-bench: {e}");
        std::process::exit(1);
    }
}
