//! The process's metrics: counters and histograms kept in memory and
//! written out in the Prometheus text exposition format 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! No PHI by construction: every label value is either a `&'static str`
//! from a closed set written in this crate (methods, interactions, effects,
//! outcomes, states) or a route template ([`super::route`]), and the
//! recording functions take nothing else. Ids of patients, resources,
//! clients or jobs have no way in.
//!
//! One registry per process ([`registry`]): the call sites (consent judge,
//! ledger writer, upstream wrapper) record without an `AppState` at hand.
//! Several apps in one process (tests) share it; values only grow.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{LazyLock, Mutex, MutexGuard},
    time::Duration,
};

/// Histogram bucket upper bounds, in seconds (1 ms to 30 s).
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Label values of one series, in the family's label order.
type Labels = Vec<&'static str>;

/// A histogram series: cumulative on output, per bucket here.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations per bucket (`BUCKETS.len()`), the last slot is `+Inf`.
    buckets: Vec<u64>,
    /// Sum of the observed seconds.
    sum: f64,
    /// Number of observations.
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS.len() + 1];
        }
        let slot = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// Series keyed by their label values; routes are owned strings, so a
/// series key is (route, other labels).
type Series<T> = BTreeMap<(String, Labels), T>;

/// Everything recorded since start.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Families>,
}

