//! `publish`: one event from flags over REST, or JSON lines from a file or
//! stdin in batch requests (`/events/batch` answers each item in order, so
//! the n-th result is the n-th line's), each line with an idempotency key
//! so that a batch whose answer was lost is sent again safely. Stored ids
//! go to stdout, one per line; each refusal goes to stderr with its line
//! number and reason.

use std::io::IsTerminal;
use std::path::PathBuf;

use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::client::{Client, Remote};
use super::output::emit;
use super::progress;
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
    /// Lines sent in one batch request (fewer when the service takes fewer
    /// at once, or the lines are large).
    #[arg(long, alias = "window", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
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
    lines(&client, input, size, args.batch as usize).await
}

/// One event from the flags, over REST.
async fn one(client: &Client, event_type: &str, args: &Args) -> Result<(), CliError> {
    // The payload goes as written, so its keys keep their order.
    let payload = match &args.payload {
        None => "{}",
        Some(text) => {
            let object = serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object);
            if object.is_none() {
                return Err(CliError::Usage(format!(
                    "--payload {text}: expected a JSON object"
                )));
            }
            text.trim()
        }
    };
    let mut body = format!(
        "{{\"event_type\":{},\"source\":{}",
        json!(event_type),
        json!(args.source)
    );
    for (key, value) in [("session_id", &args.session_id), ("user_id", &args.user_id)] {
        if let Some(v) = value {
            body.push_str(&format!(",\"{key}\":{}", json!(v)));
        }
    }
    body.push_str(&format!(",\"payload\":{payload}}}"));
    let stored = client.post_text("/api/v1/events", body).await?;
    let _ = emit(stored["id"].as_str().unwrap_or_default());
    Ok(())
}

/// Most bytes of lines in one batch request (the service's body limit is
/// 1 MiB by default).
const BATCH_BYTES: usize = 512 * 1024;
/// Tries of one batch when the service cannot be reached or is busy; the
/// lines carry idempotency keys, so a batch sent again stores nothing twice.
const ATTEMPTS: u32 = 6;

/// Counts of a run.
#[derive(Default)]
struct Tally {
    lines: usize,
    published: usize,
    refused: usize,
}

/// Lines waiting to be sent: (line number, the line with its key).
#[derive(Default)]
struct Pending {
    lines: Vec<(usize, String)>,
    bytes: usize,
}

/// Every non-blank line of `input` in batch requests of at most `batch`
/// lines (`POST /events/batch`), each line given an idempotency key of this
/// run unless it has one, so that a batch whose answer was lost is sent
/// again safely.
async fn lines(
    client: &Client,
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    size: Option<u64>,
    batch: usize,
) -> Result<(), CliError> {
    let bar = progress::bar(size.unwrap_or(0), "bytes");
    if size.is_none_or(|s| s < 64 * 1024) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let run = run_id();
    let mut tally = Tally::default();
    let mut pending = Pending::default();
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        let read = match input.read_until(b'\n', &mut buf).await {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) => return Err(CliError::Usage(format!("cannot read line {}: {e}", n + 1))),
        };
        n += 1;
        bar.inc(read as u64);
        let Ok(text) = std::str::from_utf8(&buf) else {
            tally.lines += 1;
            tally.refused += 1;
            bar.suspend(|| eprintln!("line {n}: not UTF-8 text"));
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        tally.lines += 1;
        let Some(line) = with_key(text, &format!("cli-{run}-{n}")) else {
            tally.refused += 1;
            bar.suspend(|| eprintln!("line {n}: Invalid JSON"));
            continue;
        };
        if !pending.lines.is_empty()
            && (pending.lines.len() >= batch || pending.bytes + line.len() > BATCH_BYTES)
        {
            if let Err(e) = send(client, std::mem::take(&mut pending), &mut tally, &bar).await {
                return Err(stopped(&tally, e));
            }
        }
        pending.bytes += line.len() + 1;
        pending.lines.push((n, line));
    }
    if !pending.lines.is_empty() {
        if let Err(e) = send(client, pending, &mut tally, &bar).await {
            return Err(stopped(&tally, e));
        }
    }
    bar.finish_and_clear();
    // One summary: on stderr when all went, as the error when some did not.
    match tally.refused {
        0 => {
            if tally.lines > 1 {
                eprintln!("published {} of {} events", tally.published, tally.lines);
            }
            Ok(())
        }
        n => Err(CliError::SomeRefused(format!(
            "published {} of {} events; {n} of {} events were refused",
            tally.published, tally.lines, tally.lines
        ))),
    }
}

/// Says what was done before `e` stopped the run, and gives `e` back.
fn stopped(tally: &Tally, e: CliError) -> CliError {
    if tally.published + tally.refused > 0 {
        eprintln!(
            "published {} events, {} refused, before stopping",
            tally.published, tally.refused
        );
    }
    e
}

