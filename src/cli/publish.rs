//! `publish`: one event from flags over REST, or JSON lines from a file or
//! stdin over one pipelined WebSocket (`/ws/publish` answers each message
//! in order, so the n-th reply is line n's). Stored ids go to stdout, one
//! per line; each refusal goes to stderr with its line number and reason.

use std::io::IsTerminal;
use std::path::PathBuf;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::client::{Client, Remote};
use super::output::emit;
use super::progress;
use super::ws::{close, connect, next_object};
use super::CliError;

/// `event-pipeline publish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service.
    #[command(flatten)]
    pub remote: Remote,
    /// Publish one event of this type (with the flags below) over REST.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub event_type: Option<String>,
    /// Its source.
    #[arg(long, default_value = "cli", requires = "event_type")]
    pub source: String,
    /// Its session.
    #[arg(long = "session", value_name = "SESSION_ID", requires = "event_type")]
    pub session_id: Option<String>,
    /// Its user.
    #[arg(long = "user", value_name = "USER_ID", requires = "event_type")]
    pub user_id: Option<String>,
    /// Its payload, a JSON object.
    #[arg(long, value_name = "JSON", requires = "event_type")]
    pub payload: Option<String>,
    /// Publish each line of this file (`-`: stdin), a publish body in JSON;
    /// without --type and --file, stdin is read.
    #[arg(long, value_name = "PATH", conflicts_with = "event_type")]
    pub file: Option<PathBuf>,
    /// Messages sent ahead of their replies.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: u32,
}

/// Publishes what `args` name.
pub(crate) async fn run(args: Args) -> Result<(), CliError> {
    let client = Client::new(&args.remote)?;
    if let Some(event_type) = &args.event_type {
        return one(&client, event_type, &args).await;
    }
    let (input, size): (Box<dyn AsyncBufRead + Unpin + Send>, Option<u64>) =
        match args.file.as_deref() {
            Some(path) if path.as_os_str() != "-" => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| CliError::Usage(format!("cannot open {}: {e}", path.display())))?;
                let size = file.metadata().await.ok().map(|m| m.len());
                (Box::new(BufReader::new(file)), size)
            }
            None if std::io::stdin().is_terminal() => return Err(CliError::Usage(
                "nothing to publish: give --type (one event) or --file PATH, or pipe JSON lines in"
                    .into(),
            )),
            _ => (Box::new(BufReader::new(tokio::io::stdin())), None),
        };
    lines(&client, input, size, args.window as usize).await
}

/// One event from the flags, over REST.
async fn one(client: &Client, event_type: &str, args: &Args) -> Result<(), CliError> {
    let payload: Value = match &args.payload {
        None => json!({}),
        Some(text) => serde_json::from_str(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| CliError::Usage(format!("--payload {text}: expected a JSON object")))?,
    };
    let mut body = json!({"event_type": event_type, "source": args.source, "payload": payload});
    if let Some(s) = &args.session_id {
        body["session_id"] = json!(s);
    }
    if let Some(u) = &args.user_id {
        body["user_id"] = json!(u);
    }
    let stored = client.post("/api/v1/events", &body).await?;
    let _ = emit(stored["id"].as_str().unwrap_or_default());
    Ok(())
}

/// A line on its way: sent (its reply is awaited), or refused here.
enum Sent {
    /// Line n was sent.
    Message(usize),
    /// Line n was not sent, for this reason.
    NotSent(usize, &'static str),
}

/// Counts of a run.
#[derive(Default)]
struct Tally {
    lines: usize,
    published: usize,
    refused: usize,
}

/// Every non-blank line of `input` over one WebSocket, `window` ahead.
async fn lines(
    client: &Client,
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    size: Option<u64>,
    window: usize,
) -> Result<(), CliError> {
    let ws = connect(client, "/ws/publish").await?;
    let (mut sink, mut stream) = ws.split();
    let bar = progress::bar(size.unwrap_or(0), "bytes");
    if size.is_none_or(|s| s < 64 * 1024) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let (sent_tx, mut sent_rx) = mpsc::channel::<Sent>(window);

    let writer = async {
        // Owned here: dropping it at the end tells the reader no more come.
        let sent_tx = sent_tx;
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            buf.clear();
            let read = match input.read_until(b'\n', &mut buf).await {
                Ok(0) => return Ok(n),
                Ok(read) => read,
                Err(e) => return Err(CliError::Usage(format!("cannot read line {}: {e}", n + 1))),
            };
            n += 1;
            bar.inc(read as u64);
            let Ok(text) = std::str::from_utf8(&buf) else {
                if sent_tx
                    .send(Sent::NotSent(n, "not UTF-8 text"))
                    .await
                    .is_err()
                {
                    return Ok(n);
                }
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            if sent_tx.send(Sent::Message(n)).await.is_err() {
                return Ok(n);
            }
            if sink.send(Message::text(text)).await.is_err() {
                // The reader sees the connection end and reports the lines in doubt.
                return Ok(n);
            }
        }
    };

    let reader = async {
        let mut tally = Tally::default();
        while let Some(sent) = sent_rx.recv().await {
            tally.lines += 1;
            let n = match sent {
                Sent::NotSent(n, why) => {
                    tally.refused += 1;
                    bar.suspend(|| eprintln!("line {n}: {why}"));
                    continue;
                }
                Sent::Message(n) => n,
            };
            match next_object(&mut stream).await.map(|(reply, _)| reply) {
                Ok(reply) if reply["status"] == "ok" => {
                    tally.published += 1;
                    bar.suspend(|| emit(reply["event_id"].as_str().unwrap_or_default()))
                        .ok();
                }
                Ok(reply) => {
                    tally.refused += 1;
                    let why = reply["message"].as_str().unwrap_or("refused");
                    bar.suspend(|| eprintln!("line {n}: {why}"));
                }
                Err(end) => {
                    sent_rx.close();
                    let mut doubt = vec![n];
                    while let Some(more) = sent_rx.recv().await {
                        if let Sent::Message(m) = more {
                            doubt.push(m);
                        }
                    }
                    return Err((tally, end, doubt));
                }
            }
        }
        Ok(tally)
    };

    let (written, read) = tokio::join!(writer, reader);
    bar.finish_and_clear();
    let tally = match read {
        Ok(tally) => tally,
        Err((tally, end, doubt)) => {
            eprintln!(
                "published {} events, {} refused, before the connection ended",
                tally.published, tally.refused
            );
            return Err(end.into_error(client, &doubt));
        }
    };
    written?;
    let mut ws = stream
        .reunite(sink)
        .map_err(|_| CliError::Connection("the WebSocket halves do not match".into()))?;
    close(&mut ws).await;
    if tally.lines > 1 || tally.refused > 0 {
        eprintln!(
            "published {} of {} events, {} refused",
            tally.published, tally.lines, tally.refused
        );
    }
    match tally.refused {
        0 => Ok(()),
        n => Err(CliError::SomeRefused(format!(
            "{n} of {} events were refused",
            tally.lines
        ))),
    }
}
