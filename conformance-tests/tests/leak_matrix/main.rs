//! The consent leak matrix (issue 4, "Proof"), black-box against the real
//! `fhirgate` binary on both upstreams: the embedded store and Medplum as
//! the HTTP upstream. The same suite, the same expectations; where Medplum's
//! router has no such interaction (compartment search, `$everything`, type
//! history, `_include` results) the path is run on the embedded store only.
//!
//! Data (`seed`): two patients, Observations (some by Practitioner/dr-lee),
//! an HIV Condition (ICD-10 B20, classified by code), an SUD Condition
//! (F11.20, hidden by 42 CFR Part 2 without a consent naming it), a
//! PSY-labelled Condition, an Observation with an inline (DS4P) PSY label,
//! Provenance of the HIV Condition and of a lab, a Binary whose
//! securityContext is the HIV Condition, a deleted Observation, two
//! Observations with two versions (PSY label dropped; PSY label added), and
//! paging Observations of both patients interleaved. It is loaded by an
//! exempt client (`loader`); Consents are written by the patient through
//! the FHIR API.
//!
//! Policies (cells, `main`), each for the callers it concerns (a clinician
//! Practitioner/dr-lee with `user/*.cruds` acting for an organization, a
//! payer backend with `system/*.rs`, tokens minted with `fhirgate token
//! issue`): no Consent (Part 2 only), deny all written by an exempt client,
//! deny all, deny a category (HIV), deny an actor (dr-lee), deny an
//! organization (the clinician's, by token claim, a provider backend
//! mapped to it in `[payer] provider_clients`, and a UDAP B2B backend
//! stating it in the `hl7-b2b` extension of its client assertion; a
//! clinician of another organization, a B2B backend stating another one
//! and the payer unaffected), permit only a purpose (HPAYMT, by header, by
//! token claim and by `hl7-b2b` purpose_of_use), redact a category (PSY), break-the-glass
//! (with a reason: released and the patient notified; without one; by a
//! role that may not), revoked then read, expired period, and (Medplum)
//! deny all written directly to the upstream and picked up by the poller.
//!
//! Paths (`paths`, `searches`, `bundles`): read, vread (current and earlier
//! versions), instance history (of a record with several versions in both
//! orders), conditional read, read of a deleted record, Provenance and
//! Binary (inherited decisions), Consent read (404 for anyone but the
//! patient), DELETE of a denied record; searches by GET and `POST _search`,
//! `_include`, `_revinclude`, `_summary=count`, `_total=accurate`, paging
//! followed to the end (every page full, links holding only an opaque
//! token); batch and transaction GET entries (reads, vreads, histories,
//! Consents, searches, counts); compartment search, `Patient/$everything`,
//! type history (embedded); chained, `_has`, `_security`, `_tag`, `_text`,
//! `_content`, `_sort` on labels (also inside `POST _search` and batch) and
//! conditional writes refused with 403.
//!
//! Checks (`check`): no denied id, denied element value, sensitivity tag,
//! Consent id or untrue count anywhere in the body or headers (less the
//! `self` link and a 404's naming of the id asked for), paging tokens
//! decoded too; a denied request answers like the same request on a
//! never-existing id of the same length: status, bytes, headers, and the
//! number of audit entries it writes (the `X-Ledger-Seq` step).
//!
//! Every failure is collected (one broken path does not hide the rest),
//! named by upstream, policy, caller and request, and reported grouped by
//! kind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bundles;
mod check;
mod cx;
mod gate;
mod paths;
mod policies;
mod searches;
mod seed;
mod world;

use std::time::Instant;

use conformance_tests::{Api, Medplum, TestResult};

use cx::Cx;
use gate::{Gate, LOADER};
use policies::Callers;
use world::load;

/// Which upstream a run is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Upstream {
    /// The embedded SQLite store.
    Embedded,
    /// Medplum's `FhirRouter` + `MemoryRepository` (HTTP upstream).
    Medplum,
}

impl Upstream {
    /// Whether the upstream returns `_include`/`_revinclude` results
    /// (Medplum's in-memory repository accepts the parameters and returns
    /// none).
    pub fn includes(self) -> bool {
        self == Upstream::Embedded
    }
}

#[test]
fn embedded_store_leak_matrix() -> TestResult {
    let gate = Gate::start(None, vec![])?;
    matrix(&gate, Upstream::Embedded, None)
}

#[test]
fn medplum_upstream_leak_matrix() -> TestResult {
    let medplum = Medplum::start()?;
    let forbidden = vec![
        format!("127.0.0.1:{}", medplum.port),
        format!("localhost:{}", medplum.port),
        "/fhir/R4".to_owned(),
    ];
    let gate = Gate::start(Some(&medplum.base_url()), forbidden)?;
    let direct = Api::new(&medplum.base_url(), vec![])?;
    matrix(&gate, Upstream::Medplum, Some(&direct))
}

fn matrix(gate: &Gate, up: Upstream, direct: Option<&Api>) -> TestResult {
    let started = Instant::now();
    let seeds = seed::seeds();
    let mut cx = Cx::new(up, &seeds, direct);
    let loader = gate.api(&gate.token(&["--client", LOADER, "--scope", "system/*.cruds"])?)?;
    load(&mut cx, &loader)?;
    let c = Callers::issue(gate, loader)?;
    let mut cells = policies::consent_free(&mut cx, &c);
    cells += policies::exempt_written(&mut cx, &c)?;
    cells += policies::patient_written(&mut cx, &c)?;
    cells += policies::break_glass(&mut cx, &c)?;
    cells += policies::revocation(&mut cx, &c);
    if let Some(direct) = direct {
        cells += policies::upstream_written(&mut cx, &c, direct)?;
    }
    eprintln!(
        "[{up:?}] leak matrix: {cells} policy×caller cells, {} checked answers, {} failures, {:.1}s",
        cx.checks,
        cx.failures.len(),
        started.elapsed().as_secs_f64()
    );
    if cx.failures.is_empty() {
        return Ok(());
    }
    // Printed whole (the error's Debug form would escape every quote).
    eprintln!("{}", cx.report());
    eprintln!("--- fhirgate log ---\n{}", gate.log_tail());
    Err(format!(
        "[{up:?}] {} failures of the leak matrix (grouped above)",
        cx.failures.len()
    )
    .into())
}