/// `line` with `"idempotency_key": key` added when it is a JSON object
/// without one (its own text otherwise, keys in their order); `None` when
/// it is not JSON.
fn with_key(line: &str, key: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    let Some(object) = value.as_object() else {
        return Some(line.to_owned());
    };
    if object.contains_key("idempotency_key") {
        return Some(line.to_owned());
    }
    let field = format!("\"idempotency_key\":{}", Value::from(key));
    let rest = line.strip_prefix('{')?;
    Some(if object.is_empty() {
        format!("{{{field}}}")
    } else {
        format!("{{{field},{rest}")
    })
}

/// A random tag for this run's idempotency keys.
fn run_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness the keys are still this run's: the clock's nanos.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends one batch, again while the service is unreachable, busy (503) or
/// over its rate limit for some lines, halving it when it holds more lines
/// than the service takes at once; reports each line's result in order.
async fn send(
    client: &Client,
    batch: Pending,
    tally: &mut Tally,
    bar: &indicatif::ProgressBar,
) -> Result<(), CliError> {
    let mut queue = vec![batch.lines];
    while let Some(lines) = queue.pop() {
        let body = format!(
            "[{}]",
            lines
                .iter()
                .map(|(_, l)| l.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut attempt = 0;
        let results = loop {
            attempt += 1;
            match client.post_text("/api/v1/events/batch", body.clone()).await {
                Ok(results) => break Some(results),
                // More lines than MAX_BATCH_EVENTS: the halves, in order.
                Err(CliError::Refused { status: 422, .. }) if lines.len() > 1 => break None,
                Err(e @ (CliError::Connection(_) | CliError::Refused { status: 503, .. }))
                    if attempt < ATTEMPTS =>
                {
                    let wait = std::time::Duration::from_millis(250 << attempt);
                    bar.suspend(|| eprintln!("{e}; sending lines {}-{} again in {wait:?}", lines[0].0, lines[lines.len() - 1].0));
                    tokio::time::sleep(wait).await;
                }
                Err(CliError::Connection(e)) => {
                    return Err(CliError::Connection(format!(
                        "{e}; lines {}-{} were sent {ATTEMPTS} times without an answer \
                         (whether they were stored is not known) and the lines after them were not sent",
                        lines[0].0,
                        lines[lines.len() - 1].0
                    )))
                }
                Err(CliError::Refused { status: 401, .. }) => return Err(super::ws::unauthorized()),
                Err(e) => return Err(e),
            }
        };
        let Some(Value::Array(results)) = results else {
            let mut first = lines;
            let second = first.split_off(first.len() / 2);
            queue.push(second);
            queue.push(first);
            continue;
        };
        let mut again = Vec::new();
        let mut wait = 0;
        for ((n, line), result) in lines.into_iter().zip(results) {
            if result["status"] == "ok" {
                tally.published += 1;
                bar.suspend(|| emit(result["event"]["id"].as_str().unwrap_or_default()))
                    .ok();
            } else if result["detail"][0]["type"] == "rate_limited" && attempt < ATTEMPTS {
                wait = wait.max(result["retry_after"].as_u64().unwrap_or(1));
                again.push((n, line));
            } else {
                tally.refused += 1;
                let why = super::client::detail(&result);
                bar.suspend(|| eprintln!("line {n}: {why}"));
            }
        }
        if !again.is_empty() {
            tokio::time::sleep(std::time::Duration::from_secs(wait.min(60))).await;
            queue.push(again);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_gets_this_run_s_key_with_its_own_keys_kept_in_order() {
        assert_eq!(
            with_key(
                r#"{"event_type":"timer_tick","source":"t","payload":{"z":1,"a":2}}"#,
                "cli-x-3"
            )
            .as_deref(),
            Some(
                r#"{"idempotency_key":"cli-x-3","event_type":"timer_tick","source":"t","payload":{"z":1,"a":2}}"#
            )
        );
        assert_eq!(
            with_key("{ }", "k").as_deref(),
            Some(r#"{"idempotency_key":"k"}"#)
        );
        let own = r#"{"idempotency_key":"mine","event_type":"timer_tick"}"#;
        assert_eq!(
            with_key(own, "k").as_deref(),
            Some(own),
            "a key of the line's own is kept"
        );
        assert_eq!(
            with_key("[1, 2]", "k").as_deref(),
            Some("[1, 2]"),
            "the service refuses it"
        );
        assert_eq!(with_key("not json", "k"), None);
        assert_eq!(with_key(r#"{"a":1"#, "k"), None);
        let keyed: Value = serde_json::from_str(&with_key(r#"{"a":"\"}"}"#, "k\"q").expect("JSON"))
            .expect("valid JSON");
        assert_eq!(keyed["idempotency_key"], "k\"q");
    }

    #[test]
    fn each_run_has_its_own_tag() {
        assert_ne!(run_id(), run_id());
        assert_eq!(run_id().len(), 16);
    }
}
