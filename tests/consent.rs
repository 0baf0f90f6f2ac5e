//! Consent enforcement end to end, in process, on the embedded store: every
//! path of issue 4 item 6 under the policies of the leak matrix (deny all,
//! deny a category, deny an actor, permit only a purpose, redact a category,
//! break-the-glass, revoked, expired, deny an organization), asserting that
//! nothing denied appears anywhere in the response bytes or headers; and
//! where the caller's organization comes from (token, user directory,
//! PractitionerRole at issuance, client mapping). The black-box leak matrix on
//! both upstreams is in conformance-tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestApp, TestResponse};
use serde_json::{json, Value};

const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const INLINE: &str =
    "http://hl7.org/fhir/uv/security-label-ds4p/StructureDefinition/extension-inline-sec-label";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";

struct World {
    t: TestApp,
    /// Clinician Practitioner/dr (role clinician, user/*.cruds), client `ehr`.
    clin: String,
    /// The patient p1 as themselves, client `portal-app`.
    pat: String,
    /// A payer backend (system/*.rs), client `payer`.
    payer: String,
}

async fn world() -> World {
    world_with("").await
}

/// The world with more configuration (TOML appended to the `[consent]` section's).
async fn world_with(extra: &str) -> World {
    let t = TestApp::with_config(&format!(
        "[consent]\nexempt_clients = [\"test-client\"]\n{extra}"
    ))
    .await;
    let put = |b: Value| {
        let t = &t;
        async move {
            let path = format!(
                "/fhir/{}/{}",
                b["resourceType"].as_str().unwrap(),
                b["id"].as_str().unwrap()
            );
            let r = t.put(&path, &b).await;
            assert!(r.status.is_success(), "{path}: {}", r.text());
        }
    };
    put(
        json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Onewell"}],
        "address": [{"use": "home", "state": "WA"}]}),
    )
    .await;
    put(json!({"resourceType": "Patient", "id": "p2", "name": [{"family": "Twofold"}]})).await;
    put(json!({"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Lee"}]})).await;
    for (id, p) in [
        ("o-lab", "p1"),
        ("o-lab2", "p1"),
        ("o-p2a", "p2"),
        ("o-p2b", "p2"),
    ] {
        put(
            json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": format!("Patient/{p}")},
            "performer": [{"reference": "Practitioner/dr"}],
            "valueQuantity": {"value": 99, "unit": "mg/dL"}}),
        )
        .await;
    }
    put(
        json!({"resourceType": "Condition", "id": "c-hiv", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": ICD10, "code": "B20", "display": "HIV disease"}]}}),
    )
    .await;
    put(
        json!({"resourceType": "Condition", "id": "c-sud", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": ICD10, "code": "F11.20", "display": "Opioid dependence"}]}}),
    )
    .await;
    put(json!({"resourceType": "Condition", "id": "c-tagged", "subject": {"reference": "Patient/p1"},
        "meta": {"security": [{"system": ACT, "code": "PSY"}]},
        "code": {"text": "tagged-condition"}}))
    .await;
    put(
        json!({"resourceType": "Observation", "id": "o-inline", "status": "final",
        "code": {"text": "screening"}, "subject": {"reference": "Patient/p1"},
        "note": [{"text": "secret-note",
            "extension": [{"url": INLINE, "valueCoding": {"system": ACT, "code": "PSY"}}]}]}),
    )
    .await;
    put(json!({"resourceType": "Provenance", "id": "prov-hiv", "recorded": "2024-01-01T00:00:00Z",
        "target": [{"reference": "Condition/c-hiv"}], "agent": [{"who": {"reference": "Practitioner/dr"}}]}))
    .await;
    put(json!({"resourceType": "Provenance", "id": "prov-lab", "recorded": "2024-01-01T00:00:00Z",
        "target": [{"reference": "Observation/o-lab"}], "agent": [{"who": {"reference": "Practitioner/dr"}}]}))
    .await;
    put(
        json!({"resourceType": "Binary", "id": "bin-hiv", "contentType": "text/plain",
        "securityContext": {"reference": "Condition/c-hiv"}, "data": "aGl2LXJlcG9ydA=="}),
    )
    .await;
    let clin = t
        .token_as(
            "ehr",
            "user/*.cruds",
            None,
            Some("Practitioner/dr"),
            Some("clinician"),
            None,
        )
        .await;
    let pat = t.patient_token("p1").await;
    let payer = t
        .token_as("payer", "system/*.rs", None, None, None, None)
        .await;
    World {
        t,
        clin,
        pat,
        payer,
    }
}

impl World {
    async fn get(&self, token: &str, path: &str) -> TestResponse {
        self.t
            .request_with(token, Method::GET, path, &[], None)
            .await
    }

    async fn get_h(&self, token: &str, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.t
            .request_with(token, Method::GET, path, headers, None)
            .await
    }

    async fn consent(&self, id: &str, provision: Value) {
        self.consent_status(id, "active", provision).await;
    }

    async fn consent_status(&self, id: &str, status: &str, provision: Value) {
        let c = json!({"resourceType": "Consent", "id": id, "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p1"}],
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
            "provision": provision});
        // written through the facade by the patient: the index is updated at once
        let r = self
            .t
            .request_with(
                &self.pat,
                Method::PUT,
                &format!("/fhir/Consent/{id}"),
                &[],
                Some(&c),
            )
            .await;
        assert!(r.status.is_success(), "consent write: {}", r.text());
    }
}

/// Every byte of body and headers, for leak checks (less the `self` link,
/// which echoes the caller's own query).
fn all_bytes(r: &TestResponse) -> String {
    let mut s = r.text();
    if let Some(url) = r.json["link"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["relation"] == "self"))
        .and_then(|l| l["url"].as_str())
    {
        s = s.replace(url, "");
    }
    for (k, v) in &r.headers {
        s.push_str(&format!("\n{k}: {}", v.to_str().unwrap_or("")));
    }
    s
}

