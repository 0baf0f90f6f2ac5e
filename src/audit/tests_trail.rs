//! The audit trail's storage on both backends: group commit of events with
//! their sealed payloads (one transaction), the search SQL, decryption and
//! erasure. Runs on SQLite always and on the PostgreSQL of the test command
//! (`FHIRGATE_TEST_DATABASE_URL`), in a fresh schema.
#![allow(clippy::unwrap_used)]

use super::{
    events::{Builder, HttpFacts},
    pseudonym::Pseudonymizer,
    store::{self, Cmp, Filter},
    vault::{self, Sealed, Vault},
    writer::commit,
    Ledger,
};
use crate::{
    pipeline::disclosure::{Caller, Disclosure},
    state::StateStore,
};

async fn suite(store: &StateStore, keys_dir: &std::path::Path) {
    let ledger = Ledger::new(store.clone());
    let vault = Vault::load_or_create(keys_dir, store.clone()).unwrap();
    let pz = Pseudonymizer::new([3; 32]);
    let b = Builder {
        public_url: "https://gw.example".into(),
        fhir_base: "https://gw.example/fhir".into(),
        pz: pz.clone(),
    };
    let mut d = Disclosure {
        caller: Some(Caller {
            client_id: "app".into(),
            fhir_user: Some("Practitioner/1".into()),
            role: Some("clinician".into()),
            jti: "j".into(),
            purpose: None,
            organization: None,
            acr: Some("urn:x:ial2".into()),
            amr: vec!["pwd".into(), "otp".into()],
        }),
        ..Disclosure::default()
    };
    d.patient("Patient/x").released = vec!["Observation/1".into()];
    d.patient("Patient/y").released = vec!["Condition/2".into()];
    let http = |at| HttpFacts {
        method: "GET".into(),
        path: "/fhir/Observation".into(),
        recorded: at,
        ..HttpFacts::default()
    };
    let first = b.fhir("r1", &http(1_000), None, &d, 200);
    let second = b.fhir("r2", &http(2_000), None, &Disclosure::default(), 404);
    // how the user authenticated is on the request's entry (issue 11)
    let request = first.iter().find(|e| e.entry["kind"] == "rest").unwrap();
    assert_eq!(request.entry["acr"], "urn:x:ial2");
    assert_eq!(request.entry["amr"], serde_json::json!(["pwd", "otp"]));
    assert!(second[0].entry.get("acr").is_none());
    let all: Vec<_> = first.iter().chain(second.iter()).collect();
    let seqs = commit(&ledger, &vault, &all).await.unwrap();
    // 2 × 2 known patients + 1 request event, then 1 for the 404
    assert_eq!(seqs.len(), 6);
    let search = |f: Filter| {
        let store = store.clone();
        async move {
            let (rows, total) = store::search(&store, &f, 10, 0).await.unwrap();
            assert_eq!(rows.len() as i64, total);
            rows.iter().map(|r| r.seq as u64).collect::<Vec<_>>()
        }
    };
    let everything = Filter {
        readable_only: true,
        ..Filter::default()
    };
    let mut newest_first = seqs.clone();
    newest_first.reverse();
    assert_eq!(search(everything.clone()).await, newest_first);
    let x = pz.patient("Patient/x");
    assert_eq!(
        search(Filter {
            pseudonyms: vec![x.clone()],
            ..everything.clone()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        search(Filter {
            agents: vec![pz.agent("Practitioner/1")],
            ..everything.clone()
        })
        .await
        .len(),
        5
    );
    assert_eq!(
        search(Filter {
            entity_types: vec!["Condition".into()],
            ..everything.clone()
        })
        .await
        .len(),
        1
    );
    assert_eq!(
        search(Filter {
            recorded: vec![(Cmp::Ge, 1_500)],
            outcomes: vec!["4".into()],
            ..everything.clone()
        })
        .await,
        vec![seqs[5]]
    );
    assert!(search(Filter {
        entity_types: vec!["%".into()],
        ..everything.clone()
    })
    .await
    .is_empty());
    // Payloads decrypt through the vault, bound to their seq and pseudonym.
    let (rows, _) = store::search(store, &everything, 10, 0).await.unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.pseudonym.as_str()).collect();
    let keys = vault.existing(&names).await.unwrap();
    for r in &rows {
        let sealed = Sealed {
            nonce: r.nonce.clone(),
            ciphertext: r.payload.clone(),
        };
        let plain = vault::open(&keys[&r.pseudonym], r.seq as u64, &r.pseudonym, &sealed).unwrap();
        let ev: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(ev["resourceType"], "AuditEvent");
    }
    // Erasure: x's payload is gone (left out of readable searches), the
    // others are not; the chain verifies.
    assert_eq!(vault.erase(&x).await.unwrap(), 1);
    assert_eq!(search(everything.clone()).await.len(), 4);
    assert!(vault.existing(&[x.as_str()]).await.unwrap().is_empty());
    assert!(ledger.verify(super::tests::keys()).await.unwrap().ok());

    // y's key is kept in memory for sealing; another replica erases it. The
    // next event about y must not be sealed under the erased key: the store
    // refuses that row, and the batch is sealed again under a fresh key.
    let y = pz.patient("Patient/y");
    let replica = Vault::load_or_create(keys_dir, store.clone()).unwrap();
    let kept = vault.sealing_keys(&[y.as_str()]).await.unwrap()[&y]
        .key_id
        .clone();
    assert_eq!(replica.erase(&y).await.unwrap(), 1);
    let mut later = Disclosure {
        caller: d.caller.clone(),
        ..Disclosure::default()
    };
    later.patient("Patient/y").released = vec!["Condition/3".into()];
    let third = b.fhir("r3", &http(3_000), None, &later, 200);
    let third: Vec<_> = third.iter().collect();
    let seqs3 = commit(&ledger, &vault, &third).await.unwrap();
    let (rows, _) = store::search(
        store,
        &Filter {
            pseudonyms: vec![y.clone()],
            ..everything.clone()
        },
        10,
        0,
    )
    .await
    .unwrap();
    // its two events (the access and the consent decision); the earlier
    // ones went with the erased key
    assert_eq!(
        rows.len(),
        2,
        "y's new events are readable, the erased ones are not"
    );
    let fresh = vault.existing(&[y.as_str()]).await.unwrap();
    for r in &rows {
        assert!(seqs3.contains(&(r.seq as u64)));
        assert_ne!(r.key_id, kept);
        let sealed = Sealed {
            nonce: r.nonce.clone(),
            ciphertext: r.payload.clone(),
        };
        assert!(vault::open(&fresh[&y], r.seq as u64, &y, &sealed).is_ok());
    }
    assert!(ledger.verify(super::tests::keys()).await.unwrap().ok());
}

#[tokio::test]
async fn the_trail_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(None, dir.path()).await.unwrap();
    suite(&store, &dir.path().join("keys")).await;
}

#[tokio::test]
async fn the_trail_on_postgres() {
    let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") else {
        eprintln!("skipped: FHIRGATE_TEST_DATABASE_URL not set");
        return;
    };
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let schema = format!("t{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = StateStore::open(Some(&scoped), std::path::Path::new("."))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    suite(&store, &dir.path().join("keys")).await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}
