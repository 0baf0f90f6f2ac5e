//! CMS-0057-F prior-authorization metrics (issue 7 item 3): requests
//! submitted through `Claim/$submit`, one decided by a reviewer through
//! `prior_auth::decide`, then `GET /admin/api/prior-auth/metrics` and
//! `fhirgate pa-metrics` report them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/pas.rs"]
mod pas;

use std::process::Command;

use axum::http::{Method, StatusCode};
use common::TestApp;
use fhirgate::prior_auth::{
    decide::{decide, Decision},
    review::{appeal, extend},
};
use pas::request;
use serde_json::Value;

async fn submit(t: &TestApp, tok: &str, claim: &str, code: &str, priority: &str) -> String {
    let body = request(claim, code, 1, priority);
    let r = t
        .request_with(tok, Method::POST, "/fhir/Claim/$submit", &[], Some(&body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const PATH: &str = "/admin/api/prior-auth/metrics";

#[tokio::test]
async fn metrics_count_submitted_and_decided_requests() {
    let t = TestApp::new().await;
    let tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    submit(&t, &tok, "m-1", "97110", "normal").await; // auto-approved
    submit(&t, &tok, "m-2", "0042T", "normal").await; // auto-denied
    let pended = submit(&t, &tok, "m-3", "27447", "normal").await;
    submit(&t, &tok, "m-4", "27447", "stat").await; // stays pended, expedited
    submit(&t, &tok, "m-5", "99213", "normal").await; // no auth needed: not counted
    decide(&t.app, &pended, "rev-1", 1, Decision::Approve, None)
        .await
        .unwrap();

    // Same callers as the ledger API: nobody anonymous, a patient scope refused.
    let r = t.request_raw(Method::GET, PATH, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let auth = format!("Bearer {tok}");
    let r = t
        .request_raw(Method::GET, PATH, &[("authorization", &auth)], None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    let auth = format!("Bearer {}", t.token);
    let r = t
        .request_raw(Method::GET, PATH, &[("authorization", &auth)], None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let s = &r.json["standard"];
    assert_eq!(s["decided"], 3, "{}", r.text());
    assert_eq!(s["approved"], 2);
    assert_eq!(s["denied"], 1);
    assert_eq!(s["approved_pct"], 66.67);
    assert_eq!(s["denied_pct"], 33.33);
    assert_eq!(s["approved_after_appeal_pct"], 0.0);
    assert_eq!(s["approved_extended_pct"], 0.0);
    assert!(s["avg_hours"].as_f64().unwrap() < 1.0);
    assert!(s["median_hours"].as_f64().unwrap() < 1.0);
    assert_eq!(s["pending"], 0);
    let e = &r.json["expedited"];
    assert_eq!(e["decided"], 0);
    assert_eq!(e["approved_pct"], 0.0);
    assert!(e["avg_hours"].is_null());
    assert_eq!(e["pending"], 1);
    assert_eq!(e["overdue"], 0);

    // A period that received nothing; a bad bound is explained.
    let r = t
        .request_raw(
            Method::GET,
            &format!("{PATH}?from=2000-01-01&to=2000-12-31"),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["standard"]["decided"], 0);
    assert_eq!(r.json["expedited"]["pending"], 0);
    let r = t
        .request_raw(
            Method::GET,
            &format!("{PATH}?from=yesterday"),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // The command line reads the same store.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_fhirgate"))
            .arg("pa-metrics")
            .args(args)
            .env("FHIRGATE_DATA_DIR", t.dir.path())
            .env("FHIRGATE_DEMO", "0")
            .env_remove("FHIRGATE_UPSTREAM_URL")
            .env_remove("FHIRGATE_DATABASE_URL")
            .env_remove("FHIRGATE_CONFIG")
            .envs(t.cli_env())
            .output()
            .unwrap()
    };
    let out = run(&["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["standard"]["decided"], 3);
    assert_eq!(v["expedited"]["pending"], 1);
    let out = run(&["--from", "2000-01-01", "--to", "2099-12-31"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("standard") && text.contains("expedited"),
        "{text}"
    );
    assert!(
        text.contains("66.67") && text.contains("appeal on record"),
        "{text}"
    );
    let bad = run(&["--from", "nope"]);
    assert!(!bad.status.success());
}

#[tokio::test]
async fn extensions_and_appeals_are_counted_as_cms_asks() {
    let t = TestApp::new().await;
    let tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    // pended, extended once (a second extension and a bad one refused), approved
    let slow = submit(&t, &tok, "x-1", "27447", "normal").await;
    let before = t
        .app
        .state
        .pa_get(&slow)
        .await
        .unwrap()
        .unwrap()
        .deadline_ms;
    let rec = extend(
        &t.app,
        &slow,
        "rev-1",
        10,
        "records requested from the provider",
    )
    .await
    .unwrap();
    assert_eq!(rec.deadline_ms, before + 10 * 86_400_000);
    let again = extend(&t.app, &slow, "rev-1", 2, "more").await.unwrap_err();
    assert_eq!(again.status, StatusCode::CONFLICT);
    let too_long = submit(&t, &tok, "x-2", "27447", "normal").await;
    let e = extend(&t.app, &too_long, "rev-1", 15, "x")
        .await
        .unwrap_err();
    assert_eq!(e.status, StatusCode::CONFLICT, "{}", e.message);
    decide(&t.app, &slow, "rev-1", 1, Decision::Approve, None)
        .await
        .unwrap();
    // an approved request cannot be extended or appealed
    assert!(extend(&t.app, &slow, "rev-1", 1, "x").await.is_err());
    assert!(appeal(&t.app, &slow, "rev-1", 1, "x").await.is_err());

    // auto-denied, appealed (pended again, $inquire shows it), then approved
    let denied = submit(&t, &tok, "x-3", "0042T", "normal").await;
    assert!(
        appeal(&t.app, &denied, "rev-2", 1, "").await.is_err(),
        "a reason is required"
    );
    let rec = appeal(&t.app, &denied, "rev-2", 1, "peer-to-peer review requested")
        .await
        .unwrap();
    assert_eq!(rec.state.as_str(), "pended");
    let inq = request("x-3", "0042T", 1, "normal");
    let r = t
        .request_with(&tok, Method::POST, "/fhir/Claim/$inquire", &[], Some(&inq))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let cr = &r.json["entry"][0]["resource"];
    assert_eq!(cr["outcome"], "queued", "{}", r.text());
    assert!(
        r.text().contains("\"A4\""),
        "the item is pended again: {}",
        r.text()
    );
    decide(&t.app, &denied, "rev-2", 1, Decision::Approve, None)
        .await
        .unwrap();

    let m = fhirgate::prior_auth::metrics::load(&t.app.state, None, None)
        .await
        .unwrap();
    let s = &m.standard;
    assert_eq!((s.decided, s.approved, s.pending), (2, 2, 1), "{s:?}");
    assert_eq!(s.approved_extended, 1);
    assert_eq!(s.approved_extended_pct, 50.0);
    assert_eq!(s.approved_after_appeal, 1);
    assert_eq!(s.approved_after_appeal_pct, 50.0);
}

#[tokio::test]
async fn decided_requests_are_kept_for_six_months_and_pended_ones_always() {
    let t = TestApp::new().await;
    let tok = t
        .token_as("clinic-a", "system/Claim.crs", None, None, None, None)
        .await;
    let day = 86_400_000;
    let now = fhirgate::audit::auditor::now_ms();
    let old_pended = submit(&t, &tok, "r-1", "27447", "normal").await;
    let recent = submit(&t, &tok, "r-2", "0042T", "normal").await;
    let ancient = submit(&t, &tok, "r-3", "97110", "normal").await;
    // as if received (and, for two of them, decided) long ago
    for (id, received_days_ago, decided_days_ago) in [
        (&old_pended, 500, None),
        (&recent, 200, Some(190)),
        (&ancient, 500, Some(450)),
    ] {
        let mut r = t.app.state.pa_get(id).await.unwrap().unwrap();
        r.received_ms = now - received_days_ago * day;
        r.deadline_ms = r.received_ms + 7 * day;
        r.decided_ms = decided_days_ago.map(|d| now - d * day);
        t.app.state.pa_save(&r, now).await.unwrap();
    }
    let purged = fhirgate::prior_auth::retention::purge(&t.app)
        .await
        .unwrap();
    assert_eq!(
        purged, 1,
        "only the request decided 450 days ago (retention 400)"
    );
    for (claim, code, kept) in [
        ("r-1", "27447", true),
        ("r-2", "0042T", true),
        ("r-3", "97110", false),
    ] {
        let inq = request(claim, code, 1, "normal");
        let r = t
            .request_with(&tok, Method::POST, "/fhir/Claim/$inquire", &[], Some(&inq))
            .await;
        let want = if kept {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(r.status, want, "{claim}: {}", r.text());
    }
    // less than six months is refused at start
    let dir = tempfile::tempdir().unwrap();
    let cfg = fhirgate::config::Config::from_parts(
        "[prior_auth]\nretention_days = 90\n",
        std::path::Path::new("fhirgate.toml"),
        &[(
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        )],
    )
    .unwrap();
    let e = fhirgate::AppState::open(cfg).await.err().unwrap();
    assert!(e.to_string().contains("retention_days"), "{e}");
}
