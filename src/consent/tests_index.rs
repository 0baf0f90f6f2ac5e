//! Tests of the consent decision index, each run on SQLite and (with
//! `FHIRGATE_TEST_DATABASE_URL`) on PostgreSQL: upserts and version order,
//! deletions, the generation-keyed cache across two replicas, unreadable
//! Consents, and polling a real embedded store and a paging mock.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{patient_key, ConsentIndex, IndexError};
use crate::{
    consent::model::ConsentStatus,
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction},
    state::{
        tests::{test_database_url, Schema},
        StateStore,
    },
    upstream::{embedded::EmbeddedStore, RequestContext, Upstream},
};

/// A fresh store; PostgreSQL gets its own schema, dropped by `cleanup`.
struct Fresh {
    store: StateStore,
    _dir: Option<tempfile::TempDir>,
    pg: Option<Schema>,
}

impl Fresh {
    async fn cleanup(self) {
        if let Some(schema) = self.pg {
            schema.drop_schema().await;
        }
    }
}

async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(None, dir.path()).await.unwrap();
    Fresh {
        store,
        _dir: Some(dir),
        pg: None,
    }
}

/// As `state::tests`: skipped without `FHIRGATE_TEST_DATABASE_URL` unless
/// `FHIRGATE_REQUIRE_POSTGRES` makes that a failure.
async fn postgres() -> Option<Fresh> {
    let schema = Schema::create(&test_database_url()?, "c").await;
    Some(Fresh {
        store: schema.open().await,
        _dir: None,
        pg: Some(schema),
    })
}

/// Runs `suite(&StateStore)` as `<suite>::sqlite` and `<suite>::postgres`.
macro_rules! on_both_backends {
    ($($suite:ident),* $(,)?) => {$(
        mod $suite {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let f = super::sqlite().await;
                super::$suite(&f.store).await;
                f.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(f) = super::postgres().await else { return };
                super::$suite(&f.store).await;
                f.cleanup().await;
            }
        }
    )*};
}

on_both_backends!(
    upserts_keep_the_newest_version,
    deletions_leave_tombstones,
    a_change_on_one_replica_is_seen_by_the_other,
    unreadable_consents_are_reported,
    sync_follows_the_embedded_store,
    sync_pages_by_key_and_survives_concurrent_updates,
    racing_replicas_keep_the_newest_version,
);

fn consent(id: &str, version: &str, updated: &str, patient: &str, status: &str) -> Value {
    json!({
        "resourceType": "Consent", "id": id,
        "meta": {"versionId": version, "lastUpdated": updated},
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "patient": {"reference": patient},
        "provision": {"type": "deny"}
    })
}

fn p(s: &str) -> Vec<String> {
    vec![s.to_owned()]
}

async fn generation(index: &ConsentIndex, patient: &str) -> i64 {
    index.for_patients(&p(patient)).await.unwrap()[patient].generation
}

