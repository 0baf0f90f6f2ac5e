//! [`Cases`], the runner of named cases (each reported with its time; the
//! test fails at the end listing every failure), and the helpers failure
//! messages share.

use std::time::Instant;

use conformance_tests::Resp;

/// Named cases run so far.
#[derive(Default)]
pub struct Cases {
    pub failed: Vec<String>,
    pub passed: usize,
}

impl Cases {
    /// Runs `f` as case `name`, recording its outcome.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
        let started = Instant::now();
        match f() {
            Ok(v) => {
                println!("case {name}: ok ({:.1?})", started.elapsed());
                self.passed += 1;
                Some(v)
            }
            Err(e) => {
                println!("case {name}: FAILED: {e}");
                self.failed.push(format!("{name}: {e}"));
                None
            }
        }
    }

    /// Records a case that could not run.
    pub fn fail(&mut self, name: &str, why: &str) {
        println!("case {name}: FAILED: {why}");
        self.failed.push(format!("{name}: {why}"));
    }

    /// Prints the tally and fails listing every failed case.
    pub fn finish(&self, started: Instant, log_tail: &str) {
        println!(
            "truth: {} cases passed, {} failed, in {:.1?}",
            self.passed,
            self.failed.len(),
            started.elapsed()
        );
        assert!(
            self.failed.is_empty(),
            "the CapabilityStatement declares what does not work ({} of {} cases failed):\n- {}\n\nserver log tail:\n{log_tail}",
            self.failed.len(),
            self.failed.len() + self.passed,
            self.failed.join("\n- ")
        );
    }
}

/// A text cut to 300 characters, for failure messages.
pub fn short(text: impl std::fmt::Display) -> String {
    let text = text.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// `METHOD path → status: body excerpt`.
pub fn described(method: &str, path: &str, r: &Resp) -> String {
    format!("{method} {path} → {}: {}", r.status, short(&r.text))
}

/// The status is one of `want`, else an error describing the exchange.
pub fn expect_status(method: &str, path: &str, r: &Resp, want: &[u16]) -> Result<(), String> {
    if want.contains(&r.status) {
        Ok(())
    } else {
        Err(format!(
            "wanted {want:?}, got {}",
            described(method, path, r)
        ))
    }
}

/// `Err(msg())` unless `ok`.
pub fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
