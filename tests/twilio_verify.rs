//! The Twilio Verify adapter (`mfa::twilio`) against a local server that
//! speaks the Verify v2 API's request and response shapes
//! (`tests/common/verify.rs`): form-encoded `To`/`Channel` and `To`/`Code`
//! under `/v2/Services/{sid}/…`, HTTP Basic with the account SID and token,
//! JSON verification resources, and the API's error bodies (20003
//! unauthorized, 20404 no pending verification, 60200 invalid parameter,
//! 60203 max send attempts). No SMS is sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/verify.rs"]
mod verify;

use std::collections::HashMap;

use fhirgate::mfa::twilio::{Channel, Check, Verifier, VerifyError};
use verify::{sent_code, serve, ACCOUNT, SERVICE, TOKEN};

fn verifier(base: &str, token: &str) -> Verifier {
    Verifier::new(reqwest::Client::new(), base, SERVICE, ACCOUNT, token)
}

#[tokio::test]
async fn a_code_is_sent_then_approved_once() {
    let (base, s) = serve().await;
    let v = verifier(&format!("{base}/"), TOKEN);
    v.start("+15555550100", Channel::Sms).await.unwrap();
    let code = sent_code(&s, "+15555550100");
    assert_eq!(
        v.check("+15555550100", "000000").await.unwrap(),
        Check::Wrong
    );
    assert_eq!(
        v.check("+15555550100", &code).await.unwrap(),
        Check::Approved
    );
    // used: no pending verification any more (the API's 404)
    assert_eq!(
        v.check("+15555550100", &code).await.unwrap(),
        Check::NoPending
    );
    // the wire: the fields the API takes, nothing else
    let seen = &s.lock().unwrap().seen;
    assert_eq!(seen[0].0, "Verifications");
    assert_eq!(
        seen[0].1,
        HashMap::from([
            ("To".to_owned(), "+15555550100".to_owned()),
            ("Channel".to_owned(), "sms".to_owned())
        ])
    );
    assert_eq!(seen[1].0, "VerificationCheck");
    assert_eq!(
        seen[1].1,
        HashMap::from([
            ("To".to_owned(), "+15555550100".to_owned()),
            ("Code".to_owned(), "000000".to_owned())
        ])
    );
}

#[tokio::test]
async fn voice_channel_exhausted_checks_and_sends_and_bad_input() {
    let (base, s) = serve().await;
    let v = verifier(&base, TOKEN);
    v.start("+15555550101", Channel::Call).await.unwrap();
    assert_eq!(s.lock().unwrap().seen[0].1["Channel"], "call");
    // five wrong checks close the verification
    for _ in 0..5 {
        assert_eq!(
            v.check("+15555550101", "999999").await.unwrap(),
            Check::Wrong
        );
    }
    assert_eq!(
        v.check("+15555550101", "999999").await.unwrap(),
        Check::NoPending
    );
    // sends are limited by the provider: 429 is TooMany
    for _ in 0..4 {
        v.start("+15555550101", Channel::Sms).await.unwrap();
    }
    assert!(matches!(
        v.start("+15555550101", Channel::Sms).await,
        Err(VerifyError::TooMany)
    ));
    // a number the API refuses: its code and message come through
    match v.start("5550100", Channel::Sms).await {
        Err(VerifyError::Refused { status, code, .. }) => {
            assert_eq!((status, code), (400, 60200));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_credentials_and_an_unreachable_provider_are_errors() {
    let (base, _) = serve().await;
    match verifier(&base, "wrong")
        .start("+15555550102", Channel::Sms)
        .await
    {
        Err(VerifyError::Refused {
            status,
            code,
            message,
        }) => {
            assert_eq!((status, code), (401, 20003));
            assert!(!message.contains("wrong"));
        }
        other => panic!("{other:?}"),
    }
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert!(matches!(
        verifier(&format!("http://{closed}"), TOKEN)
            .check("+15555550102", "123456")
            .await,
        Err(VerifyError::Unavailable(_))
    ));
}
