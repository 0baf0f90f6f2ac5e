//! The ledger's admin API (`/admin/api/ledger/…`), driven with `oneshot`:
//! who may call it (an admin session or a `system/AuditEvent.rs` token),
//! its error answers, proofs checked by an independent RFC 9162 verifier
//! written here from the RFC (SHA-256 from `sha2`, not the project's Merkle
//! code), the same JSON as `fhirgate ledger proof`, and `verify` naming a
//! tampered entry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[allow(dead_code)]
#[path = "admin/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use common::{TestApp, TestResponse};
use fhirgate::audit::{Ledger, NewEntry};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

// --- RFC 9162 §2.1, written from the RFC ------------------------------------

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    sha256(&[&[0u8], data])
}

fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    sha256(&[&[1u8], l, r])
}

/// §2.1.1 MTH over leaf hashes.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// §2.1.3.2: verifying an inclusion proof.
fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    path: &[[u8; 32]],
    root: [u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut snn, mut r) = (index, size - 1, leaf);
    for p in path {
        if snn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == snn {
            r = node_hash(p, &r);
            while fnn & 1 == 0 && fnn != 0 {
                fnn >>= 1;
                snn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnn >>= 1;
        snn >>= 1;
    }
    snn == 0 && r == root
}

/// §2.1.4.2: verifying a consistency proof (first < second).
fn verify_consistency(
    first: u64,
    second: u64,
    first_hash: [u8; 32],
    second_hash: [u8; 32],
    path: &[[u8; 32]],
) -> bool {
    if first == second {
        return path.is_empty() && first_hash == second_hash;
    }
    if first == 0 || first > second || path.is_empty() {
        return false;
    }
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    let (mut fnn, mut snn) = (first - 1, second - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        snn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == snn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnn & 1 == 0 && fnn != 0 {
                fnn >>= 1;
                snn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        snn >>= 1;
    }
    fr == first_hash && sr == second_hash && snn == 0
}

fn h(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array().unwrap().iter().map(h).collect()
}

#[test]
fn the_checker_matches_the_rfc6962_reference_root() {
    let data = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    let leaves: Vec<[u8; 32]> = data
        .iter()
        .map(|d| leaf_hash(&hex::decode(d).unwrap()))
        .collect();
    assert_eq!(
        hex::encode(mth(&leaves)),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
}

// --- the API ----------------------------------------------------------------

async fn append(t: &TestApp, n: usize, tag: &str) -> Vec<u64> {
    let batch: Vec<NewEntry> = (0..n)
        .map(|i| NewEntry {
            request_id: Some(format!("{tag}-{i}")),
            entry: json!({"type": "test", "n": i, "tag": tag}),
        })
        .collect();
    Ledger::new(t.app.state.clone())
        .append(&batch)
        .await
        .unwrap()
}

async fn get_bearer(t: &TestApp, path: &str, token: &str) -> TestResponse {
    let auth = format!("Bearer {token}");
    t.request_raw(Method::GET, path, &[("authorization", &auth)], None)
        .await
}

fn assert_error(r: &TestResponse, status: StatusCode, error: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json["error"], error, "{}", r.text());
    assert!(r.json["error_description"]
        .as_str()
        .is_some_and(|d| !d.is_empty()));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn only_admins_and_auditors_get_in() {
    let t = TestApp::new().await;
    let path = "/admin/api/ledger/checkpoints";
    let r = t.request_raw(Method::GET, path, &[], None).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));

    let r = get_bearer(&t, path, "not-a-token").await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error="invalid_token""#));

    for scope in [
        "system/Patient.rs",
        "patient/AuditEvent.rs",
        "user/AuditEvent.rs",
        "system/AuditEvent.r",
        "system/AuditEvent.rs?agent=x",
    ] {
        let token = t.token_for(scope, Some("p1"), None, None).await;
        let r = get_bearer(&t, path, &token).await;
        assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
        assert!(r
            .header("www-authenticate")
            .unwrap()
            .contains("system/AuditEvent.rs"));
    }
    for scope in [
        "system/AuditEvent.rs",
        "system/AuditEvent.read",
        "system/*.cruds",
    ] {
        let token = t.token_for(scope, None, None, None).await;
        let r = get_bearer(&t, path, &token).await;
        assert_eq!(r.status, StatusCode::OK, "{scope}: {}", r.text());
    }
    // A user token of an administrator, as for erase-patient.
    let token = t
        .token_for(
            "openid fhirUser",
            None,
            Some("Practitioner/a"),
            Some("admin"),
        )
        .await;
    let r = get_bearer(&t, path, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = t
        .token_for(
            "openid fhirUser",
            None,
            Some("Practitioner/c"),
            Some("clinician"),
        )
        .await;
    let r = get_bearer(&t, path, &token).await;
    assert_error(&r, StatusCode::FORBIDDEN, "insufficient_scope");
    // A revoked token is refused at once.
    let token = t.token_for("system/AuditEvent.rs", None, None, None).await;
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    t.app
        .state
        .access_revoke(claims["jti"].as_str().unwrap(), "test-client")
        .await
        .unwrap();
    let r = get_bearer(&t, path, &token).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "invalid_token");

    // Sessions: administrators only.
    let dr = support::signed_in(&t, "dr.a", "clinician", "Practitioner/p1").await;
    let r = support::get_with(&t, path, &dr).await;
    assert_error(&r, StatusCode::FORBIDDEN, "access_denied");
    let admin = support::signed_in(&t, "root", "admin", "Organization/o1").await;
    let r = support::get_with(&t, path, &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r.json["checkpoints"].is_array());
}

#[tokio::test]
async fn bad_parameters_are_explained() {
    let t = TestApp::new().await;
    let token = t.token_for("system/AuditEvent.rs", None, None, None).await;
    append(&t, 3, "p").await;
    for (path, status, error) in [
        (
            "/admin/api/ledger/proof/x",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/admin/api/ledger/proof/-1",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/admin/api/ledger/proof/1?tree_size=1",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/admin/api/ledger/proof/100000",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/admin/api/ledger/proof/0?tree_size=100000",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/admin/api/ledger/consistency?first=1",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/admin/api/ledger/consistency?first=0&second=2",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/admin/api/ledger/consistency?first=3&second=2",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/admin/api/ledger/consistency?first=a&second=2",
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "/admin/api/ledger/consistency?first=1&second=100000",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let r = get_bearer(&t, path, &token).await;
        assert_error(&r, status, error);
    }
}

#[tokio::test]
async fn proofs_from_the_api_verify_independently() {
    let t = TestApp::new().await;
    let token = t.token_for("system/AuditEvent.rs", None, None, None).await;
    let ledger = Ledger::new(t.app.state.clone());
    assert_eq!(append(&t, 13, "a").await, (0..13).collect::<Vec<u64>>());
    let cp = ledger.checkpoint(&t.app.keys).await.unwrap();
    assert_eq!(cp.tree_size, 13);
    append(&t, 8, "b").await;

    // Every entry of the checkpointed tree, against that checkpoint.
    let mut leaves = Vec::new();
    for seq in 0..13u64 {
        let p = get_bearer(
            &t,
            &format!("/admin/api/ledger/proof/{seq}?tree_size=13"),
            &token,
        )
        .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text());
        let j = &p.json;
        assert_eq!(
            (j["leaf_index"].as_u64(), j["tree_size"].as_u64()),
            (Some(seq), Some(13))
        );
        let data = j["leaf_data"].as_str().unwrap();
        let record: Value = serde_json::from_str(data).unwrap();
        assert_eq!(record["seq"], seq);
        assert_eq!(record["request_id"], format!("a-{seq}"));
        let leaf = leaf_hash(data.as_bytes());
        assert_eq!(
            leaf,
            h(&j["leaf_hash"]),
            "the leaf hash is SHA-256(0x00 || leaf_data)"
        );
        let path = hashes(&j["audit_path"]);
        let root = h(&j["root_hash"]);
        assert!(verify_inclusion(seq, 13, leaf, &path, root), "{j}");
        assert_eq!(hex::encode(root), cp.root_hash);
        assert_eq!(j["checkpoint"]["root_hash"], cp.root_hash.as_str());
        if let Some(first) = path.first() {
            let mut bad = path.clone();
            bad[0] = {
                let mut b = *first;
                b[31] ^= 1;
                b
            };
            assert!(!verify_inclusion(seq, 13, leaf, &bad, root));
        }
        leaves.push(leaf);
    }
    assert_eq!(hex::encode(mth(&leaves)), cp.root_hash);

    // Without tree_size: against the latest checkpoint when it covers the
    // entry, else the current tree; the same JSON the CLI prints.
    let p = get_bearer(&t, "/admin/api/ledger/proof/4", &token).await;
    assert_eq!(p.json["tree_size"], 13);
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_fhirgate"))
        .args(["ledger", "proof", "4"])
        .env_clear()
        .env("FHIRGATE_DATA_DIR", t.dir.path())
        .envs(t.cli_env())
        .env("FHIRGATE_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let printed: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        printed, p.json,
        "the API answers what `fhirgate ledger proof` prints"
    );
    let p = get_bearer(&t, "/admin/api/ledger/proof/15", &token).await;
    assert_eq!(p.status, StatusCode::OK);
    let size = p.json["tree_size"].as_u64().unwrap();
    assert!(size >= 21 && p.json["checkpoint"].is_null(), "{}", p.json);
    let data = p.json["leaf_data"].as_str().unwrap();
    assert!(verify_inclusion(
        15,
        size,
        leaf_hash(data.as_bytes()),
        &hashes(&p.json["audit_path"]),
        h(&p.json["root_hash"])
    ));

    // Consistency between every pair of sizes up to 21.
    let all: Vec<[u8; 32]> = {
        let mut v = leaves.clone();
        for seq in 13..21u64 {
            let p = get_bearer(
                &t,
                &format!("/admin/api/ledger/proof/{seq}?tree_size=21"),
                &token,
            )
            .await;
            v.push(h(&p.json["leaf_hash"]));
        }
        v
    };
    for first in 1..=21u64 {
        for second in first..=21u64 {
            let c = get_bearer(
                &t,
                &format!("/admin/api/ledger/consistency?first={first}&second={second}"),
                &token,
            )
            .await;
            assert_eq!(c.status, StatusCode::OK, "{}", c.text());
            let j = &c.json;
            assert_eq!(
                (j["first"].as_u64(), j["second"].as_u64()),
                (Some(first), Some(second))
            );
            let (fh, sh) = (h(&j["first_hash"]), h(&j["second_hash"]));
            assert_eq!(fh, mth(&all[..first as usize]));
            assert_eq!(sh, mth(&all[..second as usize]));
            let path = hashes(&j["consistency_path"]);
            assert!(verify_consistency(first, second, fh, sh, &path), "{j}");
            if first < second {
                let mut bad = fh;
                bad[0] ^= 1;
                assert!(!verify_consistency(first, second, bad, sh, &path));
            }
        }
    }

    // The checkpoint list carries the signed tree heads.
    let r = get_bearer(&t, "/admin/api/ledger/checkpoints", &token).await;
    let list = r.json["checkpoints"].as_array().unwrap();
    let c13 = list.iter().find(|c| c["tree_size"] == 13).unwrap();
    assert_eq!(c13["root_hash"], cp.root_hash.as_str());
    assert_eq!(c13["signature"], cp.signature.as_str());
    assert!(c13["anchor"].is_null());
    assert!(r.json["tree_size"].as_u64().unwrap() >= 21);
}

#[tokio::test]
async fn verify_reports_ok_then_names_the_tampered_entry() {
    let t = TestApp::single_replica("tampers with the SQLite state store's ledger rows", "").await;
    let token = t.token_for("system/AuditEvent.rs", None, None, None).await;
    append(&t, 10, "v").await;
    Ledger::new(t.app.state.clone())
        .checkpoint(&t.app.keys)
        .await
        .unwrap();
    let r = get_bearer(&t, "/admin/api/ledger/verify", &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["ok"], true, "{}", r.json);
    assert!(r.json["entries"].as_u64().unwrap() >= 10);
    assert!(r.json["checkpoints"].as_u64().unwrap() >= 1);
    assert!(r.json["problem"].is_null());

    // An attacker with the database drops the guard and edits one byte.
    let fhirgate::state::StateStore::Sqlite(pool) = &t.app.state else {
        panic!("the test app runs on SQLite");
    };
    sqlx::query("DROP TRIGGER ledger_entries_no_update")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE ledger_entries SET entry = replace(entry, '\"n\":6', '\"n\":7') WHERE seq = 6",
    )
    .execute(pool)
    .await
    .unwrap();
    let r = get_bearer(&t, "/admin/api/ledger/verify", &token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["ok"], false, "{}", r.json);
    assert_eq!(r.json["problem"]["kind"], "entry");
    assert_eq!(r.json["problem"]["seq"], 6);
    assert!(r.json["problem"]["message"]
        .as_str()
        .unwrap()
        .contains("seq 6"));
}

