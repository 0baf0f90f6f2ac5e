//! The second-factor store (`mfa::store`) on the state store: sealed TOTP
//! secrets, pending enrollments replacing the confirmed one only when
//! confirmed, replay-refusing acceptance (also under concurrency), recovery
//! codes spent once, phones and their pending codes, fresh step-ups; on
//! SQLite, and on PostgreSQL when the test command provides one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestApp;
use fhirgate::{
    mfa::{
        recovery,
        store::{self, PhonePurpose, SecretBox},
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

    // enrollment waits, pending, for its first code: nothing is confirmed
    store::totp_begin(s, "dr.a", &sealed).await.unwrap();
    assert!(store::totp_get(s, "dr.a").await.unwrap().is_none());
    assert_eq!(
        store::totp_pending(s, "dr.a").await.unwrap().as_deref(),
        Some(sealed.as_str())
    );
    assert!(!store::totp_accept(s, "dr.a", 100).await.unwrap());
    let codes = recovery::generate();
    let digests: Vec<String> = codes.iter().map(|c| recovery::digest(c).unwrap()).collect();
    // confirming: the authenticator and its recovery codes, once
    assert!(store::totp_confirm(s, "dr.a", &sealed, 100, &digests)
        .await
        .unwrap());
    assert!(!store::totp_confirm(s, "dr.a", &sealed, 101, &digests)
        .await
        .unwrap());
    assert!(store::totp_pending(s, "dr.a").await.unwrap().is_none());
    let t = store::totp_get(s, "dr.a").await.unwrap().unwrap();
    assert!(t.confirmed_at.is_some());
    assert_eq!(
        (t.sealed.as_str(), t.last_step),
        (sealed.as_str(), Some(100))
    );
    // the confirming step again is a replay
    assert!(!store::totp_accept(s, "dr.a", 100).await.unwrap());
    assert!(!store::totp_accept(s, "dr.a", 99).await.unwrap());
    // racing requests with one code: exactly one wins
    let wins = futures_join(s, 101).await;
    assert_eq!(wins, 1);

    // recovery codes: each once
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 10);
    assert!(store::recovery_use(s, "dr.a", &digests[3]).await.unwrap());
    assert!(!store::recovery_use(s, "dr.a", &digests[3]).await.unwrap());
    assert!(!store::recovery_use(s, "dr.b", &digests[4]).await.unwrap());
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 9);

    // a replacement started keeps the old authenticator and codes working
    let sealed2 = sb.seal("dr.a", &totp::new_secret()).unwrap();
    store::totp_begin(s, "dr.a", &sealed2).await.unwrap();
    let t = store::totp_get(s, "dr.a").await.unwrap().unwrap();
    assert_eq!(t.sealed, sealed);
    assert!(store::totp_accept(s, "dr.a", 102).await.unwrap());
    assert!(store::recovery_use(s, "dr.a", &digests[4]).await.unwrap());
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 8);
    // a confirmation of another (stale) enrollment changes nothing
    let fresh: Vec<String> = recovery::generate()
        .iter()
        .map(|c| recovery::digest(c).unwrap())
        .collect();
    assert!(!store::totp_confirm(s, "dr.a", &sealed, 103, &fresh)
        .await
        .unwrap());
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 8);
    // confirming it replaces the authenticator and the codes at once
    assert!(store::totp_confirm(s, "dr.a", &sealed2, 7, &fresh)
        .await
        .unwrap());
    let t = store::totp_get(s, "dr.a").await.unwrap().unwrap();
    assert_eq!(
        (t.sealed.as_str(), t.last_step),
        (sealed2.as_str(), Some(7))
    );
    assert!(!store::recovery_use(s, "dr.a", &digests[5]).await.unwrap());
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 10);
    assert!(store::recovery_use(s, "dr.a", &fresh[0]).await.unwrap());
    // the old codes' replacement set works as a set of its own
    store::recovery_set(s, "dr.a", &digests).await.unwrap();
    assert_eq!(store::recovery_left(s, "dr.a").await.unwrap(), 10);
    assert!(!store::recovery_use(s, "dr.a", &fresh[1]).await.unwrap());

    // phones: codes sent wait per purpose; confirming one sets the phone
    let p1 = sb.seal(&store::phone_aad("dr.a"), b"+15555550100").unwrap();
    assert!(sb.open("dr.a", &p1).is_err());
    assert_eq!(store::phone_get(s, "dr.a").await.unwrap(), None);
    store::phone_pending_put(s, "dr.a", PhonePurpose::Enroll, &p1, "sms")
        .await
        .unwrap();
    let got = store::phone_pending_get(s, "dr.a", PhonePurpose::Enroll, 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.sealed.as_str(), got.channel.as_str()),
        (p1.as_str(), "sms")
    );
    assert_eq!(
        store::phone_pending_get(s, "dr.a", PhonePurpose::StepUp, 60_000)
            .await
            .unwrap(),
        None
    );
    assert!(store::phone_confirm(s, "dr.a", &p1).await.unwrap());
    assert!(!store::phone_confirm(s, "dr.a", &p1).await.unwrap());
    assert_eq!(
        store::phone_get(s, "dr.a").await.unwrap().as_deref(),
        Some(p1.as_str())
    );
    store::phone_pending_put(s, "dr.a", PhonePurpose::StepUp, &p1, "call")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert_eq!(
        store::phone_pending_get(s, "dr.a", PhonePurpose::StepUp, 10)
            .await
            .unwrap(),
        None
    );
    assert!(store::phone_pending_clear(s, "dr.a", PhonePurpose::StepUp)
        .await
        .unwrap());
    assert!(!store::phone_pending_clear(s, "dr.a", PhonePurpose::StepUp)
        .await
        .unwrap());
    store::phone_remove(s, "dr.a").await.unwrap();
    assert_eq!(store::phone_get(s, "dr.a").await.unwrap(), None);

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

    store::totp_begin(s, "dr.a", &sealed).await.unwrap();
    store::totp_remove(s, "dr.a").await.unwrap();
    assert!(store::totp_get(s, "dr.a").await.unwrap().is_none());
    assert!(store::totp_pending(s, "dr.a").await.unwrap().is_none());
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
