//! The truth test (issue 9, item 4): read `GET /fhir/metadata` and exercise
//! everything it declares against the real `fhirgate` binary in demo mode
//! with seeded data; anything declared and not working fails the build.
//! It runs twice, with the same cases: on the embedded store, and in front
//! of Medplum as the HTTP upstream (the demo population is seeded through
//! fhirgate into Medplum; the statement is then the intersection of
//! Medplum's and what fhirgate forwards, plus what fhirgate answers itself,
//! and every answer is checked for Medplum's address).
//!
//! Cases are derived from the statement, never from a list of our own:
//! - every `rest.resource[].interaction` of every type (`truth/interactions.rs`;
//!   a type with no seeded data gets the suite's fixture first, and one that
//!   has neither data nor `create` fails as "cannot be exercised");
//! - every `searchParam` (per type and rest-level), with a value taken from
//!   a resource of that type at the R4 element path in `truth/params.rs`
//!   (a declared parameter missing from that table fails as "declared but
//!   not verifiable"), and every `searchInclude` / `searchRevInclude`
//!   (`truth/search.rs`);
//! - every `operation`, rest-level and per type, with one minimal valid
//!   invocation (`truth/operations.rs`; an operation without one fails as
//!   "declared but not exercised");
//! - `updateCreate`, `conditional*`, `versioning`, `readHistory` and the
//!   Patient compartment (`truth/behaviours.rs`);
//! - each `format`, the SMART `oauth-uris` of `rest.security` against their
//!   endpoints and `/.well-known/smart-configuration`, and the rest-level
//!   interactions (`truth/platform.rs`).
//!
//! One `#[test]` runs every case and fails at the end listing each failed
//! one with its request, status and a body excerpt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "truth/behaviours.rs"]
mod behaviours;
#[path = "truth/cases.rs"]
mod cases;
#[path = "truth/fixtures.rs"]
mod fixtures;
#[path = "truth/interactions.rs"]
mod interactions;
#[path = "truth/operations.rs"]
mod operations;
#[path = "truth/params.rs"]
mod params;
#[path = "truth/platform.rs"]
mod platform;
#[path = "truth/search.rs"]
mod search;
#[path = "truth/server.rs"]
mod server;

use std::time::Instant;

use cases::Cases;
use conformance_tests::Medplum;
use server::Truth;

#[test]
fn everything_the_capability_statement_declares_works() {
    run_all(
        None,
        "truth: the CapabilityStatement declares what does not work",
    );
}

#[test]
fn everything_declared_in_front_of_medplum_works() {
    let medplum = match Medplum::start() {
        Ok(m) => m,
        Err(e) => panic!("Medplum (the HTTP upstream) did not start: {e}"),
    };
    run_all(
        Some(&medplum),
        "truth (Medplum upstream): the CapabilityStatement declares what does not work",
    );
}

/// Starts the server (on `upstream`, else the embedded store) and runs
/// every case its statement calls for.
fn run_all(upstream: Option<&Medplum>, title: &str) {
    let started = Instant::now();
    let mut t = match Truth::start(upstream) {
        Ok(t) => t,
        Err(e) => panic!("the server under test did not start: {e}"),
    };
    let mut cases = Cases::default();
    interactions::run(&mut t, &mut cases);
    platform::run(&t, &mut cases);
    behaviours::run(&t, &mut cases);
    search::run(&t, &mut cases);
    operations::run(&t, &mut cases);
    cases.finish(title, started, &[("server log tail", t.process.log_tail())]);
}