/// Ledger administration is a sensitive operation (issue 11): with step-up
/// required, erasing needs an admin token whose user stepped up within
/// `stepup_max_age_seconds`; without one, 401 and RFC 9470's challenge.
#[tokio::test]
async fn erasing_needs_a_fresh_step_up_when_step_up_is_required() {
    let t =
        TestApp::with_config("[mfa]\nstepup = \"required\"\nstepup_max_age_seconds = 300\n").await;
    let id = t
        .create(json!({"resourceType": "Patient", "name": [{"family": "Erase"}]}))
        .await;
    let body = serde_json::to_vec(&json!({"patient": format!("Patient/{id}")})).unwrap();
    let erase = |token: String| {
        let t = &t;
        let body = body.clone();
        async move {
            t.request(
                Method::POST,
                "/admin/api/ledger/erase-patient",
                &[
                    ("authorization", &format!("Bearer {token}")),
                    ("content-type", "application/json"),
                ],
                Some(body),
            )
            .await
        }
    };
    let admin = ("Practitioner/admin", "admin");
    for token in [
        t.token_with_assurance("openid fhirUser", admin.0, admin.1, &["pwd"], 5)
            .await,
        t.token_with_assurance("openid fhirUser", admin.0, admin.1, &["pwd", "otp"], 400)
            .await,
    ] {
        let r = erase(token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert_eq!(r.json["error"], "insufficient_user_authentication");
        assert_eq!(r.json["max_age"], 300);
        let challenge = r.header("www-authenticate").unwrap();
        assert!(
            challenge.contains(r#"error="insufficient_user_authentication""#),
            "{challenge}"
        );
    }
    let fresh = t
        .token_with_assurance("openid fhirUser", admin.0, admin.1, &["pwd", "otp"], 30)
        .await;
    let r = erase(fresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["keys_destroyed"], 1);
}
