//! The data-size scenario: `fill` writes a term's worth of events straight
//! into a store (the realistic mix: 90% `timer_tick`, the other 14 types
//! spread over sessions and students, timestamps over 120 days), then `big`
//! measures a service running on it: stats, the contract's queries, and a
//! large delete with the publish latency of a REST load during it.

use std::time::{Duration, Instant};

use ep_ports::{EventId, EventStore, EventType, NewEvent, Payload, Timestamp};
use ep_store_postgres::{PostgresOptions, PostgresStore};
use ep_store_sqlite::{Durability, SqliteStore};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::report::{now_us, print, tick, Latency};

/// The span the filled events' timestamps cover, ending an hour ago.
const TERM: Duration = Duration::from_secs(120 * 24 * 3_600);
/// How long before now the newest filled event is stamped.
const FILL_END_AGO: Duration = Duration::from_secs(3_600);

#[derive(clap::Args)]
pub struct FillArgs {
    /// Events to write.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// The SQLite file the service will open (created if missing).
    #[arg(long, conflicts_with = "database_url")]
    database_path: Option<String>,
    /// The PostgreSQL database the service will open.
    #[arg(long)]
    database_url: Option<String>,
    /// Sessions the events spread over.
    #[arg(long, default_value_t = 50_000)]
    sessions: u64,
    /// Students the events spread over.
    #[arg(long, default_value_t = 20_000)]
    students: u64,
}

#[derive(clap::Args)]
pub struct BigArgs {
    /// The share of the filled events (oldest first) the delete removes.
    #[arg(long, default_value_t = 0.17)]
    delete_fraction: f64,
    /// REST publish connections running during the delete.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Calls of each read measured.
    #[arg(long, default_value_t = 50)]
    calls: usize,
    /// Sent with every request (`X-API-Key: ...`), when the service needs one.
    #[arg(long)]
    header: Option<String>,
}

