//! Progress of a long copy on a terminal (indicatif); nothing when stderr
//! is not one, so logs and scripts get only the final count.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` units named `unit` (`bytes` are shown as sizes), or a
/// hidden one when stderr is not a terminal.
pub(crate) fn bar(total: u64, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = if unit == "bytes" {
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} ({eta}) {msg}".to_owned()
    } else {
        format!("{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {unit} ({{eta}}) {{msg}}")
    };
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(total).with_style(style)
}
