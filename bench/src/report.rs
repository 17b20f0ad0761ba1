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

/// What one or more timed publish runs got: the answers that were a
/// success, the others, every answer's latency in microseconds, seconds.
#[derive(Default)]
pub struct Totals {
    pub ok: u64,
    pub other: u64,
    pub latencies: Vec<u64>,
    pub secs: f64,
}

impl Totals {
    /// Successes per second over every run.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Adds `run` to these.
    pub fn add(&mut self, run: Totals) {
        self.ok += run.ok;
        self.other += run.other;
        self.latencies.extend(run.latencies);
        self.secs += run.secs;
    }
}

/// The middle of `ratios` (the mean of the middle two for an even count).
pub fn median(mut ratios: Vec<f64>) -> f64 {
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => ratios[n / 2],
        _ => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
    }
}

/// Reports `ratios`, each round's rate over its ceiling's: their median as
/// the `ratio` row and JSON key, and every round's when there were several.
pub fn add_ratio(ratios: &[f64], rows: &mut Vec<(&str, String)>, summary: &mut Value) {
    let round = |r: f64| (r * 100.0).round() / 100.0;
    let ratio = median(ratios.to_vec());
    rows.push(("ratio to ceiling", format!("{ratio:.2}")));
    summary["ratio"] = json!(round(ratio));
    if ratios.len() > 1 {
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        rows.push(("each round's ratio (median above)", each.join(" ")));
        summary["round_ratios"] = json!(ratios.iter().map(|&r| round(r)).collect::<Vec<_>>());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_runs_and_give_the_rate_over_all_of_them() {
        let mut all = Totals::default();
        assert_eq!(all.rate(), 0.0, "no run, no rate");
        for (ok, secs) in [(100, 1.0), (500, 4.0)] {
            all.add(Totals {
                ok,
                other: 1,
                latencies: vec![ok],
                secs,
            });
        }
        assert_eq!((all.ok, all.other, all.latencies.len()), (600, 2, 2));
        assert_eq!(all.rate(), 120.0);
    }

    #[test]
    fn several_rounds_report_their_median_and_each_ratio_one_only_the_ratio() {
        let (mut rows, mut summary) = (Vec::new(), json!({}));
        add_ratio(&[0.314, 0.2, 0.5], &mut rows, &mut summary);
        assert_eq!(
            summary,
            json!({"ratio": 0.31, "round_ratios": [0.31, 0.2, 0.5]})
        );
        assert_eq!(rows[1].1, "0.31 0.20 0.50");

        let (mut rows, mut summary) = (Vec::new(), json!({}));
        add_ratio(&[0.456], &mut rows, &mut summary);
        assert_eq!(summary, json!({"ratio": 0.46}));
        assert_eq!(rows, vec![("ratio to ceiling", "0.46".to_owned())]);
    }

    #[test]
    fn the_median_is_the_middle_ratio_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![0.9, 0.2, 0.4]), 0.4);
        assert_eq!(median(vec![0.5, 0.25, 0.75, 0.0]), 0.375);
        assert_eq!(median(vec![0.7]), 0.7);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
