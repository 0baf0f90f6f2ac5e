//! Where log lines go: the process's stderr, through a writer that cannot
//! fail. A log line that the sink refuses (the log volume is full, the pipe
//! is gone) is dropped and counted (`fhirgate_log_lines_dropped_total` at
//! `/metrics`); it never becomes an error in the code that logged it.
//!
//! Why: tracing-subscriber's fmt subscriber reports a failed write with
//! `eprintln!`, which panics when stderr itself fails, and the panic skips
//! the clearing of its thread-local line buffer. With a full log volume
//! every log call then panicked (the start-up line killed the process; in
//! request tasks the connection was dropped; on the ledger's writer thread
//! the thread died) and every thread's buffer grew by each line it failed
//! to write. A gateway must keep answering, and auditing, when its logs
//! cannot be written: the ledger, not the log, is the record of access.

use std::{
    io::{self, Write},
    sync::atomic::{AtomicU64, Ordering},
};

use tracing_subscriber::fmt::MakeWriter;

/// Lines the sink dropped since start (every [`Lossy`] in the process).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped since start because the sink refused them.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A [`MakeWriter`] whose writers never fail.
#[derive(Debug, Clone, Copy)]
pub struct Lossy<M> {
    make: M,
}

/// Lines to the process's stderr.
pub fn stderr() -> Lossy<fn() -> io::Stderr> {
    Lossy { make: io::stderr }
}

impl<M> Lossy<M> {
    /// Lines to the writers `make` returns.
    pub fn new(make: M) -> Self {
        Self { make }
    }
}

/// One line's writer. tracing-subscriber writes each formatted line with
/// one `write_all`; the first failure marks the line as dropped and the rest
/// of it is discarded.
#[derive(Debug)]
pub struct LossyWriter<W> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for LossyWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.failed {
            match self.inner.write(buf) {
                Ok(0) if !buf.is_empty() => self.fail(),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                Err(_) => self.fail(),
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.failed && self.inner.flush().is_err() {
            self.fail();
        }
        Ok(())
    }
}

impl<W> LossyWriter<W> {
    fn fail(&mut self) {
        self.failed = true;
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

impl<'a, M, W> MakeWriter<'a> for Lossy<M>
where
    M: Fn() -> W + 'a,
    W: Write,
{
    type Writer = LossyWriter<W>;

    fn make_writer(&'a self) -> Self::Writer {
        LossyWriter {
            inner: (self.make)(),
            failed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink like a full disk: every write fails with ENOSPC.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(28))
        }
    }

    #[test]
    fn a_refused_line_is_dropped_counted_once_and_never_an_error() {
        let sink = Lossy::new(|| Full);
        let before = dropped();
        let mut w = sink.make_writer();
        assert!(w.write_all(b"one line\n").is_ok());
        assert!(w.write_all(b"more of it\n").is_ok());
        assert!(w.flush().is_ok());
        let mut w = sink.make_writer();
        assert!(w.write_all(b"another line\n").is_ok());
        // Other tests may drop lines in parallel: at least ours.
        assert!(dropped() >= before + 2);
    }

    #[test]
    fn a_working_sink_gets_every_byte() {
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct To(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for To {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                let mut v = self.0.lock().unwrap();
                // Short writes: write_all must go on.
                let n = b.len().min(3);
                v.extend_from_slice(&b[..n]);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let g = got.clone();
        let sink = Lossy::new(move || To(g.clone()));
        sink.make_writer().write_all(b"hello, log\n").unwrap();
        assert_eq!(&*got.lock().unwrap(), b"hello, log\n");
    }
}
