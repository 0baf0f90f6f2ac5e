//! Structured logs carry the request id that the response returns in
//! `X-Request-Id`, and never the query string (it may hold PHI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::logs::Captured;

#[tokio::test]
async fn log_lines_carry_the_request_id_and_no_query() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber());

    let t = common::TestApp::new().await;
    let r = t.get("/fhir/Patient?family=Secretname").await;
    let id = r.header("x-request-id").unwrap();
    let logs = captured.text();
    let line = logs
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no log line with request id {id}:\n{logs}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["span"]["request_id"], id.as_str());
    assert_eq!(v["path"], "/fhir/Patient");
    assert!(
        !logs.contains("Secretname"),
        "query strings must not be logged"
    );
}
