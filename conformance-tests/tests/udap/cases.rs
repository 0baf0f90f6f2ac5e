//! The UDAP suites' small helpers (time, `jti`s, x5c-signed JWTs, short
//! failure texts, `ensure`) and [`Cases`], their runner of named cases.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::pki::Leaf;

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub fn jti(tag: &str) -> String {
    format!("{tag}-{}", rand::random::<u64>())
}

/// A JWT signed by `leaf` with `x5c` = [leaf, chain…].
pub fn signed(leaf: &Leaf, chain: &[String], claims: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(leaf.alg());
    let mut x5c = vec![leaf.b64()];
    x5c.extend(chain.iter().cloned());
    h.x5c = Some(x5c);
    jsonwebtoken::encode(&h, claims, &leaf.encoding_key()).unwrap()
}

/// A text (or a JSON body) for a failure message, cut to 400 characters.
pub fn short(text: impl std::fmt::Display) -> String {
    let text = text.to_string();
    match text.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

pub fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Runs named cases, each reported with its time, collecting failures.
#[derive(Default)]
pub struct Cases {
    pub failed: Vec<String>,
    pub passed: Vec<String>,
}

impl Cases {
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T, String>) -> Option<T> {
        let started = Instant::now();
        match f() {
            Ok(v) => {
                println!("case {name}: ok ({:.1?})", started.elapsed());
                self.passed.push(name.to_owned());
                Some(v)
            }
            Err(e) => {
                println!("case {name}: FAILED: {e}");
                self.failed.push(format!("{name}: {e}"));
                None
            }
        }
    }

    /// Prints the tally since `started` and fails the test listing every
    /// failed case under `title`, then each `(name, log tail)` of `logs`.
    pub fn finish(&self, title: &str, started: Instant, logs: &[(&str, String)]) {
        println!(
            "{} cases passed, {} failed, in {:.1?}",
            self.passed.len(),
            self.failed.len(),
            started.elapsed()
        );
        let logs: String = logs
            .iter()
            .map(|(name, tail)| format!("\n\n{name}:\n{tail}"))
            .collect();
        assert!(
            self.failed.is_empty(),
            "{title} cases failed:\n- {}{logs}",
            self.failed.join("\n- ")
        );
    }
}
