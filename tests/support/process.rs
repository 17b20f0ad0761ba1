//! The service binary as a child process, for tests that signal or kill it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The `event-pipeline` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_event-pipeline");

/// The binary, started on a free port; its address is read from its log.
pub struct Process {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Every line the server wrote to stderr.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the service on `db` with rate limits raised.
    pub fn start(db: &Path) -> Self {
        Self::start_with(&[("DATABASE_PATH", db.to_string_lossy().into_owned())])
    }

    /// Starts the service with these variables (and rate limits raised, a
    /// free port, JSON logs).
    pub fn start_with(vars: &[(&str, String)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "INFO")
            .env("RATE_LIMIT_PUBLISH", "1000000/second")
            .env("RATE_LIMIT_QUERY", "1000000/second")
            .env("RATE_LIMIT_ADMIN", "1000000/second")
            .env("RATE_LIMIT_WS_PUBLISH", "1000000/second");
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.stderr(Stdio::piped()).spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut before = Vec::new();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the server exited before listening: {before:?}"))
                .expect("log line");
            before.push(line.clone());
            if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                if entry["message"] == "event-pipeline listening" {
                    break entry["addr"].as_str().expect("addr").to_owned();
                }
            } else if let Some(rest) = line.split("event-pipeline listening").nth(1) {
                // LOG_FORMAT=text: `... event-pipeline listening addr=IP:PORT version=...`
                let addr = rest
                    .split_whitespace()
                    .find_map(|field| field.strip_prefix("addr="))
                    .expect("addr in the listening line");
                break addr.to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let logs = Arc::new(Mutex::new(before));
        let kept = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().expect("lock").push(line);
            }
        });
        Self {
            child,
            logs,
            base: format!("http://{addr}"),
            addr,
        }
    }

    /// The log lines so far that contain `text`.
    pub fn log_lines(&self, text: &str) -> Vec<String> {
        self.logs
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.contains(text))
            .cloned()
            .collect()
    }

    /// Waits (at most 10 s) until `count` log lines contain `text`.
    pub async fn wait_for_log(&self, text: &str, count: usize) -> Vec<String> {
        let mut every = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..500 {
            let found = self.log_lines(text);
            if found.len() >= count {
                return found;
            }
            every.tick().await;
        }
        panic!(
            "fewer than {count} log lines with {text:?}: {:?}",
            self.log_lines("")
        );
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.expect("kill runs").success());
    }

    /// Stops it as an operator would (SIGTERM) and waits for it to exit.
    #[allow(dead_code)]
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.wait().expect("exits")
    }
}

impl Drop for Process {
    /// A test that fails half-way leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
