//! What the client subcommands write to stdout: lines that stop quietly
//! when the reader goes away (`tail | head`).

use std::io::Write;

/// Writes `line` and a newline to stdout, flushed; an error (a closed
/// pipe) says the reader is gone.
pub(crate) fn emit(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
