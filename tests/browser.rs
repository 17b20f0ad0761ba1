//! The dashboard and Server-Sent Events in a real browser: Debian's
//! Chromium, driven by `tests/browser/dashboard.mjs` (playwright-core, no
//! browser download), against a server process: the page loads with no
//! console errors, shows events in the tail and the rate chart, a filter
//! narrows the tail, a scoped token sees only its sessions, it keeps up
//! with about 1,000 events a second (a screenshot of it is written to
//! `target/dashboard.png`), and an `EventSource` resumes gap-free after the
//! server restarts. `scripts/browser.sh` installs Chromium and
//! playwright-core; without them the test is skipped (with `CI=true`, it
//! fails).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use support::process::Process;

const SECRET: &str = "a-test-secret-of-at-least-32-bytes-0123";
const KEY: &str = "k-browser-publisher-reader";

fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why} (CI=true: failing instead of skipping)"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

#[test]
fn the_dashboard_and_event_source_work_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let driver = root.join("tests/browser");
    if !Path::new("/usr/bin/chromium").exists()
        || !driver.join("node_modules/playwright-core").exists()
    {
        skip("no Chromium or playwright-core: run scripts/browser.sh");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let vars = vec![
        ("PORT", port.to_string()),
        (
            "DATABASE_PATH",
            dir.path().join("e.db").display().to_string(),
        ),
        ("REQUIRE_AUTH", "true".to_owned()),
        ("API_KEY", KEY.to_owned()),
        ("JWT_HS256_SECRET", SECRET.to_owned()),
        ("LOG_FORMAT", "text".to_owned()),
    ];
    let node = Process::start_with(&vars);
    let exp = chrono::Utc::now().timestamp() + 3600;
    let team = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "teacher-7", "exp": exp, "roles": ["read"], "session_ids": ["s1"]}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign");
    let screenshot = root.join("target/dashboard.png");
    let mut browser = Command::new("node")
        .arg(driver.join("dashboard.mjs"))
        .args([node.base.as_str(), KEY, team.as_str()])
        .arg(&screenshot)
        .current_dir(&driver)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = browser.stdin.take().expect("stdin");
    let stdout = BufReader::new(browser.stdout.take().expect("stdout"));
    let mut node = Some(node);
    let mut ok = false;
    for line in stdout.lines() {
        let line = line.expect("a line");
        match line.as_str() {
            "RESTART" => {
                let status = node.take().expect("running").stop();
                assert!(status.success(), "a clean stop: {status}");
                node = Some(Process::start_with(&vars));
                writeln!(stdin, "go").expect("tell the driver");
            }
            "OK" => ok = true,
            other => eprintln!("driver: {other}"),
        }
    }
    let status = browser.wait().expect("node exits");
    assert!(
        status.success() && ok,
        "the browser checks failed (see stderr): {status}"
    );
    assert!(
        screenshot.exists(),
        "a screenshot at {}",
        screenshot.display()
    );
}