fn assert_absent(r: &TestResponse, needles: &[&str]) {
    let all = all_bytes(r);
    for n in needles {
        assert!(!all.contains(n), "leaked {n:?} in:\n{all}");
    }
}

/// The path (below the facade's origin) of a Bundle's `next` link.
fn next_path(r: &TestResponse) -> Option<String> {
    r.json["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .map(|u| u.trim_start_matches("http://fhirgate.test").to_owned())
}

fn ids(r: &TestResponse) -> Vec<String> {
    let mut v: Vec<String> = r.json["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// A hidden read answers exactly like a read of something that never existed.
async fn assert_like_missing(w: &World, token: &str, t: &str, id: &str) {
    let hidden = w.get(token, &format!("/fhir/{t}/{id}")).await;
    let missing = w.get(token, &format!("/fhir/{t}/zz-nothing")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.text());
    assert_eq!(
        hidden.text().replace(id, "X"),
        missing.text().replace("zz-nothing", "X")
    );
    let names = |r: &TestResponse| {
        let mut v: Vec<String> = r
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k != "x-request-id" && k != "x-ledger-seq")
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&hidden), names(&missing));
}

#[tokio::test]
async fn without_consents_part2_hides_sud_and_tags_are_stripped() {
    let w = world().await;
    // Part 2: SUD records need a consent that names them, even for treatment
    assert_like_missing(&w, &w.clin, "Condition", "c-sud").await;
    assert_like_missing(&w, &w.payer, "Condition", "c-sud").await;
    let own = w.get(&w.pat, "/fhir/Condition/c-sud").await;
    assert_eq!(own.status, StatusCode::OK);
    // the search is true for the caller: total, entries, no trace of c-sud
    let s = w.get(&w.clin, "/fhir/Condition?patient=p1").await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(ids(&s), vec!["c-hiv", "c-tagged"]);
    assert_eq!(s.json["total"], 2);
    assert_absent(&s, &["c-sud", "F11", "Opioid"]);
    let count = w
        .get(&w.clin, "/fhir/Condition?patient=p1&_summary=count")
        .await;
    assert_eq!(count.json["total"], 2, "{}", count.text());
    // sensitivity tags are stripped for callers not cleared for them
    let tagged = w.get(&w.clin, "/fhir/Condition/c-tagged").await;
    assert_eq!(tagged.status, StatusCode::OK);
    assert_absent(&tagged, &["\"PSY\""]);
    let etag = tagged.header("etag").unwrap();
    assert!(etag.contains('.'), "ETag over the released bytes: {etag}");
    // the patient sees their own tags
    let mine = w.get(&w.pat, "/fhir/Condition/c-tagged").await;
    assert!(mine.text().contains("\"PSY\""));
}

#[tokio::test]
async fn deny_all_hides_the_patient_on_every_path() {
    let w = world().await;
    w.consent("deny-all", json!({"type": "deny"})).await;
    let hidden = [
        "o-lab", "o-lab2", "c-hiv", "Onewell", "c-tagged", "o-inline", "prov-lab",
    ];
    for token in [&w.clin, &w.payer] {
        assert_like_missing(&w, token, "Observation", "o-lab").await;
        assert_like_missing(&w, token, "Patient", "p1").await;
        for path in [
            "/fhir/Observation/o-lab/_history/1",
            "/fhir/Observation/o-lab/_history",
            "/fhir/Provenance/prov-lab",
            "/fhir/Consent/deny-all",
        ] {
            let r = w.get(token, path).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
            // the answer names only what was asked, like any 404
            assert_absent(
                &r,
                &["Onewell", "mg/dL", "2345-7", "c-hiv", "tagged-condition"],
            );
        }
        for path in [
            "/fhir/Observation?patient=p1",
            "/fhir/Observation",
            "/fhir/Observation?_count=1",
            "/fhir/Patient/p1/Observation",
            "/fhir/Observation/_history",
            "/fhir/Patient?_id=p1,p2",
            "/fhir/Practitioner?_id=dr&_revinclude=Observation:performer",
            "/fhir/Observation?_id=o-lab,o-p2a&_include=Observation:subject",
            "/fhir/Provenance",
        ] {
            let r = w.get(token, path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
            assert_absent(&r, &hidden);
        }
        let count = w.get(token, "/fhir/Observation?_summary=count").await;
        // o-p2a, o-p2b only
        assert_eq!(count.json["total"], 2, "{}", count.text());
        let all = w.get(token, "/fhir/Observation?_total=accurate").await;
        assert_eq!(all.json["total"], 2);
        // POST _search says the same as GET
        let r =
            w.t.request_raw(
                Method::POST,
                "/fhir/Observation/_search",
                &[
                    ("authorization", &format!("Bearer {token}")),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                Some(b"patient=p1".to_vec()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_absent(&r, &hidden);
        assert_eq!(r.json["total"], 0);
    }
    // $everything for the clinician: nothing of p1
    let e = w.get(&w.clin, "/fhir/Patient/p1/$everything").await;
    assert_absent(&e, &hidden);
    // batch: the hidden GET answers like a missing one
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/o-lab"}},
        {"request": {"method": "GET", "url": "Observation/zz-nothing"}},
        {"request": {"method": "GET", "url": "Observation?patient=p1"}},
        {"request": {"method": "GET", "url": "Observation/o-p2a"}}
    ]});
    let b =
        w.t.request_with(&w.clin, Method::POST, "/fhir", &[], Some(&batch))
            .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.text());
    assert_absent(
        &b,
        &["Onewell", "c-hiv", "o-lab2", "o-inline", "tagged-condition"],
    );
    let e = b.json["entry"].as_array().unwrap();
    assert_eq!(
        e[0].to_string().replace("o-lab", "X"),
        e[1].to_string().replace("zz-nothing", "X")
    );
    assert_eq!(e[3]["resource"]["id"], "o-p2a");
    // the patient still sees everything of theirs
    let mine = w.get(&w.pat, "/fhir/Observation?patient=p1").await;
    assert_eq!(ids(&mine), vec!["o-inline", "o-lab", "o-lab2"]);
}

#[tokio::test]
async fn deny_a_category_hides_it_and_what_inherits_from_it() {
    let w = world().await;
    w.consent(
        "no-hiv",
        json!({"type": "permit", "provision": [{"type": "deny", "securityLabel": [{"system": ACT, "code": "HIV"}]}]}),
    )
    .await;
    assert_like_missing(&w, &w.clin, "Condition", "c-hiv").await;
    assert_like_missing(&w, &w.clin, "Provenance", "prov-hiv").await;
    assert_like_missing(&w, &w.clin, "Binary", "bin-hiv").await;
    assert_eq!(
        w.get(&w.clin, "/fhir/Observation/o-lab").await.status,
        StatusCode::OK
    );
    assert_eq!(
        w.get(&w.clin, "/fhir/Provenance/prov-lab").await.status,
        StatusCode::OK
    );
    let s = w.get(&w.clin, "/fhir/Condition?patient=p1").await;
    assert_absent(&s, &["c-hiv", "B20", "HIV disease"]);
    let p = w.get(&w.clin, "/fhir/Provenance").await;
    assert_eq!(ids(&p), vec!["prov-lab"]);
}

#[tokio::test]
async fn deny_an_actor_and_permit_only_a_purpose() {
    let w = world().await;
    w.consent(
        "not-dr",
        json!({"type": "permit", "provision": [{"type": "deny",
            "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Practitioner/dr"}}]}]}),
    )
    .await;
    assert_like_missing(&w, &w.clin, "Observation", "o-lab").await;
    assert_eq!(
        w.get(&w.payer, "/fhir/Observation/o-lab").await.status,
        StatusCode::OK
    );
    // now only payment purposes
    w.consent(
        "not-dr",
        json!({"type": "deny", "provision": [{"type": "permit", "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HPAYMT"}]}]}),
    )
    .await;
    assert_like_missing(&w, &w.payer, "Observation", "o-lab").await;
    let paying = w
        .get_h(
            &w.payer,
            "/fhir/Observation/o-lab",
            &[("x-purpose-of-use", "HPAYMT")],
        )
        .await;
    assert_eq!(paying.status, StatusCode::OK, "{}", paying.text());
    assert_like_missing(&w, &w.clin, "Observation", "o-lab").await;
}