#[derive(Debug, Default)]
struct Families {
    http_requests: Series<u64>,
    http_duration: Series<Histogram>,
    upstream_duration: Series<Histogram>,
    consent_decisions: Series<u64>,
    ledger_append: Series<Histogram>,
    ledger_appended: u64,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The process's registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Families> {
        // A panic while holding the lock leaves counts that are still counts.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One HTTP request: `route` is a template, never a raw path.
    pub fn http_request(
        &self,
        method: &'static str,
        route: &super::route::Route,
        status: u16,
        took: Duration,
    ) {
        let mut f = self.lock();
        let key = (route.as_str().to_owned(), vec![method, status_code(status)]);
        *f.http_requests.entry(key).or_default() += 1;
        let key = (
            route.as_str().to_owned(),
            vec![method, status_class(status)],
        );
        f.http_duration
            .entry(key)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// One upstream call.
    pub fn upstream_call(
        &self,
        upstream: &'static str,
        interaction: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        let key = (String::new(), vec![upstream, interaction, outcome]);
        self.lock()
            .upstream_duration
            .entry(key)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// One consent decision on one resource (or request).
    pub fn consent_decision(&self, effect: &str) {
        let key = (String::new(), vec![effect_label(effect)]);
        *self.lock().consent_decisions.entry(key).or_default() += 1;
    }

    /// One group commit of the ledger writer: `entries` appended, or `None`
    /// when it failed.
    pub fn ledger_append(&self, took: Duration, entries: Option<usize>) {
        let outcome = if entries.is_some() { "ok" } else { "error" };
        let mut f = self.lock();
        f.ledger_append
            .entry((String::new(), vec![outcome]))
            .or_default()
            .observe(took.as_secs_f64());
        f.ledger_appended += entries.unwrap_or(0) as u64;
    }

    /// The exposition of everything recorded, followed by `gauges` (values
    /// read at scrape time).
    pub fn render(&self, gauges: &Gauges) -> String {
        let f = self.lock();
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "fhirgate_http_requests_total",
            "counter",
            "HTTP requests by method, route template and status code.",
        );
        for ((route, l), n) in &f.http_requests {
            let labels = [("method", l[0]), ("route", route), ("status", l[1])];
            sample(&mut out, "fhirgate_http_requests_total", &labels, *n as f64);
        }
        family(
            &mut out,
            "fhirgate_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by method, route template and status class.",
        );
        for ((route, l), h) in &f.http_duration {
            let labels = [("method", l[0]), ("route", route), ("status", l[1])];
            histogram(
                &mut out,
                "fhirgate_http_request_duration_seconds",
                &labels,
                h,
            );
        }
        family(
            &mut out,
            "fhirgate_upstream_request_duration_seconds",
            "histogram",
            "Calls to the FHIR upstream by upstream kind, interaction and outcome.",
        );
        for ((_, l), h) in &f.upstream_duration {
            let labels = [("upstream", l[0]), ("interaction", l[1]), ("outcome", l[2])];
            histogram(
                &mut out,
                "fhirgate_upstream_request_duration_seconds",
                &labels,
                h,
            );
        }
        family(
            &mut out,
            "fhirgate_consent_decisions_total",
            "counter",
            "Consent decisions on resources, by effect.",
        );
        for ((_, l), n) in &f.consent_decisions {
            let labels = [("effect", l[0])];
            sample(
                &mut out,
                "fhirgate_consent_decisions_total",
                &labels,
                *n as f64,
            );
        }
        family(
            &mut out,
            "fhirgate_ledger_append_duration_seconds",
            "histogram",
            "Audit ledger group commits (one durable transaction each), by outcome.",
        );
        for ((_, l), h) in &f.ledger_append {
            let labels = [("outcome", l[0])];
            histogram(
                &mut out,
                "fhirgate_ledger_append_duration_seconds",
                &labels,
                h,
            );
        }
        family(
            &mut out,
            "fhirgate_ledger_appended_entries_total",
            "counter",
            "Audit ledger entries appended by this process.",
        );
        sample(
            &mut out,
            "fhirgate_ledger_appended_entries_total",
            &[],
            f.ledger_appended as f64,
        );
        drop(f);
        family(
            &mut out,
            "fhirgate_log_lines_dropped_total",
            "counter",
            "Log lines dropped because stderr refused them (e.g. the log volume is full).",
        );
        sample(
            &mut out,
            "fhirgate_log_lines_dropped_total",
            &[],
            super::log_sink::dropped() as f64,
        );
        gauges.render(&mut out);
        out
    }
}

/// Values read from the stores when scraped (shared by every replica on
/// the same state store); `None` when the read failed (the family is then
/// left out rather than reported as zero).
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Entries in the audit ledger (its head's size).
    pub ledger_entries: Option<u64>,
    /// Bulk jobs per state (`queued`, `running`, `complete`, `failed`, `deleted`).
    pub bulk_jobs: Option<Vec<(&'static str, u64)>>,
}

impl Gauges {
    fn render(&self, out: &mut String) {
        if let Some(n) = self.ledger_entries {
            family(
                out,
                "fhirgate_ledger_entries",
                "gauge",
                "Entries in the audit ledger.",
            );
            sample(out, "fhirgate_ledger_entries", &[], n as f64);
        }
        if let Some(jobs) = &self.bulk_jobs {
            family(
                out,
                "fhirgate_bulk_jobs",
                "gauge",
                "Bulk Data jobs in the state store, by state.",
            );
            for (state, n) in jobs {
                sample(out, "fhirgate_bulk_jobs", &[("state", state)], *n as f64);
            }
        }
        family(
            out,
            "fhirgate_build_info",
            "gauge",
            "Always 1; the version of this fhirgate.",
        );
        sample(
            out,
            "fhirgate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

fn histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    let bucket = format!("{name}_bucket");
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().map(|b| number(*b)).enumerate() {
        cumulative += h.buckets.get(i).copied().unwrap_or(0);
        let mut l = labels.to_vec();
        l.push(("le", &bound));
        sample(out, &bucket, &l, cumulative as f64);
    }
    let mut l = labels.to_vec();
    l.push(("le", "+Inf"));
    sample(out, &bucket, &l, h.count as f64);
    sample(out, &format!("{name}_sum"), labels, h.sum);
    sample(out, &format!("{name}_count"), labels, h.count as f64);
}

/// A sample value: integers without a fraction, others as Rust prints them.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Label value escaping (backslash, double quote, line feed).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The method label: the standard methods, else `OTHER`.
pub fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The status code as a label: the codes fhirgate answers with, any other
/// collapsed to its class (`4xx`), so the label set stays closed.
fn status_code(s: u16) -> &'static str {
    const CODES: [(u16, &str); 27] = [
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (302, "302"),
        (303, "303"),
        (304, "304"),
        (307, "307"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (406, "406"),
        (409, "409"),
        (410, "410"),
        (412, "412"),
        (413, "413"),
        (415, "415"),
        (422, "422"),
        (428, "428"),
        (429, "429"),
        (500, "500"),
        (501, "501"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    CODES
        .iter()
        .find(|(c, _)| *c == s)
        .map_or_else(|| status_class(s), |(_, l)| *l)
}

/// `2xx`, `3xx`, `4xx`, `5xx` (anything else `other`).
fn status_class(s: u16) -> &'static str {
    match s {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// The effect label: BALP's consent effects, else `other`.
fn effect_label(effect: &str) -> &'static str {
    match effect {
        "permit" => "permit",
        "deny" => "deny",
        "redact" => "redact",
        "break-the-glass" => "break-the-glass",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::default();
        h.observe(0.0005);
        h.observe(0.2);
        h.observe(100.0);
        let mut out = String::new();
        histogram(&mut out, "x", &[("a", "b")], &h);
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.25\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("l", "a\"b\\c\nd")], 1.0);
        assert_eq!(out, "m{l=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn unknown_codes_effects_and_methods_collapse() {
        assert_eq!(status_code(404), "404");
        assert_eq!(status_code(418), "4xx");
        assert_eq!(effect_label("Patient/123"), "other");
        let m = axum::http::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(&m), "OTHER");
    }
}