async fn upserts_keep_the_newest_version(store: &StateStore) {
    let index = ConsentIndex::new(store.clone());
    let t1 = "2025-01-01T10:00:00Z";
    assert_eq!(generation(&index, "Patient/1").await, 0);
    assert!(index
        .record_changed(&consent("c1", "1", t1, "Patient/1", "active"))
        .await
        .unwrap());
    assert_eq!(generation(&index, "Patient/1").await, 1);
    // The same version again changes nothing.
    assert!(!index
        .record_changed(&consent("c1", "1", t1, "Patient/1", "active"))
        .await
        .unwrap());
    assert_eq!(generation(&index, "Patient/1").await, 1);
    // v10 beats v9 numerically (not as text), and v9 arriving late is ignored.
    let v10 = consent("c1", "10", "2025-01-01T10:10:00Z", "Patient/1", "inactive");
    index.record(&v10).await.unwrap();
    index
        .record(&consent(
            "c1",
            "9",
            "2025-01-01T10:09:00Z",
            "Patient/1",
            "active",
        ))
        .await
        .unwrap();
    assert_eq!(index.list("Patient/1").await.unwrap(), vec![v10]);
    assert_eq!(generation(&index, "Patient/1").await, 2);

    // Non-numeric versions compare by lastUpdated (as instants: offsets count).
    let u = |v: &str, at: &str| consent("c2", v, at, "Patient/3", "active");
    index
        .record(&u("b7e1", "2025-01-01T12:00:00+02:00"))
        .await
        .unwrap();
    assert!(!index
        .record_changed(&u("a0c3", "2025-01-01T09:59:59Z"))
        .await
        .unwrap());
    assert!(index
        .record_changed(&u("f00d", "2025-01-01T10:00:01Z"))
        .await
        .unwrap());

    // Absolute patient references are normalised, for lookups and the model.
    let abs = consent(
        "c3",
        "1",
        t1,
        "https://ehr.example/fhir/Patient/4/_history/2",
        "active",
    );
    index.record(&abs).await.unwrap();
    let got = index
        .for_patients(&p("https://other.example/Patient/4"))
        .await
        .unwrap();
    let pc = &got["https://other.example/Patient/4"];
    assert_eq!(pc.patient, "Patient/4");
    assert_eq!(pc.consents[0].patient.as_deref(), Some("Patient/4"));
    assert_eq!(index.list("Patient/4").await.unwrap().len(), 1);

    // Moving a Consent to another patient bumps both.
    index
        .record(&consent("c3", "2", t1, "Patient/5", "active"))
        .await
        .unwrap();
    assert_eq!(generation(&index, "Patient/4").await, 2);
    assert_eq!(generation(&index, "Patient/5").await, 1);
    assert!(index.list("Patient/4").await.unwrap().is_empty());

    // What is not a stored Consent is refused, naming no values.
    for bad in [
        json!({"resourceType": "Patient", "id": "1"}),
        json!({"resourceType": "Consent", "status": "active"}),
        json!({"resourceType": "Consent", "id": "a/b"}),
    ] {
        let e = index.record(&bad).await.unwrap_err();
        assert!(matches!(e, IndexError::NotAConsent(_)), "{e}");
        assert_eq!(FhirError::from(e).status.as_u16(), 502);
    }
    // A Consent without a patient is kept but served to nobody.
    let mut none = consent("c4", "1", t1, "Patient/1", "active");
    none.as_object_mut().unwrap().remove("patient");
    assert!(index.record_changed(&none).await.unwrap());
}

async fn deletions_leave_tombstones(store: &StateStore) {
    let index = ConsentIndex::new(store.clone());
    let t = |s: u8| format!("2025-02-01T00:00:{s:02}Z");
    index
        .record(&consent("d1", "1", &t(1), "Patient/1", "active"))
        .await
        .unwrap();
    index.forget("d1").await.unwrap();
    assert!(index.list("Patient/1").await.unwrap().is_empty());
    let pc = &index.for_patients(&p("Patient/1")).await.unwrap()["Patient/1"];
    assert_eq!((pc.generation, pc.consents.len()), (2, 0));
    // Forgetting again, or an unknown id, changes nothing.
    index.forget("d1").await.unwrap();
    index.forget("never-seen").await.unwrap();
    assert_eq!(generation(&index, "Patient/1").await, 2);

    // A delete known by version (from history) blocks stale copies.
    let delete = super::store::Stamp {
        version_id: Some("3".into()),
        last_updated: Some(t(3)),
    };
    index
        .record(&consent("d2", "2", &t(2), "Patient/2", "active"))
        .await
        .unwrap();
    assert!(index.forget_version("d2", &delete).await.unwrap());
    index
        .record(&consent("d2", "2", &t(2), "Patient/2", "active"))
        .await
        .unwrap();
    assert!(index.list("Patient/2").await.unwrap().is_empty());
    // A re-create after the delete (a newer version) comes back.
    index
        .record(&consent("d2", "4", &t(4), "Patient/2", "active"))
        .await
        .unwrap();
    assert_eq!(index.list("Patient/2").await.unwrap().len(), 1);
    // A delete older than the stored version is ignored.
    assert!(!index.forget_version("d2", &delete).await.unwrap());
    assert_eq!(index.list("Patient/2").await.unwrap().len(), 1);
    // A versioned delete of an id never seen leaves a blocking tombstone.
    assert!(!index.forget_version("d3", &delete).await.unwrap());
    index
        .record(&consent("d3", "1", &t(1), "Patient/3", "active"))
        .await
        .unwrap();
    assert!(index.list("Patient/3").await.unwrap().is_empty());
}