#[tokio::test]
async fn redact_removes_labelled_elements_and_narrative() {
    let w = world().await;
    w.consent(
        "no-psy",
        json!({"type": "permit", "provision": [{"type": "deny", "securityLabel": [{"system": ACT, "code": "PSY"}]}]}),
    )
    .await;
    let r = w.get(&w.clin, "/fhir/Observation/o-inline").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_absent(&r, &["secret-note", "\"PSY\""]);
    assert!(r.text().contains("REDACTED"));
    // a redacted copy may not be written back over the full record
    let mut copy = r.json.clone();
    copy["status"] = json!("amended");
    let back =
        w.t.request_with(
            &w.clin,
            Method::PUT,
            "/fhir/Observation/o-inline",
            &[],
            Some(&copy),
        )
        .await;
    assert_eq!(back.status, StatusCode::FORBIDDEN, "{}", back.text());
    // and the resource labelled PSY as a whole is denied
    assert_like_missing(&w, &w.clin, "Condition", "c-tagged").await;
}

#[tokio::test]
async fn break_the_glass_releases_with_reason_and_notifies_the_patient() {
    let w = world().await;
    w.consent("deny-all", json!({"type": "deny"})).await;
    let btg = [
        ("x-purpose-of-use", "BTG"),
        ("x-break-glass-reason", "unconscious in ED"),
    ];
    let r = w.get_h(&w.clin, "/fhir/Observation/o-lab", &btg).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // no reason, or a role that may not: still hidden
    let no_reason = w
        .get_h(
            &w.clin,
            "/fhir/Observation/o-lab",
            &[("x-purpose-of-use", "BTG")],
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::NOT_FOUND);
    let payer = w.get_h(&w.payer, "/fhir/Observation/o-lab", &btg).await;
    assert_eq!(payer.status, StatusCode::NOT_FOUND);
    // the patient was notified
    let n = w.t.get("/fhir/Communication?subject=Patient/p1").await;
    assert_eq!(n.json["total"], 1, "{}", n.text());
    assert!(n.text().contains("unconscious in ED"));
}

