//! [`Cases`], the runner of named cases the black-box suites share (UDAP,
//! Tiered OAuth, the truth test): each case is reported with its time, the
//! test goes on after a failure and fails at the end listing every failed
//! case; and the two helpers their failure messages use.

use std::time::Instant;

/// Named cases run so far.
#[derive(Debug, Default)]
pub struct Cases {
    /// `name: why` of each failed case.
    pub failed: Vec<String>,
    /// How many passed.
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
                self.fail(name, &e);
                None
            }
        }
    }

    /// Records a case that could not run.
    pub fn fail(&mut self, name: &str, why: &str) {
        println!("case {name}: FAILED: {why}");
        self.failed.push(format!("{name}: {why}"));
    }

    /// Prints the tally since `started` and fails the test listing every
    /// failed case under `title`, then each `(name, log tail)` of `logs`.
    pub fn finish(&self, title: &str, started: Instant, logs: &[(&str, String)]) {
        println!(
            "{title}: {} cases passed, {} failed, in {:.1?}",
            self.passed,
            self.failed.len(),
            started.elapsed()
        );
        let logs: String = logs
            .iter()
            .map(|(name, tail)| format!("\n\n{name}:\n{tail}"))
            .collect();
        assert!(
            self.failed.is_empty(),
            "{title}: {} of {} cases failed:\n- {}{logs}",
            self.failed.len(),
            self.failed.len() + self.passed,
            self.failed.join("\n- ")
        );
    }
}

/// A text (or a JSON body) for a failure message, cut to 400 characters.
pub fn short(text: impl std::fmt::Display) -> String {
    let text = text.to_string();
    match text.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
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
