//! Who asks and what a run has found: a caller (`Who`), the run's state and
//! failures (`Cx`, grouped by kind in `Cx::report`), and what may not appear
//! in an answer to a caller under a policy view (`Needles`).

use std::collections::{BTreeSet, HashMap};

use conformance_tests::{Api, Resp, TestResult};
use serde_json::Value;

use crate::seed::{Seed, View};
use crate::Upstream;

/// Sensitivity codes that must never reach a caller not cleared for them.
const TAGS: &[&str] = &[
    "HIV", "PSY", "SUD", "ETH", "OPIOIDUD", "MH", "BH", "STD", "SEX", "GDIS", "SDV", "PSYTHPN",
];

/// One caller: a token and the headers it sends on every request.
pub struct Who {
    /// For failure messages.
    pub label: String,
    /// Client with the bearer token.
    pub api: Api,
    /// E.g. `X-Purpose-Of-Use`.
    pub headers: Vec<(&'static str, String)>,
}

impl Who {
    /// `GET`.
    pub fn get(&self, path: &str) -> TestResult<Resp> {
        self.send("GET", path, &[], None)
    }

    /// Any request, with this caller's headers.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> TestResult<Resp> {
        let mut h: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        h.extend_from_slice(extra);
        self.api.send(method, path, &h, body)
    }

    /// A JSON body.
    pub fn json(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &Value,
    ) -> TestResult<Resp> {
        let mut h = extra.to_vec();
        h.push(("content-type", "application/fhir+json"));
        self.send(method, path, &h, Some(body.to_string().into_bytes()))
    }
}

/// One run's state: the data, what the loader stored, the failures so far.
pub struct Cx<'a> {
    /// Which upstream.
    pub up: Upstream,
    /// The HTTP upstream itself (no facade), for [`Cx::flip_history`].
    direct: Option<&'a Api>,
    /// The seeded data.
    pub seeds: &'a [Seed],
    /// Every seed as stored (read back by the exempt loader), by `Type/id`.
    pub stored: HashMap<String, Value>,
    /// Version ids of the earlier versions (`prior`), by `Type/id`.
    pub prior_versions: HashMap<String, String>,
    /// Consent ids that exist now.
    pub consents: Vec<String>,
    /// The cell being run (policy name).
    pub cell: String,
    /// Failures, each naming cell, caller and request.
    pub failures: Vec<Failure>,
    /// Paths run × (policy, caller) cells.
    pub checks: usize,
    /// Leak kinds already reported once per cell (paging tokens).
    pub reported: BTreeSet<String>,
}

impl<'a> Cx<'a> {
    /// A run on `up` over `seeds`.
    pub fn new(up: Upstream, seeds: &'a [Seed], direct: Option<&'a Api>) -> Self {
        Self {
            up,
            direct,
            seeds,
            stored: HashMap::new(),
            prior_versions: HashMap::new(),
            consents: Vec::new(),
            cell: String::new(),
            failures: Vec::new(),
            checks: 0,
            reported: BTreeSet::new(),
        }
    }

    /// Records a failure.
    pub fn fail(&mut self, who: &str, what: &str, msg: impl std::fmt::Display) {
        let mut msg = msg.to_string();
        if msg.len() > 1500 {
            let mut end = 1500;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
            msg.push_str(" …");
        }
        self.failures.push(Failure {
            cell: self.cell.clone(),
            who: who.to_owned(),
            what: what.to_owned(),
            msg,
        });
    }

    /// The failures grouped by kind (request and message with ids and
    /// numbers abstracted): each kind once in full, with every cell and
    /// caller it happened in.
    pub fn report(&self) -> String {
        let norm = |t: &str| {
            let mut t = t.lines().next().unwrap_or_default().to_owned();
            for s in self.seeds {
                t = t.replace(&s.reference(), "<ref>").replace(s.id, "<id>");
            }
            for c in &self.consents {
                t = t.replace(&format!("Consent/{c}"), "<ref>");
            }
            let mut out = String::new();
            for c in t.chars() {
                if c.is_ascii_digit() {
                    if !out.ends_with('N') {
                        out.push('N');
                    }
                } else {
                    out.push(c);
                }
            }
            out
        };
        let mut groups: Vec<(String, Vec<&Failure>)> = Vec::new();
        for f in &self.failures {
            let key = format!("{} {}", norm(&f.what), norm(&f.msg));
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(f),
                None => groups.push((key, vec![f])),
            }
        }
        let mut out = String::new();
        for (i, (_, fs)) in groups.iter().enumerate() {
            let f = fs[0];
            out.push_str(&format!(
                "({}) [{:?}] {}× — {} / {}: {}: {}\n    seen in: ",
                i + 1,
                self.up,
                fs.len(),
                f.cell,
                f.who,
                f.what,
                f.msg
            ));
            let mut seen: Vec<String> = fs
                .iter()
                .map(|f| format!("{} / {}", f.cell, f.who))
                .collect();
            seen.dedup();
            out.push_str(&seen.join("; "));
            out.push_str("\n\n");
        }
        out
    }

    /// Medplum's `MemoryRepository` reverses an instance history in place
    /// on every read (README: "history order"), so the facade sees versions
    /// oldest-first on every other call; one direct read flips the order the
    /// facade sees next. No-op on the embedded store (newest first, always).
    pub fn flip_history(&self, path: &str) {
        if let Some(d) = self.direct {
            let _ = d.get(path);
        }
    }

    /// Starts a new cell.
    pub fn enter(&mut self, cell: &str) {
        self.cell = cell.to_owned();
        self.reported.clear();
    }
}

/// One failed check.
pub struct Failure {
    /// Policy cell.
    pub cell: String,
    /// Caller.
    pub who: String,
    /// Request.
    pub what: String,
    /// What was wrong.
    pub msg: String,
}

/// What may not appear in an answer to a caller under a view.
pub struct Needles(pub Vec<String>);

impl Needles {
    /// Denied ids and values, redacted values, Consent ids, sensitivity tags.
    pub fn new(cx: &Cx, view: View) -> Self {
        let mut v: Vec<String> = Vec::new();
        for s in cx.seeds {
            if view.hides(s, cx.seeds) {
                v.push(s.id.to_owned());
                v.extend(s.secrets.iter().map(|x| (*x).to_owned()));
                v.extend(s.redactable.iter().map(|x| (*x).to_owned()));
            } else if view.redacts(s) {
                v.extend(s.redactable.iter().map(|x| (*x).to_owned()));
            }
            if let Some(p) = s.prior.as_deref() {
                if view.hides_prior(s, cx.seeds) {
                    v.extend(p.secrets.iter().map(|x| (*x).to_owned()));
                }
            }
        }
        v.extend(cx.consents.iter().cloned());
        v.extend(TAGS.iter().map(|t| format!("\"{t}\"")));
        Self(v)
    }
}