#[tokio::test]
async fn break_the_glass_needs_a_fresh_step_up_when_step_up_is_required() {
    let w = world_with("[mfa]\nstepup = \"required\"\nstepup_max_age_seconds = 300\n").await;
    w.consent("deny-all", json!({"type": "deny"})).await;
    let btg = [
        ("x-purpose-of-use", "BTG"),
        ("x-break-glass-reason", "unconscious in ED"),
    ];
    let scope = "user/*.rs";
    let who = ("Practitioner/dr", "clinician");
    // password only, or a step-up older than five minutes: 401, RFC 9470
    for token in [
        w.t.token_with_assurance(scope, who.0, who.1, &["pwd"], 10)
            .await,
        w.t.token_with_assurance(scope, who.0, who.1, &["pwd", "otp", "mfa"], 301)
            .await,
    ] {
        let r = w.get_h(&token, "/fhir/Observation/o-lab", &btg).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        let challenge = r.header("www-authenticate").unwrap();
        assert!(
            challenge.contains(r#"error="insufficient_user_authentication""#)
                && challenge.contains(r#"max_age="300""#)
                && challenge.contains("acr_values="),
            "{challenge}"
        );
        assert_eq!(r.json["issue"][0]["code"], "security");
        // the same token without breaking the glass still sees the denial as a miss
        let plain = w.get(&token, "/fhir/Observation/o-lab").await;
        assert_eq!(plain.status, StatusCode::NOT_FOUND);
    }
    // nothing was released or notified
    let n = w.t.get("/fhir/Communication?subject=Patient/p1").await;
    assert_eq!(n.json["total"], 0, "{}", n.text());
    // a step-up a minute ago: the glass breaks
    let fresh =
        w.t.token_with_assurance(scope, who.0, who.1, &["pwd", "otp", "mfa"], 60)
            .await;
    let r = w.get_h(&fresh, "/fhir/Observation/o-lab", &btg).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // the request's ledger entry says how the user authenticated
    let seq: u64 = r.header("x-ledger-seq").unwrap().parse().unwrap();
    let ledger = fhirgate::audit::Ledger::new(w.t.app.state.clone());
    let from = seq.saturating_sub(8);
    let rows = ledger.entries(from, 16).await.unwrap();
    let request = rows
        .iter()
        .map(|e| serde_json::from_str::<Value>(&e.entry).unwrap())
        .find(|e| e["kind"] == "rest" && e["amr"] == json!(["pwd", "otp", "mfa"]));
    assert!(
        request.is_some(),
        "no entry with the token's amr near seq {seq}"
    );
}

#[tokio::test]
async fn revocation_and_expiry_take_effect_on_the_next_request() {
    let w = world().await;
    w.consent("deny-all", json!({"type": "deny"})).await;
    assert_like_missing(&w, &w.clin, "Observation", "o-lab").await;
    w.consent_status("deny-all", "inactive", json!({"type": "deny"}))
        .await;
    assert_eq!(
        w.get(&w.clin, "/fhir/Observation/o-lab").await.status,
        StatusCode::OK
    );
    w.consent(
        "deny-all",
        json!({"type": "deny", "period": {"start": "2001-01-01", "end": "2002-01-01"}}),
    )
    .await;
    assert_eq!(
        w.get(&w.clin, "/fhir/Observation/o-lab").await.status,
        StatusCode::OK
    );
}

/// Six Observations `{prefix}-0` … `{prefix}-5` with `code.text` `text`, the
/// even ones about p1 and the odd ones about p2.
async fn put_split_observations(w: &World, prefix: &str, text: &str) {
    for i in 0..6 {
        w.t.put(
            &format!("/fhir/Observation/{prefix}-{i}"),
            &json!({"resourceType": "Observation", "id": format!("{prefix}-{i}"), "status": "final",
                "code": {"text": text}, "subject": {"reference": if i % 2 == 0 {"Patient/p1"} else {"Patient/p2"}}}),
        )
        .await;
    }
}

#[tokio::test]
async fn paging_is_full_sealed_and_bound() {
    let w = world().await;
    put_split_observations(&w, "pgobs", "x").await;
    w.consent("deny-all", json!({"type": "deny"})).await;
    let mut url = "/fhir/Observation?code:text=x&_count=2&_sort=_id".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = w.get(&w.clin, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_absent(&r, &["pgobs-0", "pgobs-2", "pgobs-4", "_offset"]);
        seen.extend(ids(&r));
        pages += 1;
        match next_path(&r) {
            Some(path) => {
                // the true total for this caller, counted ahead, on every page
                assert_eq!(r.json["total"], 3, "{}", r.text());
                assert_eq!(ids(&r).len(), 2, "pages are full");
                // another caller cannot use it
                assert_eq!(w.get(&w.payer, &path).await.status, StatusCode::BAD_REQUEST);
                url = path;
            }
            None => break,
        }
    }
    assert_eq!(seen, vec!["pgobs-1", "pgobs-3", "pgobs-5"]);
    assert!(pages >= 2);
    // `_total=none`: full pages without counting ahead, so no total until
    // the last page (which has seen the whole result)
    let first = w
        .get(
            &w.clin,
            "/fhir/Observation?code:text=x&_count=2&_sort=_id&_total=none",
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(ids(&first), vec!["pgobs-1", "pgobs-3"]);
    assert!(first.json.get("total").is_none(), "{}", first.text());
    let last = w.get(&w.clin, &next_path(&first).unwrap()).await;
    assert_eq!(ids(&last), vec!["pgobs-5"]);
    assert_eq!(last.json["total"], 3, "{}", last.text());
    let bad = w
        .get(&w.clin, "/fhir/Observation?code:text=x&_total=some")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text());
    assert_eq!(bad.json["resourceType"], "OperationOutcome");
    // a consent change invalidates open paging
    let first = w
        .get(&w.clin, "/fhir/Observation?code:text=x&_count=1")
        .await;
    let next = next_path(&first).unwrap();
    w.consent("other", json!({"type": "permit"})).await;
    let stale = w.get(&w.clin, &next).await;
    assert_eq!(stale.status, StatusCode::GONE, "{}", stale.text());
}

/// `consent.count_ahead = 0`: a first page that does not hold the whole
/// result has no total unless the caller asks (`_total=accurate`), as Azure
/// Health Data Services answers; the last page still gives it, and a page
/// that holds everything too.
#[tokio::test]
async fn count_ahead_off_gives_a_total_only_when_asked_or_seen() {
    let w = world_with("count_ahead = 0\n").await;
    put_split_observations(&w, "caobs", "ca").await;
    w.consent("deny-all", json!({"type": "deny"})).await;
    let first = w
        .get(&w.clin, "/fhir/Observation?code:text=ca&_count=2&_sort=_id")
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(ids(&first), vec!["caobs-1", "caobs-3"]);
    assert!(first.json.get("total").is_none(), "{}", first.text());
    let last = w.get(&w.clin, &next_path(&first).unwrap()).await;
    assert_eq!(ids(&last), vec!["caobs-5"]);
    assert_eq!(last.json["total"], 3, "{}", last.text());
    let asked = w
        .get(
            &w.clin,
            "/fhir/Observation?code:text=ca&_count=2&_sort=_id&_total=accurate",
        )
        .await;
    assert_eq!(asked.json["total"], 3, "{}", asked.text());
    let whole = w
        .get(&w.clin, "/fhir/Observation?code:text=ca&_count=10")
        .await;
    assert_eq!(whole.json["total"], 3, "{}", whole.text());
}

#[tokio::test]
async fn oracle_prone_requests_are_refused_and_consents_are_private() {
    let w = world().await;
    for path in [
        "/fhir/Observation?subject:Patient.name=Onewell",
        "/fhir/Patient?_has:Observation:subject:code=2345-7",
        "/fhir/Condition?_security=HIV",
        "/fhir/Condition?_text=HIV",
        "/fhir/Condition?_sort=_security",
    ] {
        let r = w.get(&w.clin, path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text());
    }
    let cond =
        w.t.request_with(
            &w.clin,
            Method::POST,
            "/fhir/Observation",
            &[("if-none-exist", "code=2345-7")],
            Some(
                &json!({"resourceType": "Observation", "status": "final", "code": {"text": "n"},
                "subject": {"reference": "Patient/p2"}}),
            ),
        )
        .await;
    assert_eq!(cond.status, StatusCode::FORBIDDEN);
    w.consent("mine", json!({"type": "permit"})).await;
    assert_like_missing(&w, &w.clin, "Consent", "mine").await;
    assert_eq!(
        w.get(&w.pat, "/fhir/Consent/mine").await.status,
        StatusCode::OK
    );
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
    assert_eq!(
        w.get(&admin, "/fhir/Consent/mine").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn label_lowering_writes_are_refused() {
    let w = world().await;
    let writer =
        w.t.token_as("writer", "system/*.cruds", None, None, None, None)
            .await;
    let lowered = json!({"resourceType": "Condition", "id": "c-tagged",
        "subject": {"reference": "Patient/p1"}, "code": {"text": "tagged-condition"}});
    let r =
        w.t.request_with(
            &writer,
            Method::PUT,
            "/fhir/Condition/c-tagged",
            &[],
            Some(&lowered),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let mut same = lowered.clone();
    same["meta"] = json!({"security": [{"system": ACT, "code": "PSY"}]});
    same["code"] = json!({"text": "tagged-condition, amended"});
    let ok =
        w.t.request_with(
            &writer,
            Method::PUT,
            "/fhir/Condition/c-tagged",
            &[],
            Some(&same),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

#[tokio::test]
async fn explain_names_the_deciding_provision_or_rule() {
    use fhirgate::pipeline::consent::explain::{explain, ExplainInput};
    let w = world().await;
    w.consent(
        "no-hiv",
        json!({"type": "permit", "provision": [{"type": "deny", "securityLabel": [{"system": ACT, "code": "HIV"}]}]}),
    )
    .await;
    let ask = |resource: &str| ExplainInput {
        resource: resource.into(),
        client: "ehr".into(),
        user: Some("Practitioner/dr".into()),
        role: Some("clinician".into()),
        patient: Some("p1".into()),
        ..Default::default()
    };
    let d = explain(&w.t.app, &ask("Condition/c-hiv")).await.unwrap();
    assert_eq!(d["effect"], "deny");
    assert_eq!(d["consent"], "Consent/no-hiv/_history/1");
    assert_eq!(d["basis"], "Consent/no-hiv v1 provision.provision[0]");
    let d = explain(&w.t.app, &ask("Condition/c-sud")).await.unwrap();
    assert_eq!(d["effect"], "deny");
    assert!(d["basis"].as_str().unwrap().contains("us-42cfr2"), "{d}");
    let d = explain(&w.t.app, &ask("Observation/o-lab")).await.unwrap();
    assert_eq!(d["effect"], "permit", "{d}");
    assert!(explain(&w.t.app, &ask("Observation/o-p2a")).await.is_err());
}

#[tokio::test]
async fn old_versions_are_judged_with_todays_labels() {
    let w = world().await;
    let v1 = json!({"resourceType": "Condition", "id": "c-later", "subject": {"reference": "Patient/p1"},
        "code": {"text": "first-version-text"}});
    assert!(w
        .t
        .put("/fhir/Condition/c-later", &v1)
        .await
        .status
        .is_success());
    let mut v2 = v1.clone();
    v2["meta"] = json!({"security": [{"system": ACT, "code": "PSY"}]});
    assert!(w
        .t
        .put("/fhir/Condition/c-later", &v2)
        .await
        .status
        .is_success());
    w.consent(
        "no-psy",
        json!({"type": "permit", "provision": [{"type": "deny", "securityLabel": [{"system": ACT, "code": "PSY"}]}]}),
    )
    .await;
    let old = w.get(&w.clin, "/fhir/Condition/c-later/_history/1").await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "{}", old.text());
    let h = w.get(&w.clin, "/fhir/Condition/c-later/_history").await;
    assert_eq!(h.status, StatusCode::NOT_FOUND, "{}", h.text());
    let th = w.get(&w.clin, "/fhir/Condition/_history").await;
    assert_absent(&th, &["first-version-text", "c-later"]);
    // the patient still sees both versions
    let mine = w.get(&w.pat, "/fhir/Condition/c-later/_history").await;
    assert_eq!(mine.json["total"], 2, "{}", mine.text());
}

#[tokio::test]
async fn the_admin_api_explains_decisions_to_consent_administrators_only() {
    let w = world().await;
    w.consent(
        "no-hiv",
        json!({"type": "permit", "provision": [{"type": "deny", "securityLabel": [{"system": ACT, "code": "HIV"}]}]}),
    )
    .await;
    let admin =
        w.t.token_as("consent-admin", "system/Consent.rs", None, None, None, None)
            .await;
    let url = "/admin/api/consent/explain?resource=Condition/c-hiv&client=ehr&user=Practitioner/dr&role=clinician";
    let r = w.get(&admin, url).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["effect"], "deny");
    assert_eq!(r.json["consent"], "Consent/no-hiv/_history/1");
    // a clinician may not ask; a missing parameter is a clear error
    let r = w.get(&w.clin, url).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["error"], "insufficient_scope");
    let r = w.get(&admin, "/admin/api/consent/explain?client=ehr").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"], "invalid_request");
    let r = w.t.request_raw(Method::GET, url, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_denial_names_the_deciding_consent_in_the_audit() {
    let w = world().await;
    w.consent("deny-all", json!({"type": "deny"})).await;
    let r = w.get(&w.clin, "/fhir/Observation/o-lab").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let seq = r.header("x-ledger-seq").unwrap();
    let auditor =
        w.t.token_as("auditor", "system/AuditEvent.rs", None, None, None, None)
            .await;
    let ev = w.get(&auditor, &format!("/fhir/AuditEvent/{seq}")).await;
    assert_eq!(ev.status, StatusCode::OK, "{}", ev.text());
    // the request's own event (the patient is not named: pseudonym only)
    assert!(
        ev.text().contains("Consent/deny-all/_history/1"),
        "{}",
        ev.text()
    );
    assert!(!ev.text().contains("Patient/p1"), "{}", ev.text());
}

#[tokio::test]
async fn a_consent_can_deny_an_organization_mapped_to_a_client() {
    let t = TestApp::with_config(
        "[consent]\nexempt_clients = [\"test-client\"]\n[payer]\nprovider_clients = { \"clinic-backend\" = \"Organization/clinic\" }\n",
    )
    .await;
    let put = |path: &'static str, b: Value| {
        let t = &t;
        async move { assert!(t.put(path, &b).await.status.is_success()) }
    };
    put(
        "/fhir/Patient/p1",
        json!({"resourceType": "Patient", "id": "p1"}),
    )
    .await;
    put(
        "/fhir/Observation/o1",
        json!({"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"}}),
    )
    .await;
    let pat = t.patient_token("p1").await;
    let consent = json!({"resourceType": "Consent", "id": "no-clinic", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p1"},
        "provision": {"type": "permit", "provision": [{"type": "deny",
            "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Organization/clinic"}}]}]}});
    let r = t
        .request_with(
            &pat,
            Method::PUT,
            "/fhir/Consent/no-clinic",
            &[],
            Some(&consent),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let purpose = [("x-purpose-of-use", "TREAT")];
    let clinic = t
        .token_as("clinic-backend", "system/*.rs", None, None, None, None)
        .await;
    let other = t
        .token_as("other-backend", "system/*.rs", None, None, None, None)
        .await;
    let r = t
        .request_with(&clinic, Method::GET, "/fhir/Observation/o1", &purpose, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = t
        .request_with(&other, Method::GET, "/fhir/Observation/o1", &purpose, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// A Consent of p1 permitting all but `org`'s users.
fn deny_org(org: &str) -> Value {
    json!({"type": "permit", "provision": [{"type": "deny",
        "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": org}}]}]})
}

/// Mints and records a clinician's access token (`user/*.cruds`) for
/// Practitioner/dr through `client`, with an `organization` claim.
async fn clinician_of(t: &TestApp, client: &str, org: Option<&str>) -> String {
    let base = t.app.config.fhir_base();
    let now = fhirgate::oauth::now();
    let jti = smart_launch::token::random_token(16);
    let claims = smart_launch::token::AccessClaims {
        iss: base.clone(),
        sub: "dr".into(),
        aud: base,
        exp: now + 3600,
        iat: now,
        jti: jti.clone(),
        client_id: client.into(),
        scope: "user/*.cruds".into(),
        patient: None,
        encounter: None,
        fhir_user: Some("Practitioner/dr".into()),
        role: Some("clinician".into()),
        purpose_of_use: None,
        organization: org.map(str::to_owned),
        acr: None,
        amr: Vec::new(),
        auth_time: None,
    };
    t.app
        .state
        .access_put(&jti, client, None, now + 3600)
        .await
        .unwrap();
    smart_launch::token::mint_access(&t.app.keys, &claims).unwrap()
}

#[tokio::test]
async fn a_consent_denying_an_organization_hides_the_record_from_its_clinicians() {
    use fhirgate::pipeline::consent::explain::{explain, ExplainInput};
    // `ehr` is also mapped to the hospital: a token's organization comes first
    let w =
        world_with("[payer]\nprovider_clients = { \"ehr\" = \"Organization/hospital\" }\n").await;
    let clinic = clinician_of(&w.t, "ehr", Some("Organization/clinic")).await;
    let hospital = clinician_of(&w.t, "ehr", Some("Organization/hospital")).await;
    w.consent("no-org", deny_org("Organization/clinic")).await;
    assert_like_missing(&w, &clinic, "Observation", "o-lab").await;
    for q in [
        "/fhir/Observation?patient=p1",
        "/fhir/Observation?patient=p1&_summary=count",
        "/fhir/Patient/p1/$everything",
    ] {
        let r = w.get(&clinic, q).await;
        assert_absent(&r, &["o-lab", "o-inline", "Onewell", "\"total\":2"]);
    }
    let count = w
        .get(&clinic, "/fhir/Observation?patient=p1&_summary=count")
        .await;
    assert_eq!(count.json["total"], 0, "{}", count.text());
    // the hospital's clinician, and the other patient's record, stay visible
    let r = w.get(&hospital, "/fhir/Observation/o-lab").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = w.get(&clinic, "/fhir/Observation/o-p2a").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // a Consent naming another organization leaves the clinic's clinician alone
    w.consent("no-org", deny_org("Organization/elsewhere"))
        .await;
    let r = w.get(&clinic, "/fhir/Observation/o-lab").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // sharing only with the hospital: the clinic's clinician is refused
    w.consent(
        "no-org",
        json!({"type": "deny", "provision": [{"type": "permit",
            "actor": [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": "Organization/hospital"}}]}]}),
    )
    .await;
    assert_like_missing(&w, &clinic, "Observation", "o-lab").await;
    let r = w.get(&hospital, "/fhir/Observation/o-lab").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // explain takes the organization as an input (else the client mapping)
    let ask = |org: Option<&str>| ExplainInput {
        resource: "Observation/o-lab".into(),
        client: "ehr".into(),
        user: Some("Practitioner/dr".into()),
        role: Some("clinician".into()),
        organization: org.map(str::to_owned),
        ..Default::default()
    };
    let d = explain(&w.t.app, &ask(Some("Organization/clinic")))
        .await
        .unwrap();
    assert_eq!(d["effect"], "deny", "{d}");
    assert_eq!(d["organization"], "Organization/clinic");
    let d = explain(&w.t.app, &ask(None)).await.unwrap();
    assert_eq!(d["effect"], "permit", "{d}");
    assert_eq!(d["organization"], "Organization/hospital");
    let admin =
        w.t.token_as("consent-admin", "system/Consent.rs", None, None, None, None)
            .await;
    let url = "/admin/api/consent/explain?resource=Observation/o-lab&client=ehr&user=Practitioner/dr&role=clinician&organization=Organization/clinic";
    let r = w.get(&admin, url).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["effect"], "deny", "{}", r.text());
}

const REDIRECT: &str = "https://app.example.org/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra-entropy";

/// Signs `user` in to a public app through the authorization-code flow
/// (approval as the UI does it) and returns the token response.
async fn sign_in(t: &TestApp, user: &fhirgate::state::users::User) -> Value {
    let meta = json!({"client_name": "Org app", "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid fhirUser user/*.rs offline_access"});
    let (reg, _) = fhirgate::oauth::clients::register(&t.app, &meta)
        .await
        .unwrap();
    let client = reg.client_id;
    let challenge = smart_launch::pkce::challenge_of(VERIFIER);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid fhirUser user/*.rs offline_access"),
            ("state", "s"),
            ("aud", "http://fhirgate.test/fhir"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let r = t
        .request_raw(Method::GET, &format!("/auth/authorize?{query}"), &[], None)
        .await;
    let loc = r.header("location").unwrap();
    let pending = loc.trim_start_matches("/auth/continue?req=");
    let back = fhirgate::oauth::authorize::approve(
        &t.app,
        pending,
        user,
        &Default::default(),
        "openid fhirUser user/*.rs offline_access",
        None,
    )
    .await
    .unwrap();
    let code = url::form_urlencoded::parse(back.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", client.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .finish();
    let r = t
        .request_raw(
            Method::POST,
            "/auth/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(body.into_bytes()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json
}

/// The claims of a JWT (unverified: the server made it).
fn payload(jwt: &str) -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn the_organization_is_fixed_at_token_issuance_from_the_directory_or_practitioner_roles() {
    use fhirgate::state::users::User;
    let w = world().await;
    let role = |id: &str, org: &str, active: bool| {
        json!({"resourceType": "PractitionerRole", "id": id, "active": active,
            "practitioner": {"reference": "Practitioner/dr"}, "organization": {"reference": org}})
    };
    for r in [
        role("role-dr", "Organization/clinic", true),
        role("role-old", "Organization/old", false),
    ] {
        let path = format!("/fhir/PractitionerRole/{}", r["id"].as_str().unwrap());
        assert!(w.t.put(&path, &r).await.status.is_success());
    }
    // the user directory's organization, and none (found in the PractitionerRoles)
    let by_role = User {
        username: "dr.role".into(),
        role: "clinician".into(),
        fhir_user: "Practitioner/dr".into(),
        display_name: "Dr Role".into(),
        organization: None,
    };
    let by_directory = User {
        username: "dr.dir".into(),
        display_name: "Dr Directory".into(),
        organization: Some("Organization/hospital".into()),
        ..by_role.clone()
    };
    for u in [&by_role, &by_directory] {
        w.t.app.state.upsert_user(u, "pw").await.unwrap();
        let stored = w.t.app.state.user_get(&u.username).await.unwrap();
        assert_eq!(stored.as_ref(), Some(u));
    }
    let from_role = sign_in(&w.t, &by_role).await;
    let from_directory = sign_in(&w.t, &by_directory).await;
    let role_token = from_role["access_token"].as_str().unwrap().to_owned();
    let directory_token = from_directory["access_token"].as_str().unwrap().to_owned();
    assert_eq!(payload(&role_token)["organization"], "Organization/clinic");
    assert_eq!(
        payload(&directory_token)["organization"],
        "Organization/hospital"
    );
    w.consent("no-clinic", deny_org("Organization/clinic"))
        .await;
    assert_like_missing(&w, &role_token, "Observation", "o-lab").await;
    let r = w.get(&directory_token, "/fhir/Observation/o-lab").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // fixed when issued: ending the role changes the next token, not this one
    assert!(w
        .t
        .put(
            "/fhir/PractitionerRole/role-dr",
            &role("role-dr", "Organization/clinic", false)
        )
        .await
        .status
        .is_success());
    assert_like_missing(&w, &role_token, "Observation", "o-lab").await;
    let again = sign_in(&w.t, &by_role).await;
    let again = again["access_token"].as_str().unwrap().to_owned();
    assert!(payload(&again).get("organization").is_none());
    let r = w.get(&again, "/fhir/Observation/o-lab").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // a refresh is an issuance too: the PractitionerRole is looked up again,
    // the directory's organization (kept in the grant) stays
    for (answer, org) in [
        (&from_role, None),
        (&from_directory, Some("Organization/hospital")),
    ] {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "refresh_token"),
                ("refresh_token", answer["refresh_token"].as_str().unwrap()),
            ])
            .finish();
        let r =
            w.t.request_raw(
                Method::POST,
                "/auth/token",
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(body.into_bytes()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let claims = payload(r.json["access_token"].as_str().unwrap());
        assert_eq!(claims["organization"].as_str(), org, "{claims}");
    }
}