async fn a_change_on_one_replica_is_seen_by_the_other(store: &StateStore) {
    let a = ConsentIndex::new(store.clone());
    let b = ConsentIndex::new(store.clone());
    let t = "2025-03-01T00:00:00Z";
    let patients = vec!["Patient/7".to_owned(), "Patient/8".to_owned()];
    let first = a.for_patients(&patients).await.unwrap();
    assert!(first.values().all(|c| c.consents.is_empty()));

    b.record(&consent("r1", "1", t, "Patient/7", "active"))
        .await
        .unwrap();
    let seen = a.for_patients(&patients).await.unwrap();
    assert_eq!(seen["Patient/7"].consents.len(), 1);
    assert_eq!(seen["Patient/7"].consents[0].status, ConsentStatus::Active);
    // Unchanged: served from a's cache (the same Arc).
    let again = a.for_patients(&patients).await.unwrap();
    assert!(Arc::ptr_eq(&seen["Patient/7"], &again["Patient/7"]));

    // Revocation on b is in force on a's very next lookup.
    b.record(&consent("r1", "2", t, "Patient/7", "inactive"))
        .await
        .unwrap();
    let revoked = a.for_patients(&patients).await.unwrap();
    assert_eq!(
        revoked["Patient/7"].consents[0].status,
        ConsentStatus::Inactive
    );
    b.forget("r1").await.unwrap();
    assert!(a.for_patients(&patients).await.unwrap()["Patient/7"]
        .consents
        .is_empty());

    // The cache is bounded.
    let small = ConsentIndex::with_capacity(store.clone(), 2);
    let many: Vec<String> = (20..25).map(|i| format!("Patient/{i}")).collect();
    for m in &many {
        b.record(&consent(
            &format!("m{m}").replace('/', "-"),
            "1",
            t,
            m,
            "active",
        ))
        .await
        .unwrap();
    }
    let got = small.for_patients(&many).await.unwrap();
    assert_eq!(got.len(), 5);
    assert!(got.values().all(|c| c.consents.len() == 1));
    assert!(small.cached() <= 2, "{}", small.cached());
}

async fn unreadable_consents_are_reported(store: &StateStore) {
    let index = ConsentIndex::new(store.clone());
    let t = "2025-04-01T00:00:00Z";
    let mut bad = consent("u1", "1", t, "Patient/9", "active");
    bad["provision"]["type"] = json!("maybe");
    index.record(&bad).await.unwrap();
    let mut inactive = consent("u2", "1", t, "Patient/9", "inactive");
    inactive.as_object_mut().unwrap().remove("scope");
    index.record(&inactive).await.unwrap();
    index
        .record(&consent("u3", "1", t, "Patient/9", "active"))
        .await
        .unwrap();
    let got = index.for_patients(&p("Patient/9")).await.unwrap();
    let pc = &got["Patient/9"];
    assert_eq!(pc.consents.len(), 1);
    assert_eq!(pc.consents[0].id, "u3");
    let ids: Vec<(&str, bool)> = pc
        .unreadable
        .iter()
        .map(|u| (u.consent_id.as_str(), u.may_be_active()))
        .collect();
    assert_eq!(ids, [("u1", true), ("u2", false)]);
    assert!(pc.unreadable[0].error.contains("Consent.provision.type"));
    assert!(pc.has_unreadable_active());
    // Raw bodies are still listed, unreadable ones included.
    assert_eq!(index.list("Patient/9").await.unwrap().len(), 3);
}

