//! A real xAPI Learning Record Store for the connector's tests: Ralph
//! (`ralph-malph` from PyPI, installed by `scripts/ralph.sh` into a
//! virtualenv under `~/.cache`), started by the test on a free port with a
//! folder of its own, stopped when dropped. Without Ralph installed, say so
//! loudly and skip, or, with `CI=true`, fail.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The Ralph release `scripts/ralph.sh` installs.
pub const RALPH_VERSION: &str = "5.1.0";
/// The test user's name and password at the LRS.
pub const USERNAME: &str = "ep-connector";
/// The test user's password (its bcrypt hash is in the auth file written).
pub const PASSWORD: &str = "secret-pw";
/// bcrypt of [`PASSWORD`], as `ralph auth` writes it (computed once: the
/// hashing takes a second).
const PASSWORD_HASH: &str = "$2b$12$KkBEYbjuTILpNG.yzerL1.t9.rjqheoOia5N30U5rb52G0bfs7CfS";

/// A running Ralph LRS.
pub struct Lrs {
    /// The LRS endpoint (`http://127.0.0.1:PORT/xAPI/`): statements are at
    /// `{endpoint}statements`.
    pub endpoint: String,
    /// Where it listens (to put a [`crate::Link`] in front of it).
    pub addr: std::net::SocketAddr,
    base: String,
    child: Child,
    dir: PathBuf,
    client: reqwest::Client,
}

/// The virtualenv Ralph is installed in (`EP_RALPH_VENV`, else
/// `~/.cache/event-pipeline/ralph-<version>`).
pub fn venv() -> PathBuf {
    std::env::var_os("EP_RALPH_VENV").map_or_else(
        || {
            let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(
                || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
                PathBuf::from,
            );
            cache
                .join("event-pipeline")
                .join(format!("ralph-{RALPH_VERSION}"))
        },
        PathBuf::from,
    )
}

impl Lrs {
    /// Starts Ralph's LRS API, or `None` (said on stderr and counted; with
    /// `CI=true` this panics instead) when Ralph is not installed or does
    /// not start.
    pub async fn start() -> Option<Self> {
        let python = venv().join("bin").join("python");
        if !python.exists() {
            crate::services::skip(&format!(
                "no Ralph LRS at {}: run scripts/ralph.sh to install it",
                python.display()
            ));
            return None;
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/ralph_lrs.py");
        let port = crate::services::free_port();
        let dir = std::env::temp_dir().join(crate::services::unique_name("ep_lrs"));
        let data = dir.join("data");
        if let Err(e) = std::fs::create_dir_all(&data) {
            crate::services::skip(&format!("cannot make {}: {e}", data.display()));
            return None;
        }
        let auth = serde_json::json!([{
            "agent": {"mbox": "mailto:connector@example.org", "objectType": "Agent"},
            "scopes": ["statements/write", "statements/read"],
            "hash": PASSWORD_HASH,
            "username": USERNAME,
        }]);
        let auth_file = dir.join("auth.json");
        if let Err(e) = std::fs::write(&auth_file, auth.to_string()) {
            crate::services::skip(&format!("cannot write {}: {e}", auth_file.display()));
            return None;
        }
        let spawned = Command::new(&python)
            .arg(&script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .current_dir(&dir)
            .env("RALPH_APP_DIR", dir.join("app"))
            .env("RALPH_AUTH_FILE", &auth_file)
            .env("RALPH_RUNSERVER_BACKEND", "fs")
            .env("RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH", &data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                crate::services::skip(&format!("cannot start Ralph ({}): {e}", python.display()));
                return None;
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        let lrs = Self {
            endpoint: format!("{base}/xAPI/"),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            base,
            child,
            dir,
            client: reqwest::Client::new(),
        };
        let mut every = tokio::time::interval(Duration::from_millis(100));
        for _ in 0..300 {
            every.tick().await;
            let beat = lrs
                .client
                .get(format!("{}/__heartbeat__", lrs.base))
                .send()
                .await;
            if beat.is_ok_and(|r| r.status().is_success()) {
                return Some(lrs);
            }
        }
        crate::services::skip("Ralph did not answer /__heartbeat__ within 30 s");
        None
    }

    /// Every statement the LRS holds (following `more` links).
    pub async fn statements(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut next = format!("{}/xAPI/statements?limit=500", self.base);
        loop {
            let page: Value = self
                .client
                .get(&next)
                .basic_auth(USERNAME, Some(PASSWORD))
                .header("X-Experience-API-Version", "1.0.3")
                .send()
                .await
                .expect("the LRS answers")
                .json()
                .await
                .expect("JSON");
            all.extend(page["statements"].as_array().cloned().unwrap_or_default());
            match page["more"].as_str() {
                Some(more) if !more.is_empty() => {
                    next = if more.starts_with('/') {
                        format!("{}{more}", self.base)
                    } else {
                        more.to_owned()
                    };
                }
                _ => return all,
            }
        }
    }
}

impl Drop for Lrs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
