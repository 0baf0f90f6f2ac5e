//! Helpers of the audit suite: the ledger row and the decrypted AuditEvent
//! of a seq, access contexts from real tokens, direct read-back calls.

use fhirgate::{
    audit::{ledger::StoredEntry, search_audit},
    error::FhirResult,
    fhir::{FhirRequest, Interaction},
    pipeline::authenticate::authenticate,
    state::StateStore,
};
use serde_json::Value;
use smart_launch::context::AccessContext;

use crate::common::TestApp;

/// The SQLite pool of the test app's state store.
pub fn sqlite(t: &TestApp) -> &sqlx::SqlitePool {
    match &t.app.state {
        StateStore::Sqlite(p) => p,
        StateStore::Postgres(_) => panic!("the audit suite runs on SQLite"),
    }
}

/// The ledger row of `seq`.
pub async fn entry(t: &TestApp, seq: u64) -> StoredEntry {
    let rows = t.app.audit.ledger().entries(seq, 1).await.unwrap();
    assert_eq!(rows.len(), 1, "no ledger entry {seq}");
    rows.into_iter().next().unwrap()
}

/// The access context of a token minted for these claims.
pub async fn ctx_for(
    t: &TestApp,
    scope: &str,
    patient: Option<&str>,
    fhir_user: Option<&str>,
    role: Option<&str>,
) -> AccessContext {
    let token = t.token_for(scope, patient, fhir_user, role).await;
    authenticate(&t.app, Some(&format!("Bearer {token}")))
        .await
        .unwrap()
}

/// The auditor role (`system/AuditEvent.rs`).
pub async fn auditor_ctx(t: &TestApp) -> AccessContext {
    ctx_for(t, "system/AuditEvent.rs", None, None, None).await
}

/// `GET AuditEvent/<id>` as `ctx`.
pub async fn read(t: &TestApp, ctx: &AccessContext, id: &str) -> FhirResult<Value> {
    let mut req = FhirRequest::new(Interaction::Read);
    req.resource_type = Some("AuditEvent".into());
    req.id = Some(id.into());
    search_audit(&t.app, ctx, &req)
        .await
        .map(|r| r.body.unwrap())
}

/// `GET AuditEvent?…` as `ctx`.
pub async fn search(
    t: &TestApp,
    ctx: &AccessContext,
    params: &[(&str, &str)],
) -> FhirResult<Value> {
    let mut req = FhirRequest::new(Interaction::SearchType);
    req.resource_type = Some("AuditEvent".into());
    req.params = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    search_audit(&t.app, ctx, &req)
        .await
        .map(|r| r.body.unwrap())
}

/// The decrypted AuditEvent of `seq` (as the auditor).
pub async fn event(t: &TestApp, seq: u64) -> Value {
    let ctx = auditor_ctx(t).await;
    read(t, &ctx, &seq.to_string()).await.unwrap()
}