/// The 14 types other than `timer_tick`, with payloads shaped like the examples'.
const OTHERS: [(EventType, &str); 14] = [
    (
        EventType::SESSION_CREATED,
        r#"{"quiz_id":"algebra-unit-3"}"#,
    ),
    (
        EventType::QUIZ_STARTED,
        r#"{"quiz_id":"algebra-unit-3","total_questions":12,"time_limit_seconds":1800}"#,
    ),
    (
        EventType::TIMER_STARTED,
        r#"{"remaining_seconds":1800,"duration_seconds":1800}"#,
    ),
    (
        EventType::QUESTION_VIEWED,
        r#"{"question_id":"q-07","question_index":6}"#,
    ),
    (
        EventType::ANSWER_SUBMITTED,
        r#"{"question_id":"q-07","answer":"B","correct":true,"elapsed_ms":5321}"#,
    ),
    (
        EventType::ANSWER_CHANGED,
        r#"{"question_id":"q-07","from":"A","to":"B"}"#,
    ),
    (EventType::QUESTION_SKIPPED, r#"{"question_id":"q-08"}"#),
    (EventType::TIMER_WARNING, r#"{"remaining_seconds":300}"#),
    (
        EventType::MASTERY_UPDATED,
        r#"{"skill":"linear-equations","mastery":0.72,"delta":0.04}"#,
    ),
    (
        EventType::LEARNING_GAP_DETECTED,
        r#"{"skill":"fractions","confidence":0.81}"#,
    ),
    (
        EventType::QUIZ_COMPLETED,
        r#"{"score":10,"total_questions":12,"duration_seconds":1422}"#,
    ),
    (
        EventType::QUIZ_TIMEOUT,
        r#"{"answered":9,"total_questions":12}"#,
    ),
    (EventType::SESSION_ENDED, r#"{"reason":"completed"}"#),
    (
        EventType::ERROR_OCCURRED,
        r#"{"code":"E_SYNC","message":"answer sync retried"}"#,
    ),
];

/// Event `i` of `n`: its type, session, student and time in the term.
fn filled(
    i: u64,
    n: u64,
    args: &FillArgs,
    start: i64,
    tick: &Payload,
    others: &[Payload],
) -> NewEvent {
    // A cheap hash spreads sessions, students and the 10% of other types.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let session = (h >> 20) % args.sessions;
    let (event_type, payload) = if h.is_multiple_of(10) {
        let k = ((h >> 8) % 14) as usize;
        (OTHERS[k].0, others[k].clone())
    } else {
        (EventType::TIMER_TICK, tick.clone())
    };
    let span = TERM.saturating_sub(FILL_END_AGO).as_micros() as i64;
    NewEvent {
        idempotency: None,
        occurred_at: None,
        id: EventId::new(format!(
            "evt_{:032x}",
            (start as u128) << 40 | u128::from(i)
        )),
        event_type,
        source: if event_type == EventType::TIMER_TICK {
            "timer-service"
        } else {
            "quiz-engine"
        }
        .into(),
        session_id: Some(format!("sess-{session:05}")),
        user_id: Some(format!("stu-{:05}", session % args.students)),
        payload,
        timestamp: Timestamp::from_micros(
            start + (i128::from(span) * i128::from(i) / i128::from(n.max(1))) as i64,
        ),
    }
}

pub async fn fill(args: FillArgs) -> Result<(), String> {
    let store: Box<dyn EventStore> = match (&args.database_path, &args.database_url) {
        (Some(path), None) => Box::new(
            SqliteStore::open(path, Durability::Normal)
                .await
                .map_err(|e| e.to_string())?,
        ),
        (None, Some(url)) => Box::new(
            PostgresStore::open(url, PostgresOptions::default())
                .await
                .map_err(|e| e.to_string())?,
        ),
        _ => return Err("give --database-path or --database-url".into()),
    };
    let start = Timestamp::now().as_micros() - TERM.as_micros() as i64;
    let tick = Payload::from_json(r#"{"remaining_seconds":1312,"elapsed_seconds":488}"#.into())
        .map_err(|e| e.to_string())?;
    let others: Vec<Payload> = OTHERS
        .iter()
        .map(|(_, p)| Payload::from_json((*p).to_owned()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut i = 0;
    while i < args.events {
        let size = 10_000.min(args.events - i);
        let batch = (i..i + size)
            .map(|k| filled(k, args.events, &args, start, &tick, &others))
            .collect();
        store.append(batch).await.map_err(|e| e.to_string())?;
        i += size;
        if i.is_multiple_of(500_000) {
            eprintln!("fill: {i} of {} events", args.events);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // As the service does when it stops: the file alone then holds every
    // event, and the service's start measured next copies no WAL.
    store.close().await.map_err(|e| e.to_string())?;
    print(
        &format!("fill: {} events over 120 days", args.events),
        &[("events/s", format!("{:.0}", args.events as f64 / secs))],
        json!({"scenario": "fill", "events": args.events, "events_per_s": (args.events as f64 / secs).round()}),
    );
    Ok(())
}

/// A minimal HTTP/1.1 client on one keep-alive connection.
struct Client {
    addr: String,
    stream: TcpStream,
    header: String,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(base: &str, header: Option<&str>) -> Result<Self, String> {
        let addr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self {
            addr,
            stream,
            header: header.map(|h| format!("{h}\r\n")).unwrap_or_default(),
            buf: Vec::with_capacity(1 << 16),
        })
    }

    /// Sends one request; returns the status and the body.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String), String> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\n\r\n{body}",
            self.addr,
            self.header,
            body.len()
        );
        self.stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let (status, body) = crate::rest::read_response(&mut self.stream, &mut self.buf).await?;
        Ok((
            status,
            String::from_utf8_lossy(&self.buf[body]).into_owned(),
        ))
    }

    /// `calls` GETs of `path`: their latency, and the last body.
    async fn timed_gets(&mut self, path: &str, calls: usize) -> Result<(Latency, String), String> {
        let mut samples = Vec::with_capacity(calls);
        let mut last = String::new();
        for _ in 0..calls {
            let sent = now_us();
            let (status, body) = self.send("GET", path, "").await?;
            samples.push(now_us().saturating_sub(sent));
            if status != 200 {
                return Err(format!("GET {path}: {status} {body}"));
            }
            last = body;
        }
        Ok((Latency::of(samples), last))
    }
}

/// Closed-loop REST publishers until `stop` is set: (created, latencies).
async fn publishers(
    base: &str,
    header: Option<&str>,
    connections: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(u64, Vec<u64>), String> {
    let tasks: Vec<_> = (0..connections)
        .map(|n| {
            let (base, header, stop) = (base.to_owned(), header.map(str::to_owned), stop.clone());
            tokio::spawn(async move {
                let mut client = Client::connect(&base, header.as_deref()).await?;
                let (mut created, mut samples, mut i) = (0_u64, Vec::new(), 0_u64);
                while !*stop.borrow() {
                    let body = tick(&format!("sess-live-{n}"), "stu-live", i);
                    let sent = now_us();
                    let (status, answer) = client.send("POST", "/api/v1/events", &body).await?;
                    samples.push(now_us().saturating_sub(sent));
                    if status != 201 {
                        return Err(format!("publish: {status} {answer}"));
                    }
                    created += 1;
                    i += 1;
                }
                Ok::<_, String>((created, samples))
            })
        })
        .collect();
    let (mut created, mut samples) = (0, Vec::new());
    for t in tasks {
        let (c, s) = t.await.map_err(|e| e.to_string())??;
        created += c;
        samples.extend(s);
    }
    Ok((created, samples))
}

/// Publishers running in the background until stopped.
struct Load {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(u64, Vec<u64>), String>>,
}

impl Load {
    fn start(base: &str, header: Option<&str>, connections: usize) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (base, header) = (base.to_owned(), header.map(str::to_owned));
        let task = tokio::spawn(async move {
            publishers(&base, header.as_deref(), connections, stopped).await
        });
        Self { stop, task }
    }

    /// Stops the publishers: how many events they stored, and each
    /// publish's latency in microseconds.
    async fn stop(self) -> Result<(u64, Vec<u64>), String> {
        self.stop.send(true).map_err(|e| e.to_string())?;
        self.task.await.map_err(|e| e.to_string())?
    }
}

fn total_of(stats: &str) -> Result<u64, String> {
    serde_json::from_str::<Value>(stats)
        .ok()
        .and_then(|v| v["total_events"].as_u64())
        .ok_or_else(|| format!("no total_events in {stats}"))
}

fn ms(l: &Latency) -> String {
    format!("{:.2} / {:.2} / {:.2} ms", l.p50_ms, l.p99_ms, l.max_ms)
}

pub async fn run(base: &str, args: BigArgs) -> Result<(), String> {
    let header = args.header.as_deref();
    let mut client = Client::connect(base, header).await?;
    let mut rows: Vec<(&str, String)> = Vec::new();
    let mut summary = json!({"scenario": "big"});

    let (stats, body) = client.timed_gets("/api/v1/stats", args.calls).await?;
    let before = total_of(&body)?;
    rows.push(("stored events", before.to_string()));
    rows.push(("GET /stats p50 / p99 / max", ms(&stats)));
    summary["events"] = json!(before);
    summary["stats"] = stats.json();

    let day_ago = Timestamp::from_micros(Timestamp::now().as_micros() - 86_400_000_000);
    let queries = [
        ("session", "/api/v1/events?session_id=sess-01234".to_owned()),
        ("user", "/api/v1/events?user_id=stu-01234".to_owned()),
        (
            "type",
            "/api/v1/events?event_type=quiz_completed".to_owned(),
        ),
        ("since", format!("/api/v1/events?since={day_ago}")),
        // A dashboard's poll: the filled events end an hour ago, so none is
        // newer (the walk that finds that out must not pass them all).
        (
            "poll",
            format!(
                "/api/v1/events?event_type=answer_submitted&since={}",
                Timestamp::now()
            ),
        ),
        ("newest", "/api/v1/events".to_owned()),
    ];
    let mut query_json = json!({});
    for (name, path) in &queries {
        let (latency, _) = client.timed_gets(path, args.calls).await?;
        query_json[name] = latency.json();
        rows.push((
            match *name {
                "session" => "GET /events?session_id p50 / p99 / max",
                "user" => "GET /events?user_id p50 / p99 / max",
                "type" => "GET /events?event_type p50 / p99 / max",
                "since" => "GET /events?since p50 / p99 / max",
                "poll" => "GET /events?event_type&since=now p50 / p99 / max",
                _ => "GET /events (newest 100) p50 / p99 / max",
            },
            ms(&latency),
        ));
    }
    summary["queries"] = query_json;

    // The same load without a delete, then with one.
    let load = Load::start(base, header, args.connections);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (quiet_created, quiet) = load.stop().await?;
    let quiet = Latency::of(quiet);
    rows.push(("publish without a delete p50 / p99 / max", ms(&quiet)));
    summary["publish_without_delete"] = quiet.json();

    let start = Timestamp::now().as_micros() - TERM.as_micros() as i64;
    let span = TERM.saturating_sub(FILL_END_AGO).as_micros() as f64;
    let cut = Timestamp::from_micros(start + (span * args.delete_fraction) as i64);
    let load = Load::start(base, header, args.connections);
    // Publishers running before the delete starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = Instant::now();
    let (status, answer) = client
        .send("DELETE", &format!("/api/v1/events?before={cut}"), "")
        .await?;
    let took = began.elapsed();
    let (created, during) = load.stop().await?;
    if status != 200 {
        return Err(format!("delete: {status} {answer}"));
    }
    let deleted = serde_json::from_str::<Value>(&answer)
        .ok()
        .and_then(|v| v["deleted"].as_u64())
        .ok_or_else(|| format!("no deleted in {answer}"))?;
    let during = Latency::of(during);
    rows.push((
        "deleted",
        format!("{deleted} in {:.1} s", took.as_secs_f64()),
    ));
    rows.push(("publish during the delete p50 / p99 / max", ms(&during)));
    rows.push((
        "publishes/s without / during the delete",
        format!(
            "{:.0} / {:.0}",
            quiet_created as f64 / 3.0,
            created as f64 / (took.as_secs_f64() + 0.5)
        ),
    ));
    summary["deleted"] = json!(deleted);
    summary["delete_s"] = json!((took.as_secs_f64() * 10.0).round() / 10.0);
    summary["publish_during_delete"] = during.json();

    let (stats_after, body) = client.timed_gets("/api/v1/stats", args.calls).await?;
    let after = total_of(&body)?;
    let expected = before + quiet_created + created - deleted;
    rows.push(("GET /stats after p50 / p99 / max", ms(&stats_after)));
    rows.push((
        "stats total after (expected)",
        format!("{after} ({expected})"),
    ));
    summary["stats_consistent"] = json!(after == expected);
    print(
        &format!(
            "big: {before} stored events, a delete of the oldest {:.1}% under {} publishing connections",
            args.delete_fraction * 100.0,
            args.connections
        ),
        &rows,
        summary,
    );
    if after != expected {
        return Err(format!("stats say {after} events, expected {expected}"));
    }
    Ok(())
}
