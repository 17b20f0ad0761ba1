//! Finding the servers the adapters' tests run against (PostgreSQL, NATS,
//! Redis): a container of this test binary's ([`crate::containers`]), or
//! the server an environment variable names; and what to do when there is
//! none: say so loudly and skip, or, with `CI=true`, fail.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub use crate::containers::Service;

/// The URL of `service` for this test, or `None` when there is none (said
/// on stderr and counted; with `CI=true` this panics instead).
pub async fn server(service: Service) -> Option<String> {
    match crate::containers::shared(service).await {
        Ok(url) => Some(url),
        Err(why) => {
            skip(&format!("no {} for this test: {why}", service.name()));
            None
        }
    }
}

/// A server of this test's own, which it may stop, pause or replace (on a
/// port that stays the same), or `None` when there is none (said on
/// stderr and counted; with `CI=true` this panics instead). A server named
/// by the service's variable cannot be given: faults need a container.
pub async fn own(service: Service) -> Option<crate::containers::Server> {
    match crate::containers::Server::start_async(service, Some(free_port())).await {
        Ok(server) => Some(server),
        Err(why) => {
            skip(&format!(
                "no {} container of its own for this test: {why}",
                service.name()
            ));
            None
        }
    }
}

/// A port free on 127.0.0.1 now (the engine publishes a container's port
/// on it; another process could take it first, which the start reports).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// A test could not reach `service` at `url`: with `CI=true` this panics
/// (CI must run every test); elsewhere it says why and how to point the
/// test elsewhere, and the caller skips the test.
///
/// # Panics
/// When `CI` is `true`.
pub fn unreachable(service: Service, url: &str, error: impl Display) {
    skip(&format!(
        "cannot reach {} at {url} ({error}). Set {} to a server that runs, or unset it to use a container.",
        service.name(),
        service.url_var()
    ));
}

/// Tests of this binary skipped for want of a server.
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn skip(message: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{message} (CI=true: failing instead of skipping)"
    );
    if SKIPPED.fetch_add(1, Ordering::Relaxed) == 0 {
        crate::exit::on_exit(summary);
    }
    // Straight to the process's stderr: the test harness captures only
    // `eprintln!`, and a skip must show without `--nocapture`.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
}

fn summary() {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {} test(s) of this binary that need a server (see the SKIPPED lines above)",
        SKIPPED.load(Ordering::Relaxed)
    );
}

/// A name no other test of this process or another uses at the same time:
/// `prefix`, the process id, a counter and the time.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{n}_{nanos:x}", std::process::id())
}
