//! `tail`: subscribe with a filter and print each event as it is stored,
//! one JSON line each (or a short line for people with `--pretty`). A
//! dropped connection (the service restarting, a slow-consumer close, the
//! network) is reopened with back-off and resumed after the last seq
//! printed, so nothing is missed and nothing printed twice.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

use super::client::{Client, Remote};
use super::output::emit;
use super::ws::{close, connect, next_object, unauthorized};
use super::CliError;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// `event-pipeline tail`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service.
    #[command(flatten)]
    pub remote: Remote,
    /// Only these types (repeat, or separate with commas).
    #[arg(long = "type", value_name = "EVENT_TYPE", value_delimiter = ',')]
    pub event_types: Vec<String>,
    /// Only this session.
    #[arg(long = "session", value_name = "SESSION_ID")]
    pub session_id: Option<String>,
    /// Only this user.
    #[arg(long = "user", value_name = "USER_ID")]
    pub user_id: Option<String>,
    /// Start after this seq: first the stored events after it, then live.
    /// Without it, tail starts at the newest stored event.
    #[arg(long, value_name = "N")]
    pub since_seq: Option<u64>,
    /// A short line per event for people instead of its JSON.
    #[arg(long)]
    pub pretty: bool,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Where the tail is: the last seq printed, how many so far, and whether
/// the next subscription is a reconnection.
struct Position {
    after: Option<u64>,
    printed: u64,
    reconnecting: bool,
}

/// How one subscription ended.
enum Ended {
    /// Enough events, or stdout closed: stop.
    Done,
    /// The connection ended or could not be made: try again.
    Again(String),
}

