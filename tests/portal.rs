//! The patient consent portal (`/portal`), driven with `oneshot` like a
//! browser: sign in with the form, read the page, post its forms with their
//! CSRF tokens, follow the redirects; and the FHIR API as a clinician app
//! (not exempt from consent) to see the choices take effect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{
    forms::{cookie_pair, csrf_of},
    TestApp, TestResponse,
};
use fhirgate::state::{oauth::ClientRecord, users::User};
use serde_json::{json, Value};

const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const FAR: &str = "2099-12-31";

/// The ids of the Revoke forms on a page.
fn revoke_ids(html: &str) -> Vec<String> {
    html.match_indices(r#"action="/portal/consents/"#)
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('/').unwrap()].to_owned()
        })
        .collect()
}

struct World {
    t: TestApp,
    /// A clinician app's token: client `ehr` (not exempt), Practitioner/dr.
    clin: String,
    /// The same clinician through the app `gc` ("Growth Chart").
    clin_gc: String,
}

async fn world() -> World {
    world_with("").await
}

/// [`world`] with `extra` configuration.
async fn world_with(extra: &str) -> World {
    let t = TestApp::with_config(&format!(
        "[consent]\nexempt_clients = [\"test-client\"]\n{extra}"
    ))
    .await;
    for b in [
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Jones", "given": ["Pat"]}]}),
        json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Other"}]}),
        json!({"resourceType": "Practitioner", "id": "dr",
            "name": [{"prefix": ["Dr."], "given": ["Ada"], "family": "Lee"}]}),
        json!({"resourceType": "Organization", "id": "org1", "name": "Riverside Clinic"}),
        json!({"resourceType": "Condition", "id": "c-psy", "subject": {"reference": "Patient/p1"},
            "meta": {"security": [{"system": ACT, "code": "PSY"}, {"system": ACT, "code": "MH"}]},
            "code": {"text": "depression"}}),
        json!({"resourceType": "Observation", "id": "o-lab", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 99}}),
    ] {
        let path = format!(
            "/fhir/{}/{}",
            b["resourceType"].as_str().unwrap(),
            b["id"].as_str().unwrap()
        );
        let r = t.put(&path, &b).await;
        assert!(r.status.is_success(), "{path}: {}", r.text());
    }
    t.app
        .state
        .client_insert(&ClientRecord {
            client_id: "gc".into(),
            client_name: "Growth Chart".into(),
            client_type: "public".into(),
            secret_hash: None,
            metadata: json!({"redirect_uris": ["https://gc.example/cb"]}),
            created_at: 0,
        })
        .await
        .unwrap();
    for (username, role, fhir_user) in [
        ("pat", "patient", "Patient/p1"),
        ("drlee", "clinician", "Practitioner/dr"),
    ] {
        let u = User {
            username: username.into(),
            role: role.into(),
            fhir_user: fhir_user.into(),
            display_name: format!("Name of {username}"),
            organization: None,
        };
        t.app.state.upsert_user(&u, "pw").await.unwrap();
    }
    let clin = t
        .token_as(
            "ehr",
            "user/*.rs",
            None,
            Some("Practitioner/dr"),
            Some("clinician"),
            None,
        )
        .await;
    let clin_gc = t
        .token_as(
            "gc",
            "user/*.rs",
            None,
            Some("Practitioner/dr"),
            Some("clinician"),
            None,
        )
        .await;
    World { t, clin, clin_gc }
}

impl World {
    async fn fhir(&self, token: &str, path: &str) -> TestResponse {
        self.t
            .request_with(token, Method::GET, path, &[], None)
            .await
    }

    async fn get(&self, path: &str, cookie: &str) -> TestResponse {
        let mut h = Vec::new();
        if !cookie.is_empty() {
            h.push(("cookie", cookie));
        }
        self.t.request_raw(Method::GET, path, &h, None).await
    }