async fn racing_replicas_keep_the_newest_version(store: &StateStore) {
    let mut tasks = Vec::new();
    for t in 0..6u32 {
        // Each "replica" writes versions 1..=12 in its own order.
        let index = ConsentIndex::new(store.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..12u32 {
                let v = (i * 5 + t) % 12 + 1;
                let at = format!("2025-06-01T00:00:{v:02}Z");
                let c = consent("race", &v.to_string(), &at, "Patient/77", "active");
                index.record(&c).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let index = ConsentIndex::new(store.clone());
    let listed = index.list("Patient/77").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["meta"]["versionId"], "12");
    let g = generation(&index, "Patient/77").await;
    assert!((1..=12).contains(&g), "{g}");
}

fn ctx(max_page_size: u32) -> RequestContext {
    RequestContext {
        base: "http://fhirgate.test/fhir".into(),
        request_id: "consent-poll-test".into(),
        default_page_size: 50,
        max_page_size,
    }
}

async fn run(up: &dyn Upstream, req: FhirRequest) -> Value {
    up.execute(&req, &ctx(1000)).await.unwrap().body.unwrap()
}

fn request(interaction: Interaction, id: Option<&str>, body: Option<Value>) -> FhirRequest {
    let mut r = FhirRequest::new(interaction);
    r.resource_type = Some("Consent".into());
    r.id = id.map(str::to_owned);
    r.body = body;
    r
}

fn new_consent(patient: &str, status: &str) -> Value {
    let mut c = consent("x", "1", "2025-01-01T00:00:00Z", patient, status);
    let o = c.as_object_mut().unwrap();
    o.remove("id");
    o.remove("meta");
    c
}

async fn sync_follows_the_embedded_store(store: &StateStore) {
    let dir = tempfile::tempdir().unwrap();
    let fhir = EmbeddedStore::open(&dir.path().join("fhir.db"))
        .await
        .unwrap();
    let index = ConsentIndex::new(store.clone());
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = new_consent(&format!("Patient/{}", i % 2), "active");
        let created = run(&fhir, request(Interaction::Create, None, Some(c))).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    // A page size of 2 makes the poller page.
    assert_eq!(index.sync(&fhir, &ctx(2)).await.unwrap(), 5);
    let watermark = index.watermark().await.unwrap().unwrap();
    assert_eq!(index.list("Patient/0").await.unwrap().len(), 3);
    assert_eq!(index.list("Patient/1").await.unwrap().len(), 2);
    assert_eq!(index.sync(&fhir, &ctx(2)).await.unwrap(), 0);

    // Revoke one and delete another directly in the store (not through the facade).
    let current = run(&fhir, request(Interaction::Read, Some(&ids[0]), None)).await;
    let mut revoked = current.clone();
    revoked["status"] = json!("inactive");
    fhir.execute(
        &request(Interaction::Update, Some(&ids[0]), Some(revoked)),
        &ctx(50),
    )
    .await
    .unwrap();
    fhir.execute(&request(Interaction::Delete, Some(&ids[1]), None), &ctx(50))
        .await
        .unwrap();
    let before = index.for_patients(&p("Patient/1")).await.unwrap();
    assert_eq!(index.sync(&fhir, &ctx(2)).await.unwrap(), 2);
    assert!(index.watermark().await.unwrap().unwrap() > watermark);
    let after = index
        .for_patients(&["Patient/0".into(), "Patient/1".into()])
        .await
        .unwrap();
    let p0 = &after["Patient/0"];
    let revoked = p0.consents.iter().find(|c| c.id == ids[0]).unwrap();
    assert_eq!(revoked.status, ConsentStatus::Inactive);
    assert_eq!(revoked.version.as_deref(), Some("2"));
    assert_eq!(after["Patient/1"].consents.len(), 1);
    assert!(after["Patient/1"].generation > before["Patient/1"].generation);
    assert_eq!(index.sync(&fhir, &ctx(2)).await.unwrap(), 0);
}

/// An upstream with offset paging that, after serving the first page,
/// updates the first Consent (moving it to the end of the order), as a
/// concurrent writer would; it has no history (404).
struct Shifty {
    consents: std::sync::Mutex<Vec<Value>>,
    served: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Upstream for Shifty {
    async fn execute(&self, req: &FhirRequest, ctx: &RequestContext) -> FhirResult<FhirResponse> {
        if req.interaction != Interaction::SearchType {
            return Err(FhirError::not_found("no history here"));
        }
        let ge = req
            .param("_lastUpdated")
            .map(|v| v.trim_start_matches("ge").to_owned());
        let count: usize = req.param("_count").unwrap().parse().unwrap();
        let offset: usize = req.param("_offset").map_or(0, |o| o.parse().unwrap());
        let mut all = self.consents.lock().unwrap();
        let mut hits: Vec<Value> = all
            .iter()
            .filter(|c| {
                ge.as_deref()
                    .is_none_or(|g| c["meta"]["lastUpdated"].as_str().unwrap() >= g)
            })
            .cloned()
            .collect();
        hits.sort_by(|a, b| {
            a["meta"]["lastUpdated"]
                .as_str()
                .cmp(&b["meta"]["lastUpdated"].as_str())
        });
        let page: Vec<Value> = hits.iter().skip(offset).take(count).cloned().collect();
        let mut link = vec![];
        if offset + count < hits.len() {
            let mut q: Vec<String> = req
                .params
                .iter()
                .filter(|(k, _)| k != "_offset")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            q.push(format!("_offset={}", offset + count));
            link.push(
                json!({"relation": "next", "url": format!("{}/Consent?{}", ctx.base, q.join("&"))}),
            );
        }
        if self
            .served
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            == 0
        {
            let first = &mut all[0];
            first["meta"]["versionId"] = json!("2");
            first["meta"]["lastUpdated"] = json!("2025-05-01T00:00:09.000Z");
            first["status"] = json!("inactive");
        }
        let entry: Vec<Value> = page
            .into_iter()
            .map(|r| json!({"resource": r, "search": {"mode": "match"}}))
            .collect();
        Ok(FhirResponse::ok(
            json!({"resourceType": "Bundle", "type": "searchset", "link": link, "entry": entry}),
        ))
    }

    fn name(&self) -> &'static str {
        "shifty"
    }
}

async fn sync_pages_by_key_and_survives_concurrent_updates(store: &StateStore) {
    let consents: Vec<Value> = (0..5)
        .map(|i| {
            consent(
                &format!("s{i}"),
                "1",
                &format!("2025-05-01T00:00:0{i}.000Z"),
                "Patient/1",
                "active",
            )
        })
        .collect();
    let up = Shifty {
        consents: std::sync::Mutex::new(consents),
        served: 0.into(),
    };
    let index = ConsentIndex::new(store.clone());
    // Offset paging would skip s2 (shifted onto the first page's slot).
    assert_eq!(index.sync(&up, &ctx(2)).await.unwrap(), 6);
    let pc = &index.for_patients(&p("Patient/1")).await.unwrap()["Patient/1"];
    assert_eq!(pc.consents.len(), 5);
    let s0 = pc.consents.iter().find(|c| c.id == "s0").unwrap();
    assert_eq!(s0.status, ConsentStatus::Inactive);
    assert_eq!(
        index.watermark().await.unwrap().as_deref(),
        Some("2025-05-01T00:00:09.000Z")
    );
}

#[test]
fn patient_references_normalise() {
    for (r, want) in [
        ("Patient/1", Some("Patient/1")),
        ("Patient/1/_history/3", Some("Patient/1")),
        ("https://x.example/fhir/Patient/a-1", Some("Patient/a-1")),
        ("fhir/Patient/1", None),
        ("Group/1", None),
        ("urn:uuid:6f1c", None),
        ("Patient/", None),
        ("#p1", None),
    ] {
        assert_eq!(patient_key(r).as_deref(), want, "{r}");
    }
}

#[test]
fn newer_compares_numbers_then_instants() {
    use super::store::{is_newer, Stamp};
    let s = |v: Option<&str>, t: Option<&str>| Stamp {
        version_id: v.map(Into::into),
        last_updated: t.map(Into::into),
    };
    assert!(is_newer(&s(Some("10"), None), &s(Some("9"), None)));
    assert!(!is_newer(
        &s(Some("9"), Some("2030-01-01T00:00:00Z")),
        &s(Some("10"), None)
    ));
    assert!(is_newer(
        &s(Some("b"), Some("2025-01-01T00:00:01Z")),
        &s(Some("a"), Some("2025-01-01T00:00:00Z"))
    ));
    assert!(!is_newer(
        &s(Some("b"), Some("2025-01-01T01:00:00+02:00")),
        &s(Some("a"), Some("2025-01-01T00:00:00Z"))
    ));
    assert!(is_newer(&s(None, None), &s(Some("1"), None)));
}

/// On a SQLite file the per-request reads (the generations of
/// `for_patients`, the epoch) run in place on this thread (`state::inline`)
/// and still see a change committed a moment before by anyone.
#[tokio::test]
async fn generations_and_the_epoch_are_read_in_place_and_current() {
    let f = sqlite().await;
    let StateStore::Sqlite(pool) = &f.store else {
        unreachable!()
    };
    let engine = crate::consent::engine::ConsentEngine::open(
        crate::consent::policy::Policy::starter(crate::consent::policy::BasePolicy::OptOut),
        f.store.clone(),
        Vec::new(),
    )
    .await
    .unwrap();
    let other = ConsentIndex::new(f.store.clone());
    let patients = vec!["Patient/5".to_owned()];
    assert!(
        engine.index.for_patients(&patients).await.unwrap()["Patient/5"]
            .consents
            .is_empty()
    );
    assert!(
        crate::state::inline::open_here(pool),
        "read on this thread's connection, not a pooled one"
    );
    let before = engine.epoch().await.unwrap();
    let t = "2025-03-01T00:00:00Z";
    other
        .record(&consent("g1", "1", t, "Patient/5", "active"))
        .await
        .unwrap();
    assert_eq!(
        engine.index.for_patients(&patients).await.unwrap()["Patient/5"]
            .consents
            .len(),
        1
    );
    assert!(engine.epoch().await.unwrap() > before);
    other
        .record(&consent("g1", "2", t, "Patient/5", "inactive"))
        .await
        .unwrap();
    assert_eq!(
        engine.index.for_patients(&patients).await.unwrap()["Patient/5"].consents[0].status,
        ConsentStatus::Inactive
    );
}