/// Tails until `--count` events were printed, stdout closes, or the
/// service refuses for good (a bad key or filter).
pub(crate) async fn run(args: Args) -> Result<(), CliError> {
    let client = Client::new(&args.remote)?;
    // The first contact decides: a service that cannot be reached, or a
    // type it does not know, ends the tail at once (exit 2) instead of a
    // wait that never prints; reconnecting is for a connection that worked.
    check_types(&client, &args.event_types).await?;
    let after = match args.since_seq {
        Some(n) => Some(n),
        None => newest_seq(&client).await,
    };
    match after {
        Some(n) => eprintln!("tail: following the events after seq {n}"),
        None => eprintln!("tail: following the events from now"),
    }
    let mut position = Position {
        after,
        printed: 0,
        reconnecting: false,
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        match subscribe(&client, &args, &mut position, &mut backoff).await? {
            Ended::Done => return Ok(()),
            Ended::Again(why) => {
                eprintln!("tail: {why}; reconnecting in {backoff:?}");
                position.reconnecting = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Reaches the service (`/event-types`, open to anyone) and checks that it
/// knows every `--type` given.
///
/// # Errors
/// `Connection` when it cannot be reached; `Usage` naming the unknown
/// types and the known ones.
async fn check_types(client: &Client, asked: &[String]) -> Result<(), CliError> {
    let known = match client.get("/api/v1/event-types").await {
        Ok(Value::Object(known)) => known,
        Ok(_) => return Ok(()),
        Err(e @ CliError::Connection(_)) => return Err(e),
        // A proxy or an older service that refuses the call: the
        // subscription will tell.
        Err(_) => return Ok(()),
    };
    let unknown: Vec<&str> = asked
        .iter()
        .map(String::as_str)
        .filter(|t| !known.contains_key(*t))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = known.keys().map(String::as_str).collect();
    Err(CliError::Usage(format!(
        "--type {}: not an event type of this service (it knows: {})",
        unknown.join(", "),
        names.join(", ")
    )))
}

/// The seq of the newest stored event (0 when there is none), so a tail
/// that reconnects before its first event still misses nothing; `None`
/// when it cannot be read (the tail then starts with what comes live).
async fn newest_seq(client: &Client) -> Option<u64> {
    match client.get("/api/v1/events?limit=1").await {
        Ok(Value::Array(events)) => {
            Some(events.first().and_then(|e| e["seq"].as_u64()).unwrap_or(0))
        }
        Ok(_) => None,
        Err(e) => {
            eprintln!("tail: cannot read the newest seq ({e}); starting with live events");
            None
        }
    }
}

/// The filter message: the flags, and where to resume.
fn filter(args: &Args, after: Option<u64>) -> Value {
    let mut filter = Map::new();
    if !args.event_types.is_empty() {
        filter.insert("event_types".into(), json!(args.event_types));
    }
    if let Some(s) = &args.session_id {
        filter.insert("session_id".into(), json!(s));
    }
    if let Some(u) = &args.user_id {
        filter.insert("user_id".into(), json!(u));
    }
    if let Some(n) = after {
        filter.insert("since_seq".into(), json!(n));
    }
    Value::Object(filter)
}

/// One subscription: connect, send the filter, print events until it ends.
async fn subscribe(
    client: &Client,
    args: &Args,
    position: &mut Position,
    backoff: &mut Duration,
) -> Result<Ended, CliError> {
    let mut ws = match connect(client, "/ws/subscribe").await {
        Ok(ws) => ws,
        Err(CliError::Refused { status, detail }) if status != 503 && status != 429 => {
            return Err(CliError::Refused { status, detail })
        }
        Err(e) => return Ok(Ended::Again(e.to_string())),
    };
    let message = filter(args, position.after).to_string();
    if let Err(e) = ws.send(Message::text(message)).await {
        return Ok(Ended::Again(e.to_string()));
    }
    match next_object(&mut ws).await {
        Ok((ack, _)) if ack["status"] == "subscribed" => {
            *backoff = FIRST_BACKOFF;
            if std::mem::take(&mut position.reconnecting) {
                match position.after {
                    Some(n) => eprintln!("tail: reconnected, resuming after seq {n}"),
                    None => eprintln!("tail: reconnected (events stored while away are not known)"),
                }
            }
        }
        Ok((refusal, _)) => {
            let why = refusal["message"].as_str().unwrap_or("refused").to_owned();
            if why.contains("capacity") {
                return Ok(Ended::Again(why));
            }
            return Err(CliError::Usage(format!(
                "the service refused the filter: {why}"
            )));
        }
        Err(end) if end.is_unauthorized() => return Err(unauthorized()),
        Err(end) => return Ok(Ended::Again(end.describe())),
    }
    loop {
        let (event, text) = match next_object(&mut ws).await {
            Ok(received) => received,
            Err(end) if end.is_unauthorized() => return Err(unauthorized()),
            Err(end) => return Ok(Ended::Again(end.describe())),
        };
        let Some(seq) = event["seq"].as_u64() else {
            continue; // keepalive, pong
        };
        if position.after.is_some_and(|after| seq <= after) {
            continue; // never twice
        }
        // As sent: the payload's keys keep their order.
        let line = if args.pretty {
            pretty(&event, &text)
        } else {
            text
        };
        if emit(&line).is_err() {
            return Ok(Ended::Done);
        }
        position.after = Some(seq);
        position.printed += 1;
        if args.count.is_some_and(|n| position.printed >= n) {
            close(&mut ws).await;
            return Ok(Ended::Done);
        }
    }
}

/// `2026-11-20T09:00:01.500000Z #2 timer_tick timer-service session=s1 user=u1 {"remaining_seconds":1799}`,
/// the payload as `sent` (the event's text) has it, keys in their order.
fn pretty(event: &Value, sent: &str) -> String {
    let text = |key: &str| event[key].as_str().unwrap_or("-").to_owned();
    let mut line = format!(
        "{} #{} {} {}",
        text("timestamp"),
        event["seq"],
        text("event_type"),
        text("source")
    );
    for (key, label) in [("session_id", "session"), ("user_id", "user")] {
        if let Some(v) = event[key].as_str() {
            line.push_str(&format!(" {label}={v}"));
        }
    }
    line.push(' ');
    #[derive(serde::Deserialize)]
    struct Sent<'a> {
        #[serde(borrow)]
        payload: &'a serde_json::value::RawValue,
    }
    match serde_json::from_str::<Sent<'_>>(sent) {
        Ok(sent) => line.push_str(sent.payload.get()),
        Err(_) => line.push_str(&event["payload"].to_string()),
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pretty_line_has_the_time_seq_type_source_ids_and_payload() {
        let text = r#"{"id":"evt_1","event_type":"timer_tick","source":"timer-service","session_id":"s1","user_id":null,"payload":{"remaining_seconds":1799,"elapsed_seconds":1},"timestamp":"2026-11-20T09:00:01.500000Z","seq":2}"#;
        let event: Value = serde_json::from_str(text).expect("JSON");
        assert_eq!(
            pretty(&event, text),
            r#"2026-11-20T09:00:01.500000Z #2 timer_tick timer-service session=s1 {"remaining_seconds":1799,"elapsed_seconds":1}"#,
            "the payload's keys in the order sent"
        );
    }
}
