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
use fhirgate::prior_auth::decide::{decide, Decision};
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
    assert_eq!(r.json["appeals_modelled"], false);

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
        text.contains("66.67") && text.contains("appeals are not modelled"),
        "{text}"
    );
    let bad = run(&["--from", "nope"]);
    assert!(!bad.status.success());
}
