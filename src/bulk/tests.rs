//! The `bulk_job` store suite, run on both state-store backends from
//! `state::tests::suite`: insert, read, claim with a lease (one winner),
//! renewal, checkpoint, finish, delete, expiry sweep.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::jobs::{self, status, FileEntry, Job, Level, Progress, Spec, StoredCaller};
use crate::state::StateStore;

fn job(id: &str) -> Job {
    Job {
        id: id.into(),
        client_id: "c1".into(),
        status: status::QUEUED.into(),
        request: "http://x/fhir/$export".into(),
        spec: Spec {
            level: Level::Group("g1".into()),
            types: vec!["Patient".into()],
            since: None,
            elements: vec![],
            type_filters: vec![("Observation".into(), "code=1".into())],
            patients: vec![],
            task: Default::default(),
            deid: None,
        },
        caller: StoredCaller {
            client_id: "c1".into(),
            scope: "system/*.rs".into(),
            patient: None,
            fhir_user: None,
            role: None,
            jti: "j".into(),
            expires_at: 1,
            purpose_of_use: None,
            organization: None,
        },
        transaction_time: "2024-01-01T00:00:00.000Z".into(),
        progress: Progress::default(),
        last_poll: None,
        finished: None,
    }
}

/// The generic suite.
pub(crate) async fn suite(store: &StateStore) {
    let id = format!("j{}", uuid::Uuid::new_v4().simple());
    jobs::insert(store, &job(&id), 1000).await.unwrap();
    let got = jobs::get(store, &id).await.unwrap().unwrap();
    assert_eq!(got.spec, job(&id).spec);
    assert_eq!(got.caller.context().unwrap().client_id, "c1");
    assert!(jobs::count_active(store).await.unwrap() >= 1);
    // Two workers: one wins the lease.
    let a = jobs::claim(store, "wa", 2000, 500).await.unwrap();
    assert_eq!(a.map(|j| j.id), Some(id.clone()));
    let b = jobs::claim(store, "wb", 2100, 500).await.unwrap();
    assert!(b.is_none_or(|j| j.id != id));
    assert!(jobs::renew(store, &id, "wa", 3000).await.unwrap());
    assert!(!jobs::renew(store, &id, "wb", 3000).await.unwrap());
    let mut p = Progress {
        types: vec!["Patient".into()],
        ..Progress::default()
    };
    p.done.push("Patient".into());
    p.output.push(FileEntry {
        type_: "Patient".into(),
        name: "Patient-1.ndjson".into(),
        count: 3,
    });
    assert!(jobs::checkpoint(store, &id, "wa", &p).await.unwrap());
    // The lease runs out: another worker takes over with the checkpoint.
    let taken = jobs::claim(store, "wb", 3001, 500).await.unwrap().unwrap();
    assert_eq!(taken.progress, p);
    assert!(!jobs::renew(store, &id, "wa", 4000).await.unwrap());
    assert!(jobs::finish(store, &id, "wb", status::COMPLETE, &p, 3100)
        .await
        .unwrap());
    let done = jobs::get(store, &id).await.unwrap().unwrap();
    assert_eq!(done.status, status::COMPLETE);
    assert_eq!(done.finished, Some(3100));
    jobs::polled(store, &id, 3200).await.unwrap();
    assert_eq!(
        jobs::get(store, &id).await.unwrap().unwrap().last_poll,
        Some(3200)
    );
    let expired = jobs::expired(store, 3101).await.unwrap();
    assert!(expired.contains(&id));
    jobs::mark_deleted(store, &id, 3300).await.unwrap();
    assert_eq!(
        jobs::get(store, &id).await.unwrap().unwrap().status,
        status::DELETED
    );
    assert!(!jobs::expired(store, 9999).await.unwrap().contains(&id));
}
