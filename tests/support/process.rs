//! The service binary as a child process, for tests that signal or kill it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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
            .env("RATE_LIMIT_ADMIN", "1000000/second");
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.stderr(Stdio::piped()).spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the server exited before listening"))
                .expect("log line");
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if entry["message"] == "event-pipeline listening" {
                break entry["addr"].as_str().expect("addr").to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            base: format!("http://{addr}"),
            addr,
        }
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.expect("kill runs").success());
    }
}

impl Drop for Process {
    /// A test that fails half-way leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
