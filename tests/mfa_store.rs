//! The second-factor store (`mfa::store`) on the state store: sealed TOTP
//! secrets, replay-refusing acceptance (also under concurrency), recovery
//! codes spent once, fresh step-ups; on SQLite, and on PostgreSQL when the
//! test command provides one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestApp;
use fhirgate::{
    mfa::{
        recovery,
        store::{self, SecretBox},
        totp,
    },
    state::StateStore,
};

async fn exercise(s: &StateStore) {
    let sb = SecretBox::from_key(&[7u8; 32]);
    let secret = totp::new_secret();
    let sealed = sb.seal("dr.a", &secret).unwrap();
    assert!(!sealed.contains(&hex::encode(&secret)));
    // the user name is bound in: the sealed secret does not open for another
    assert_eq!(sb.open("dr.a", &sealed).unwrap(), secret);
    assert!(sb.open("dr.b", &sealed).is_err());
    assert!(SecretBox::from_key(&[8u8; 32])
        .open("dr.a", &sealed)
        .is_err());
    assert!(sb.open("dr.a", "v1.00.AA").is_err());

    store::totp_begin(s, "dr.a", &sealed).await.unwrap();
    let t = store::totp_get(s, "dr.a").await.unwrap().unwrap();
    assert_eq!((t.confirmed_at, t.last_step), (None, None));
    // the first accepted code confirms; the same step again is a replay
    assert!(store::totp_accept(s, "dr.a", 100).await.unwrap());
    assert!(!store::totp_accept(s, "dr.a", 100).await.unwrap());
    assert!(!store::totp_accept(s, "dr.a", 99).await.unwrap());
    let t = store::totp_get(s, "dr.a").await.unwrap().unwrap();
    assert!(t.confirmed_at.is_some());
    assert_eq!(t.last_step, Some(100));
    // racing requests with one code: exactly one wins
    let wins = futures_join(s, 101).await;
    assert_eq!(wins, 1);
    // re-enrolment starts over, unconfirmed
    store::totp_begin(s, "dr.a", &sealed).await.unwrap();
    let t = store::totp_get(s, "dr.a").await.unwrap().unwrap();
    assert_eq!((t.confirmed_at, t.last_step), (None, None));

    // recovery codes: each once; a new set replaces the old
    let codes = recovery::generate();
    let digests: Vec<String> = codes.iter().map(|c| recovery::digest(c).unwrap()).collect();
    store::recovery_set(s, "dr.a", &digests).await.unwrap();
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 10);
    assert!(store::recovery_use(s, "dr.a", &digests[3]).await.unwrap());
    assert!(!store::recovery_use(s, "dr.a", &digests[3]).await.unwrap());
    assert!(!store::recovery_use(s, "dr.b", &digests[4]).await.unwrap());
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 9);
    let fresh: Vec<String> = recovery::generate()
        .iter()
        .map(|c| recovery::digest(c).unwrap())
        .collect();
    store::recovery_set(s, "dr.a", &fresh).await.unwrap();
    assert!(!store::recovery_use(s, "dr.a", &digests[5]).await.unwrap());
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 10);

    // step-ups are fresh for the given age only, per session
    assert_eq!(store::stepup_fresh(s, "sess1", 60_000).await.unwrap(), None);
    store::stepup_record(s, "sess1", "totp").await.unwrap();
    assert_eq!(
        store::stepup_fresh(s, "sess1", 60_000)
            .await
            .unwrap()
            .as_deref(),
        Some("totp")
    );
    assert_eq!(store::stepup_fresh(s, "sess2", 60_000).await.unwrap(), None);
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert_eq!(store::stepup_fresh(s, "sess1", 10).await.unwrap(), None);

    store::totp_remove(s, "dr.a").await.unwrap();
    assert!(store::totp_get(s, "dr.a").await.unwrap().is_none());
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 0);
}

/// Eight concurrent acceptances of `step`; how many won.
async fn futures_join(s: &StateStore, step: i64) -> usize {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            store::totp_accept(&s, "dr.a", step).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    wins
}

#[tokio::test]
async fn factors_on_sqlite() {
    let t = TestApp::new().await;
    exercise(&t.app.state).await;
}

/// The same on the PostgreSQL the test command starts
/// ([`TestApp::on_postgres`]).
#[tokio::test]
async fn factors_on_postgres() {
    let Some(t) = TestApp::on_postgres("").await else {
        return;
    };
    assert_eq!(t.app.state.backend(), "postgres");
    exercise(&t.app.state).await;
}
