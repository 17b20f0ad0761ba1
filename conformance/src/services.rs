//! Finding the services the adapters' tests run against (PostgreSQL, NATS,
//! Redis): their address from an environment variable with this machine
//! kind's default, and what to do when one cannot be reached: say so loudly
//! and skip, or, with `CI=true`, fail.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};

/// The URL in `var`, or `default`.
pub fn service_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// A test could not reach `service` at `url`: with `CI=true` this panics
/// (CI must run every test); elsewhere it prints why and how to point the
/// test elsewhere, and the caller skips the test.
///
/// # Panics
/// When `CI` is `true`.
pub fn unreachable(service: &str, url: &str, var: &str, error: impl Display) {
    let message = format!(
        "cannot reach {service} at {url} ({error}). Start it, or set {var} to where it runs."
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{message} (CI=true: failing instead of skipping)"
    );
    eprintln!("SKIPPED: {message}");
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
