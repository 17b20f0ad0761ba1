//! Latency summaries and the output format (a table, then one JSON line).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Microseconds since the Unix epoch (the same clock in every process).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Percentiles of latencies in microseconds.
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i] as f64 / 1_000.0
        };
        Self {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: samples.last().map_or(0.0, |m| *m as f64 / 1_000.0),
        }
    }

    pub fn json(&self) -> Value {
        json!({"p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "p999_ms": self.p999_ms, "max_ms": self.max_ms})
    }
}

/// Prints `rows` as a two-column table, then `summary` as one JSON line.
pub fn print(title: &str, rows: &[(&str, String)], summary: Value) {
    println!("{title}");
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
    println!("{summary}");
}

/// Finds `"key":<integer>` in a JSON text without parsing all of it.
pub fn find_u64(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: &str = &text[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A realistic `timer_tick` publish body for `session` carrying its send time.
pub fn tick(session: &str, user: &str, n: u64) -> String {
    format!(
        r#"{{"event_type":"timer_tick","source":"timer-service","session_id":"{session}","user_id":"{user}","payload":{{"remaining_seconds":{},"elapsed_seconds":{},"sent_us":{}}}}}"#,
        1800u64.saturating_sub(n % 1800),
        n % 1800,
        now_us()
    )
}
