//! Scale-out mode (issue 10, item 1), black-box against the real binary:
//! two `fhirgate` replicas, A and B, on one fresh PostgreSQL database
//! (`FHIRGATE_DATABASE_URL`) and one data dir (signing keys, the embedded
//! FHIR store and bulk files, as on a shared volume), both answering to one
//! public URL, behind a round-robin client that sends every request to the
//! other replica than the one before (`scale_out/lb.rs`). Demo mode, three
//! seeded patients, users `pat.jones` and `dr.lee`.
//!
//! Cases, each checked and reported on its own (the run fails listing every
//! failed case):
//! 1. clients and tokens: a Backend Services client registered on A (RFC
//!    7591) gets a `client_credentials` token on B and is listed by
//!    `fhirgate client list`; its assertion replayed on the other replica
//!    is refused (shared `jti` store); a token minted on A reads on B;
//!    revoked on B (RFC 7009), it is refused on A and on B;
//! 2. the SMART authorization-code flow: authorize on A, then every
//!    browser step (pending request, sign-in form with its CSRF token,
//!    approval) on the other replica than the last; the code redeemed on
//!    B, the refresh token on A; the spent refresh token refused on B;
//! 3. EHR launch: `dr.lee` launches the app for `pat.jones`'s record from
//!    the launcher on A; the launch context is consumed by the app's
//!    authorize on B; the token carries the launched patient and a second
//!    use of the launch (on A) is refused;
//! 4. consent: `pat.jones` writes a deny-all Consent through A; B's next
//!    read of the record with dr.lee's launch token (A and B read it just
//!    before) is answered as missing, while the patient still reads their
//!    own record; set inactive through B, A (whose cache held the deny)
//!    and B release it again. (A `system/` client is no reader here: the
//!    seeded `pat.jones` lives in Texas, and the `us-tx-hb300` pack denies
//!    callers without a purpose of use);
//! 5. bulk: `$export` kicked off on A, polled on B until complete, files
//!    downloaded alternately, the job deleted on B is gone on A;
//! 6. ledger: `fhirgate ledger verify` passes with checkpoints (signed
//!    every 10 entries by either replica's timer) and `ledger export` is
//!    one chain without gaps holding every receipt (`X-Ledger-Seq` +
//!    `X-Request-Id`) either replica gave in cases 1–5;
//!
//! and, last, that the shared data dir holds no SQLite state store (the
//! state went to PostgreSQL) and that no two requests in a row went to one
//! replica. About 6 s (two starts, demo seeding of 3 patients, one export).
//!
//! Runs with `FHIRGATE_TEST_DATABASE_URL` (the test command starts a
//! PostgreSQL and sets it); without it the test is skipped, unless
//! `FHIRGATE_REQUIRE_POSTGRES=1` makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "scale_out/flows.rs"]
mod flows;
#[path = "scale_out/lb.rs"]
mod lb;
#[path = "scale_out/shared.rs"]
mod shared;
#[path = "scale_out/support.rs"]
mod support;

use std::time::Instant;

use conformance_tests::{
    cases::{ensure, Cases},
    free_port,
    pg::{postgres_url, FreshDb},
    process::Process,
    TestResult,
};
use lb::{Lb, Reply};

const A: usize = 0;
const B: usize = 1;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Records case `name` as not run because `needs` failed.
fn not_run(cases: &mut Cases, name: &str, needs: &str) {
    cases.fail(name, &format!("not run: needs {needs}, which failed"));
}

fn want(r: &Reply, status: &[u16], what: &str) -> Result<(), String> {
    ensure(status.contains(&r.status), || {
        format!("{what}: wanted {status:?}, {}", r.describe())
    })
}

#[test]
fn two_replicas_share_every_flow() -> TestResult {
    let Some(admin) = postgres_url()? else {
        return Ok(());
    };
    let started = Instant::now();
    let db = FreshDb::create(&admin, "scaleout")?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("fhirgate.toml");
    std::fs::write(
        &config,
        "[demo]\nseed_patients = 3\n\n[bulk]\nscan_millis = 200\n\n[audit]\ncheckpoint_every = 10\n",
    )?;
    let config = config.display().to_string();
    let env = [
        ("FHIRGATE_DATABASE_URL", db.url.as_str()),
        ("FHIRGATE_DEMO", "1"),
        ("FHIRGATE_CONFIG", config.as_str()),
    ];
    // One data dir (keys, embedded FHIR store, bulk files) as on a shared
    // volume; the facade's state and the ledger are in PostgreSQL. Both
    // answer to one public URL, where nothing listens: a request the
    // balancer did not route fails.
    let data = dir.path().join("data");
    let (pa, pb, public) = (free_port()?, free_port()?, free_port()?);
    let public = format!("http://127.0.0.1:{public}");
    let mut a = Process::new("replica-a", &data, pa, &public, &env)?;
    let mut b = Process::new("replica-b", &data, pb, &public, &env)?;
    a.start()?;
    b.start()?;
    println!("replicas up in {:.1?}", started.elapsed());
    let lb = Lb::new(&public, [pa, pb]);
    let mut cases = Cases::default();

    let backend = cases.run("1 clients and tokens shared", || {
        flows::clients_and_tokens(&lb, &a)
    });
    let login = cases.run("2 authorization code across replicas", || {
        flows::authorization_code(&lb)
    });
    // the system token of case 1 that was not revoked
    let system = backend.map(|(_, token)| token);
    match &login {
        Some(l) => {
            let clinician = cases.run("3 EHR launch context across replicas", || {
                flows::ehr_launch(&lb, &l.app, &l.patient)
            });
            match clinician {
                Some(c) => {
                    cases.run("4 consent index shared", || {
                        shared::consent_enforced(&lb, l, &c)
                    });
                }
                None => not_run(&mut cases, "4 consent index shared", "case 3"),
            }
        }
        None => {
            not_run(&mut cases, "3 EHR launch context across replicas", "case 2");
            not_run(&mut cases, "4 consent index shared", "cases 2 and 3");
        }
    }
    match &system {
        Some(s) => {
            cases.run("5 bulk export across replicas", || {
                shared::bulk_export(&lb, s)
            });
        }
        None => not_run(&mut cases, "5 bulk export across replicas", "case 1"),
    }
    if let Some(summary) = cases.run("6 one ledger chain", || shared::ledger(&lb, &a, &b)) {
        println!("ledger: {summary}");
    }
    cases.run("state in PostgreSQL, not in the shared data dir", || {
        let files: Vec<String> = std::fs::read_dir(&data)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        ensure(!files.iter().any(|f| f.starts_with("state.db")), || {
            format!("a SQLite state store in the data dir: {files:?}")
        })
    });
    cases.run("every request alternated replicas", || {
        ensure(lb.alternated(), || {
            "two requests in a row went to one replica".into()
        })
    });
    println!("requests served (A, B): {:?}", lb.served.borrow());
    cases.finish(
        "scale-out",
        started,
        &[("replica A", a.log_tail()), ("replica B", b.log_tail())],
    );
    a.kill9()?;
    b.kill9()?;
    Ok(())
}
