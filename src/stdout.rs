//! What the command line writes to standard output and standard error.
//!
//! `println!` panics when stdout cannot take a line (a full disk behind a
//! redirect, a closed pipe as in `fhirgate ledger export | head`), and
//! a `BufWriter` dropped without a flush loses its last bytes without a
//! word. The commands write through these functions instead: a failed write
//! is an error the command returns, and a closed pipe is [`ClosedPipe`],
//! which `main` turns into a quiet exit with status 141 (128 + SIGPIPE, what
//! a shell reports for a tool the signal stopped), so `set -o pipefail`
//! scripts see what they see for other tools.

use std::{fmt::Display, io::Write};

/// Standard output was closed by its reader; the command stops quietly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedPipe;

impl Display for ClosedPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for ClosedPipe {}

/// The exit status of a command whose standard output was closed.
pub const CLOSED_PIPE_STATUS: u8 = 141;

/// Writes `text` and a newline to stdout, flushed.
pub fn line(text: impl Display) -> anyhow::Result<()> {
    self::text(&format!("{text}\n"))
}

/// Writes `text` to stdout as it is, flushed.
pub fn text(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(failed)
}

/// Writes `value` as pretty-printed JSON and a newline to stdout.
pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    line(serde_json::to_string_pretty(value)?)
}

/// Writes `text` and a newline to stderr; a failure is ignored (a note to
/// the operator must not fail a command whose work is done).
pub fn note(text: impl Display) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The command's error for a failed write to stdout: [`ClosedPipe`] when the
/// reader is gone, a readable error otherwise.
pub fn failed(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(ClosedPipe)
    } else {
        anyhow::anyhow!("cannot write to standard output: {e}")
    }
}

/// Whether `e` is (or was caused by) a closed standard output.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<ClosedPipe>()
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_told_apart_from_other_failures() {
        let closed = failed(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_closed_pipe(&closed));
        let full = failed(std::io::Error::from_raw_os_error(28));
        assert!(!is_closed_pipe(&full));
        assert!(
            full.to_string()
                .starts_with("cannot write to standard output"),
            "{full}"
        );
        let wrapped = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("exporting");
        assert!(is_closed_pipe(&wrapped));
    }
}