    async fn post(&self, path: &str, cookie: &str, pairs: &[(&str, &str)]) -> TestResponse {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
        if !cookie.is_empty() {
            h.push(("cookie", cookie));
        }
        self.t
            .request_raw(Method::POST, path, &h, Some(body.into_bytes()))
            .await
    }

    /// Signs in through the form; returns the session cookie pair.
    async fn sign_in(&self, username: &str) -> String {
        let form = self.get("/login?next=/portal", "").await;
        let pre = cookie_pair(&form, "fhirgate_csrf").unwrap();
        let csrf = csrf_of(&form.text());
        let r = self
            .post(
                "/login",
                &pre,
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("password", "pw"),
                    ("next", "/portal"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert_eq!(r.header("location").as_deref(), Some("/portal"));
        cookie_pair(&r, "fhirgate_session").unwrap()
    }

    /// Posts a portal form with the page's token and follows the redirect.
    async fn submit(&self, cookie: &str, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
        let page = self.get("/portal", cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let csrf = csrf_of(&page.text());
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        let r = self.post(path, cookie, &all).await;
        if r.status != StatusCode::SEE_OTHER {
            return r;
        }
        let to = r.header("location").unwrap();
        assert!(to.starts_with("/portal?"), "{to}");
        self.get(&to, cookie).await
    }

    async fn consents(&self, patient: &str) -> Vec<Value> {
        self.t.app.consent.index.list(patient).await.unwrap()
    }
}

#[tokio::test]
async fn the_portal_needs_a_signed_in_patient() {
    let w = world().await;
    let r = w.get("/portal", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/login?next=%2Fportal")
    );
    // Posting without a session goes to sign in too; nothing is stored.
    let r = w
        .post("/portal/consents", "", &[("decision", "deny")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(w.consents("Patient/p1").await.is_empty());

    let dr = w.sign_in("drlee").await;
    let r = w.get("/portal", &dr).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let html = r.text();
    assert!(html.contains("<h1>Not allowed</h1>"), "{html}");
    assert!(
        html.contains("The privacy portal is for patients"),
        "{html}"
    );
    // A clinician's own valid form token does not let them post either.
    let landing = w.get("/", &dr).await.text();
    assert!(
        !landing.contains(r#"href="/portal""#),
        "no portal link for clinicians"
    );
    let csrf = csrf_of(&landing);
    let r = w
        .post(
            "/portal/consents",
            &dr,
            &[("csrf", &csrf), ("decision", "deny")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(w.consents("Patient/p1").await.is_empty());

    let pat = w.sign_in("pat").await;
    let landing = w.get("/", &pat).await.text();
    assert!(landing.contains(r#"<a href="/portal">Your privacy choices</a>"#));
    // A crafted link cannot make the page claim something was done.
    let html = w.get("/portal?saved=nope&revoked=x", &pat).await.text();
    assert!(!html.contains("role=\"status\""), "{html}");
}

#[tokio::test]
async fn grant_deny_a_category_then_revoke_it() {
    let w = world().await;
    assert_eq!(
        w.fhir(&w.clin, "/fhir/Condition/c-psy").await.status,
        StatusCode::OK
    );

    let pat = w.sign_in("pat").await;
    let page = w.get("/portal", &pat).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(
        html.contains("You have not made any choices yet."),
        "{html}"
    );
    for label in [
        "Mental health",
        "HIV and AIDS",
        "Substance use (drugs and alcohol)",
        "Treatment: your care",
        "Research",
        "Growth Chart",
        "Riverside Clinic",
        "Dr. Ada Lee",
        "Save my choice",
    ] {
        assert!(html.contains(label), "the form offers {label}");
    }
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("form-action 'self'"));

    // Deny mental-health records to everyone until a date.
    let r = w
        .submit(
            &pat,
            "/portal/consents",
            &[("decision", "deny"), ("category", "MH"), ("end", FAR)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    let sentence = format!("Nobody may see your mental-health records until {FAR}.");
    assert!(
        html.contains("Your choice is saved and applies from now on:"),
        "{html}"
    );
    assert!(html.contains(&sentence), "{html}");
    assert!(html.contains("<td>Active</td>"), "{html}");
    let ids = revoke_ids(&html);
    assert_eq!(ids.len(), 1, "{html}");

    // What was stored: a valid privacy Consent by the patient, indexed.
    let stored = w.consents("Patient/p1").await;
    assert_eq!(stored.len(), 1);
    let c = &stored[0];
    assert_eq!(c["id"], ids[0].as_str());
    assert_eq!(c["status"], "active");
    assert_eq!(c["scope"]["coding"][0]["code"], "patient-privacy");
    assert_eq!(c["category"][0]["coding"][0]["code"], "59284-0");
    assert_eq!(c["patient"]["reference"], "Patient/p1");
    assert_eq!(c["performer"][0]["reference"], "Patient/p1");
    assert_eq!(c["policyRule"]["coding"][0]["code"], "OPTOUT");
    assert_eq!(c["provision"]["type"], "permit");
    assert_eq!(c["provision"]["period"]["end"], FAR);
    assert_eq!(c["provision"]["provision"][0]["type"], "deny");
    assert_eq!(
        c["provision"]["provision"][0]["securityLabel"][0],
        json!({"system": ACT, "code": "MH", "display": "mental health information sensitivity"})
    );
    fhirgate::consent::parse_consent(c).expect("the engine reads it");

    // The clinician app no longer gets the mental-health record; the rest stays.
    let r = w.fhir(&w.clin, "/fhir/Condition/c-psy").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = w.fhir(&w.clin, "/fhir/Condition?patient=p1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text().contains("c-psy"), "{}", r.text());
    assert_eq!(
        w.fhir(&w.clin, "/fhir/Observation/o-lab").await.status,
        StatusCode::OK
    );
    // The patient's own access is never restricted.
    let own =
        w.t.token_as(
            "own-app",
            "patient/*.rs",
            Some("p1"),
            Some("Patient/p1"),
            Some("patient"),
            None,
        )
        .await;
    assert_eq!(
        w.fhir(&own, "/fhir/Condition/c-psy").await.status,
        StatusCode::OK
    );

    // Revoke: the page says so, the button is gone, the record is back.
    let r = w
        .submit(&pat, &format!("/portal/consents/{}/revoke", ids[0]), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(html.contains("You revoked this choice."), "{html}");
    assert!(html.contains(&sentence), "{html}");
    assert!(html.contains("<td>Revoked</td>"), "{html}");
    assert!(revoke_ids(&html).is_empty(), "{html}");
    assert_eq!(w.consents("Patient/p1").await[0]["status"], "inactive");
    let r = w.fhir(&w.clin, "/fhir/Condition/c-psy").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Revoking again changes nothing and says so.
    let r = w
        .submit(&pat, &format!("/portal/consents/{}/revoke", ids[0]), &[])
        .await;
    assert!(
        r.text().contains("This choice was already revoked"),
        "{}",
        r.text()
    );

    // Who looked: the clinician's reads are in the access history, named.
    let html = w.get("/portal", &pat).await.text();
    assert!(html.contains("Who looked at your record"));
    assert!(html.contains("Dr. Ada Lee (clinician)"), "{html}");
    assert!(
        html.contains("Looked at conditions and diagnoses"),
        "{html}"
    );
    assert!(
        html.contains("This privacy portal"),
        "the portal's own writes: {html}"
    );
}

#[tokio::test]
async fn forms_without_the_session_token_are_refused() {
    let w = world().await;
    let pat = w.sign_in("pat").await;
    for csrf in [None, Some("00"), Some(&"ab".repeat(32)[..])] {
        let mut pairs = vec![("decision", "deny"), ("category", "HIV")];
        if let Some(c) = csrf {
            pairs.push(("csrf", c));
        }
        let r = w.post("/portal/consents", &pat, &pairs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(r.text().contains("Form expired"));
    }
    assert!(w.consents("Patient/p1").await.is_empty());

    // Another session's token does not work either.
    let other = w.sign_in("pat").await;
    let foreign = csrf_of(&w.get("/portal", &other).await.text());
    let r = w
        .post(
            "/portal/consents",
            &pat,
            &[("csrf", &foreign), ("decision", "deny")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = w
        .submit(
            &pat,
            "/portal/consents",
            &[("decision", "deny"), ("category", "HIV")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let id = revoke_ids(&r.text()).pop().unwrap();
    let r = w
        .post(&format!("/portal/consents/{id}/revoke"), &pat, &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(w.consents("Patient/p1").await[0]["status"], "active");
}

#[tokio::test]
async fn apps_people_and_purposes_in_plain_words() {
    let w = world().await;
    let pat = w.sign_in("pat").await;

    // Deny one app everything.
    let r = w
        .submit(
            &pat,
            "/portal/consents",
            &[("decision", "deny"), ("app", "Device/gc")],
        )
        .await;
    assert!(
        r.text()
            .contains("The app “Growth Chart” may not see your records."),
        "{}",
        r.text()
    );
    assert_eq!(
        w.fhir(&w.clin_gc, "/fhir/Observation/o-lab").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.fhir(&w.clin, "/fhir/Observation/o-lab").await.status,
        StatusCode::OK
    );

    // Allow only a typed practitioner, for treatment.
    let r = w
        .submit(
            &pat,
            "/portal/consents",
            &[
                ("decision", "allow"),
                ("reference", "Practitioner/dr"),
                ("purpose", "TREAT"),
            ],
        )
        .await;
    assert!(
        r.text()
            .contains("Nobody may see your records, except that Dr. Ada Lee may see your records for treatment."),
        "{}",
        r.text()
    );
    let stored = w.consents("Patient/p1").await;
    let allow = stored
        .iter()
        .find(|c| c["policyRule"]["coding"][0]["code"] == "OPTIN")
        .unwrap();
    assert_eq!(allow["provision"]["type"], "deny");
    let p = &allow["provision"]["provision"][0];
    assert_eq!(p["type"], "permit");
    assert_eq!(p["actor"][0]["reference"]["reference"], "Practitioner/dr");
    assert_eq!(p["purpose"][0]["code"], "TREAT");
    // Dr. Lee (purpose defaults to TREAT for clinicians) still reads.
    assert_eq!(
        w.fhir(&w.clin, "/fhir/Observation/o-lab").await.status,
        StatusCode::OK
    );

    // Mistakes are explained on the form, with the values kept; nothing stored.
    let before = w.consents("Patient/p1").await.len();
    for (pairs, why) in [
        (
            vec![("decision", "deny"), ("reference", "Practitioner/nobody")],
            "There is no Practitioner/nobody here.",
        ),
        (
            vec![("decision", "deny"), ("reference", "Patient/p2")],
            "is not a reference this form understands",
        ),
        (
            vec![("decision", "deny"), ("app", "Device/unknown")],
            "That app is not registered here.",
        ),
        (vec![("decision", "allow")], "pick at least one"),
        (
            vec![("decision", "deny"), ("end", "2001-01-01")],
            "has already passed",
        ),
    ] {
        let r = w.submit(&pat, "/portal/consents", &pairs).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{pairs:?}");
        assert!(r.text().contains(why), "{why}: {}", r.text());
    }
    let r = w
        .submit(
            &pat,
            "/portal/consents",
            &[
                ("decision", "deny"),
                ("reference", "Organization/none"),
                ("category", "SUD"),
            ],
        )
        .await;
    assert!(
        r.text().contains(r#"value="Organization/none""#),
        "the typed value is kept"
    );
    assert!(
        r.text().contains(r#"value="SUD" checked"#),
        "the ticks are kept"
    );
    assert_eq!(w.consents("Patient/p1").await.len(), before);
}

#[tokio::test]
async fn another_patients_consent_cannot_be_revoked() {
    let w = world().await;
    let theirs = json!({"resourceType": "Consent", "id": "theirs", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p2"},
        "provision": {"type": "deny"}});
    // Written through the FHIR API by a consent administrator, so it is indexed.
    let admin =
        w.t.token_as(
            "consent-admin",
            "system/Consent.cruds",
            None,
            None,
            None,
            None,
        )
        .await;
    let r =
        w.t.request_with(
            &admin,
            Method::PUT,
            "/fhir/Consent/theirs",
            &[],
            Some(&theirs),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert_eq!(w.consents("Patient/p2").await.len(), 1);

    let pat = w.sign_in("pat").await;
    let html = w.get("/portal", &pat).await.text();
    assert!(
        html.contains("You have not made any choices yet."),
        "only their own"
    );
    let r = w.submit(&pat, "/portal/consents/theirs/revoke", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(r.text().contains("You have no consent with that id."));
    assert_eq!(w.consents("Patient/p2").await[0]["status"], "active");
    let r = w.submit(&pat, "/portal/consents/..%2Fx/revoke", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// RFC 9162 §2.1.3.2 inclusion check, written here independently of the
/// ledger's own code: leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ l ‖ r).
fn proves(proof: &Value) -> bool {
    use sha2::{Digest, Sha256};
    let unhex = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    let node = |l: &[u8], r: &[u8]| {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().to_vec()
    };
    let mut leaf = Sha256::new();
    leaf.update([0u8]);
    leaf.update(proof["leaf_data"].as_str().unwrap().as_bytes());
    let mut r = leaf.finalize().to_vec();
    if r != unhex(&proof["leaf_hash"]) {
        return false;
    }
    let (mut f, mut s) = (
        proof["leaf_index"].as_u64().unwrap(),
        proof["tree_size"].as_u64().unwrap() - 1,
    );
    for p in proof["audit_path"].as_array().unwrap() {
        let p = unhex(p);
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(&p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, &p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == unhex(&proof["root_hash"])
}

/// The `receipt=<id>` of a portal redirect.
fn receipt_id(location: &str) -> String {
    location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("receipt="))
        .unwrap_or_else(|| panic!("no receipt in {location}"))
        .to_owned()
}

#[tokio::test]
async fn every_change_gives_a_receipt_with_its_ledger_proof_and_it_is_sent() {
    use std::sync::{Arc, Mutex};
    // the operator's notifier: a local webhook receiver
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let hook = axum::Router::new().route(
        "/receipts",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let w = world_with(&format!(
        "[mfa]\nreceipt_webhook = \"http://{addr}/receipts\"\n"
    ))
    .await;
    let pat = w.sign_in("pat").await;
    let page = w.get("/portal", &pat).await;
    let csrf = csrf_of(&page.text());
    let r = w
        .post(
            "/portal/consents",
            &pat,
            &[("csrf", &csrf), ("decision", "deny"), ("category", "MH")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.header("location").unwrap();
    let rid = receipt_id(&to);
    let html = w.get(&to, &pat).await.text();
    assert!(
        html.contains(r#"<p id="receipt">Receipt: Consent/"#),
        "{html}"
    );
    assert!(html.contains(&format!(r#"href="/portal/receipts/{rid}""#)));

    // the download: this Consent version, its ledger entry, a proof that holds
    let d = w.get(&format!("/portal/receipts/{rid}"), &pat).await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(d
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    let receipt: Value = serde_json::from_slice(&d.body).unwrap();
    assert_eq!(receipt["action"], "granted");
    assert_eq!(receipt["patient"], "Patient/p1");
    let id = w.consents("Patient/p1").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(receipt["consent"], format!("Consent/{id}/_history/1"));
    let proof = &receipt["inclusion_proof"];
    assert_eq!(proof["leaf_index"], receipt["ledger_seq"]);
    assert!(proves(proof), "{proof}");
    // the entry proven is the Consent write (pseudonymised, as chained)
    assert!(proof["leaf_data"]
        .as_str()
        .unwrap()
        .contains("\"type\":\"Consent\""));
    // a tampered proof does not hold
    let mut bad = proof.clone();
    bad["leaf_data"] = Value::from(
        proof["leaf_data"]
            .as_str()
            .unwrap()
            .replace("Consent", "Consenx"),
    );
    assert!(!proves(&bad));

    // revoke: a second receipt, for version 2
    let ids = revoke_ids(&w.get("/portal", &pat).await.text());
    let csrf = csrf_of(&w.get("/portal", &pat).await.text());
    let r = w
        .post(
            &format!("/portal/consents/{}/revoke", ids[0]),
            &pat,
            &[("csrf", &csrf)],
        )
        .await;
    let rid2 = receipt_id(&r.header("location").unwrap());
    let d: Value =
        serde_json::from_slice(&w.get(&format!("/portal/receipts/{rid2}"), &pat).await.body)
            .unwrap();
    assert_eq!(d["action"], "revoked");
    assert_eq!(d["consent"], format!("Consent/{id}/_history/2"));
    assert!(proves(&d["inclusion_proof"]));

    // only the patient's own: another user gets the readable 404 / 403
    let dr = w.sign_in("drlee").await;
    assert_ne!(
        w.get(&format!("/portal/receipts/{rid}"), &dr).await.status,
        StatusCode::OK
    );
    assert_eq!(
        w.get("/portal/receipts/00000000000000000000000000000000", &pat)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // both receipts reached the webhook
    for _ in 0..50 {
        if got.lock().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = got.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["id"], receipt["id"]);
    assert_eq!(sent[1]["action"], "revoked");
}

#[tokio::test]
async fn the_research_choice_decides_entry_to_de_identified_exports() {
    let w = world().await;
    let pat = w.sign_in("pat").await;
    let admitted = |w: &World| {
        let index = w.t.app.consent.index.clone();
        async move {
            let found = index.for_patients(&["Patient/p1".into()]).await.unwrap();
            fhirgate::deid::export::admits(
                &found["Patient/p1"],
                fhirgate::deid::config::ResearchPolicy::OptOut,
                fhirgate::oauth::now(),
            )
        }
    };
    let html = w.get("/portal", &pat).await.text();
    assert!(
        html.contains("Your data may be included in de-identified data sets for research."),
        "{html}"
    );
    assert!(html.contains("here, data is included unless you say no"));
    assert!(html.contains("Keep my data out of research"));
    assert!(admitted(&w).await);

    // out: a research Consent that denies, the page says so, the gate keeps p1 out
    let r = w
        .submit(&pat, "/portal/research", &[("choice", "out")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(html.contains("Your research choice is saved"), "{html}");
    assert!(html.contains("Your data is kept out of de-identified data sets for research."));
    assert!(html.contains("This is your choice."));
    assert!(html.contains("Let my de-identified data be used for research"));
    assert!(html.contains(r#"id="receipt""#), "a receipt for the choice");
    assert!(
        html.contains("You have not made any choices yet."),
        "a research choice is not a privacy choice"
    );
    let stored = w.consents("Patient/p1").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["scope"]["coding"][0]["code"], "research");
    assert_eq!(stored[0]["provision"]["type"], "deny");
    assert_eq!(stored[0]["status"], "active");
    assert!(!admitted(&w).await);

    // in: the earlier choice ends, one permitting choice is in force
    let r = w
        .submit(&pat, "/portal/research", &[("choice", "in")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r
        .text()
        .contains("Your data may be included in de-identified data sets for research."));
    let stored = w.consents("Patient/p1").await;
    let active: Vec<&Value> = stored.iter().filter(|c| c["status"] == "active").collect();
    assert_eq!(stored.len(), 2);
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["provision"]["type"], "permit");
    assert!(admitted(&w).await);

    // anything else is a readable refusal
    let r = w
        .submit(&pat, "/portal/research", &[("choice", "maybe")])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // and a clinician is not a patient
    let dr = w.sign_in("drlee").await;
    let r = w.post("/portal/research", &dr, &[("choice", "out")]).await;
    assert!(r.status.is_client_error(), "{}", r.status);
}
