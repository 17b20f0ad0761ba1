//! Nothing acknowledged is lost: the service is killed (SIGKILL) or stopped
//! (SIGTERM) while REST and WebSocket publishers are running, and every event
//! that got a 201 or an `ok` must be in the database afterwards. During a
//! graceful stop every request gets an answer: 201, or a clear 503.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use support::process::Process;
use support::{assert_all_stored, example};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// A guard against a hang; never what a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

/// What publishers saw.
#[derive(Default)]
struct Tally {
    acknowledged: Vec<String>,
    refused: usize,
    dropped: usize,
}

/// One HTTP response: status, `Connection: close`, body.
async fn read_response(stream: &mut TcpStream) -> std::io::Result<Option<(u16, bool, Value)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body =
                serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or(Value::Null);
            return Ok(Some((status, head.contains("connection: close"), body)));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Publishes over keep-alive connections until the service is gone.
async fn rest_publisher(addr: String, tally: Arc<Mutex<Tally>>, progress: watch::Sender<usize>) {
    let body = example("timer_tick").to_string();
    let request = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    'connections: loop {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            return;
        };
        loop {
            if stream.write_all(request.as_bytes()).await.is_err() {
                tally.lock().expect("lock").dropped += 1;
                continue 'connections;
            }
            let response = tokio::time::timeout(PATIENCE, read_response(&mut stream))
                .await
                .expect("no request hangs");
            let mut t = tally.lock().expect("lock");
            match response {
                Ok(Some((201, close, event))) => {
                    t.acknowledged
                        .push(event["id"].as_str().expect("id").to_owned());
                    progress.send_modify(|n| *n += 1);
                    if close {
                        continue 'connections;
                    }
                }
                Ok(Some((503, close, answer))) => {
                    assert!(answer["detail"].is_string(), "a 503 says why: {answer}");
                    assert!(close, "a 503 while stopping closes the connection");
                    t.refused += 1;
                    continue 'connections;
                }
                Ok(Some((status, _, answer))) => panic!("unexpected {status}: {answer}"),
                // Closed or reset before an answer: the request was not taken.
                Ok(None) | Err(_) => {
                    t.dropped += 1;
                    continue 'connections;
                }
            }
        }
    }
}

/// Publishes over one WebSocket, 64 events in flight, until it closes.
async fn ws_publisher(base: String, tally: Arc<Mutex<Tally>>, progress: watch::Sender<usize>) {
    let url = format!("{}/ws/publish", base.replace("http://", "ws://"));
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(url, None, true).await
    else {
        return;
    };
    let body = example("answer_submitted").to_string();
    loop {
        for _ in 0..64 {
            if ws.feed(Message::text(body.clone())).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
        let mut replies = 0;
        while replies < 64 {
            match tokio::time::timeout(PATIENCE, ws.next())
                .await
                .expect("no reply hangs")
            {
                Some(Ok(Message::Text(text))) => {
                    replies += 1;
                    let reply: Value = serde_json::from_str(&text).expect("JSON reply");
                    let mut t = tally.lock().expect("lock");
                    if reply["status"] == "ok" {
                        t.acknowledged
                            .push(reply["event_id"].as_str().expect("event_id").to_owned());
                        progress.send_modify(|n| *n += 1);
                    } else {
                        t.refused += 1;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Starts 4 REST and 1 WebSocket publishers against `process`.
fn start_publishers(
    process: &Process,
    tally: &Arc<Mutex<Tally>>,
) -> (Vec<tokio::task::JoinHandle<()>>, watch::Receiver<usize>) {
    let (progress, watched) = watch::channel(0usize);
    let mut tasks: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(rest_publisher(
                process.addr.clone(),
                Arc::clone(tally),
                progress.clone(),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(ws_publisher(
        process.base.clone(),
        Arc::clone(tally),
        progress,
    )));
    (tasks, watched)
}

/// Waits for the child to exit; its exit status.
async fn exit_of(mut process: Process) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || process.child.wait())
        .await
        .expect("join")
        .expect("wait")
}

/// Starts the service on `db` with publishers running, and returns once
/// 3,000 events were acknowledged.
async fn loaded(
    db: &std::path::Path,
) -> (Process, Arc<Mutex<Tally>>, Vec<tokio::task::JoinHandle<()>>) {
    let process = Process::start(db);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let (tasks, mut progress) = start_publishers(&process, &tally);
    progress
        .wait_for(|n| *n >= 3_000)
        .await
        .expect("publishers running");
    (process, tally, tasks)
}

async fn all_stop(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        tokio::time::timeout(PATIENCE, t)
            .await
            .expect("publishers stop")
            .expect("publisher");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("events.db");
    let (process, tally, tasks) = loaded(&db).await;
    process.signal("KILL");
    assert!(!exit_of(process).await.success());
    all_stop(tasks).await;
    let acknowledged = std::mem::take(&mut tally.lock().expect("lock").acknowledged);
    assert!(acknowledged.len() >= 3_000);
    assert_all_stored(&db, &acknowledged).await;
    // And the service starts again on that database.
    let again = Process::start(&db);
    again.signal("TERM");
    assert_eq!(exit_of(again).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_zero_with_everything_acknowledged_stored_and_the_rest_refused_clearly(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("events.db");
    let (process, tally, tasks) = loaded(&db).await;
    process.signal("TERM");
    let started = std::time::Instant::now();
    assert_eq!(
        exit_of(process).await.code(),
        Some(0),
        "a graceful stop exits 0"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stopped in {:?}",
        started.elapsed()
    );
    all_stop(tasks).await;
    let tally = std::mem::take(&mut *tally.lock().expect("lock"));
    assert_all_stored(&db, &tally.acknowledged).await;
    eprintln!(
        "acknowledged {}, refused with 503 {}, closed before an answer {}",
        tally.acknowledged.len(),
        tally.refused,
        tally.dropped
    );
}
