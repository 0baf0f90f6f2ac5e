use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P384_SHA384};
use serde_json::json;

use super::*;
use crate::udap::trust::test_pki::*;

fn crls() -> CrlCache {
    CrlCache::new(Duration::from_secs(2), Duration::from_secs(60))
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "client-1", "aud": "https://fhir.example.org/auth/register", "exp": NOW + 300})
}

fn sign(alg: Algorithm, key: &KeyPair, x5c: Vec<String>, claims: &Value) -> String {
    let header = Header {
        alg,
        x5c: Some(x5c),
        ..Header::default()
    };
    let pem = key.serialize_pem();
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        _ => EncodingKey::from_ec_pem(pem.as_bytes()),
    }
    .unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn unsigned(header: &Value, claims: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

async fn check(jwt: &str, pki: &Pki) -> Result<UdapJwt, TrustError> {
    verify(jwt, &pki.anchors(), UDAP_ALGS, NOW, &crls()).await
}

#[tokio::test]
async fn rs256_by_the_leaf_verifies() {
    let key = rsa_key();
    let pki = Pki::with_leaf(leaf_params(ISS), rsa_key());
    for alg in [Algorithm::RS256, Algorithm::RS384] {
        let jwt = sign(alg, &key, pki.x5c(), &claims());
        let ok = check(&jwt, &pki).await.unwrap();
        assert_eq!(ok.claims.get("sub"), Some(&json!("client-1")));
        assert_eq!(ok.chain.san_uris, vec![ISS.to_owned()]);
        assert!(ok.header.contains_key("x5c"));
    }
}

#[tokio::test]
async fn es256_and_es384_by_the_leaf_verify() {
    let key = ec_key();
    let pem = key.serialize_pem();
    let pki = Pki::with_leaf(leaf_params(ISS), KeyPair::from_pem(&pem).unwrap());
    let jwt = sign(Algorithm::ES256, &key, pki.x5c(), &claims());
    check(&jwt, &pki).await.unwrap();

    let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let pem = key.serialize_pem();
    let pki = Pki::with_leaf(leaf_params(ISS), KeyPair::from_pem(&pem).unwrap());
    let jwt = sign(Algorithm::ES384, &key, pki.x5c(), &claims());
    check(&jwt, &pki).await.unwrap();
    // A P-384 key cannot back ES256.
    let jwt = unsigned(&json!({"alg": "ES256", "x5c": pki.x5c()}), &claims(), "AA");
    let err = check(&jwt, &pki).await;
    assert!(matches!(err, Err(TrustError::Alg(_))), "{err:?}");
    // Nor can an EC key back RS256.
    let jwt = unsigned(&json!({"alg": "RS256", "x5c": pki.x5c()}), &claims(), "AA");
    let err = check(&jwt, &pki).await;
    assert!(matches!(err, Err(TrustError::Alg(_))), "{err:?}");
}

#[tokio::test]
async fn tampered_signature_or_claims_is_a_bad_signature() {
    let key = ec_key();
    let pki = Pki::with_leaf(
        leaf_params(ISS),
        KeyPair::from_pem(&key.serialize_pem()).unwrap(),
    );
    let jwt = sign(Algorithm::ES256, &key, pki.x5c(), &claims());
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{input}.{flipped}{}", &sig[1..]);
    assert_eq!(
        check(&tampered, &pki).await.unwrap_err(),
        TrustError::BadSignature
    );

    let (header, _) = input.split_once('.').unwrap();
    let mut other = claims();
    other["sub"] = json!("someone-else");
    let swapped = format!(
        "{header}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(other.to_string())
    );
    assert_eq!(
        check(&swapped, &pki).await.unwrap_err(),
        TrustError::BadSignature
    );
}

#[tokio::test]
async fn signature_by_another_key_than_the_leaf_is_bad() {
    let pki = Pki::new();
    let jwt = sign(Algorithm::ES256, &ec_key(), pki.x5c(), &claims());
    assert_eq!(
        check(&jwt, &pki).await.unwrap_err(),
        TrustError::BadSignature
    );
}

#[tokio::test]
async fn alg_none_and_hs256_are_refused() {
    let pki = Pki::new();
    let none = unsigned(&json!({"alg": "none", "x5c": pki.x5c()}), &claims(), "");
    let hs = jsonwebtoken::encode(
        &Header {
            alg: Algorithm::HS256,
            x5c: Some(pki.x5c()),
            ..Header::default()
        },
        &claims(),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    let no_alg = unsigned(&json!({"x5c": pki.x5c()}), &claims(), "AA");
    for jwt in [none, hs, no_alg] {
        // Even a caller that lists them does not get them.
        let err = verify(
            &jwt,
            &pki.anchors(),
            &["none", "HS256", "RS256"],
            NOW,
            &crls(),
        )
        .await;
        assert!(matches!(err, Err(TrustError::Alg(_))), "{err:?}");
    }
}

#[tokio::test]
async fn alg_outside_the_callers_list_is_refused() {
    let key = ec_key();
    let pki = Pki::with_leaf(
        leaf_params(ISS),
        KeyPair::from_pem(&key.serialize_pem()).unwrap(),
    );
    let jwt = sign(Algorithm::ES256, &key, pki.x5c(), &claims());
    let err = verify(&jwt, &pki.anchors(), &["RS256"], NOW, &crls()).await;
    assert!(matches!(err, Err(TrustError::Alg(_))), "{err:?}");
}

#[tokio::test]
async fn iss_must_equal_a_san_uri_exactly() {
    let key = ec_key();
    let pki = Pki::with_leaf(
        leaf_params(ISS),
        KeyPair::from_pem(&key.serialize_pem()).unwrap(),
    );
    for iss in [
        "https://evil.example.org/udap".to_owned(),
        format!("{ISS}/"),
        ISS.to_uppercase(),
        ISS[..ISS.len() - 1].to_owned(),
    ] {
        let mut c = claims();
        c["iss"] = json!(iss);
        let jwt = sign(Algorithm::ES256, &key, pki.x5c(), &c);
        let err = check(&jwt, &pki).await.unwrap_err();
        assert_eq!(err, TrustError::SanMismatch { iss: iss.clone() });
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("iss");
    let jwt = sign(Algorithm::ES256, &key, pki.x5c(), &c);
    let err = check(&jwt, &pki).await;
    assert!(matches!(err, Err(TrustError::Malformed(_))), "{err:?}");
}

#[tokio::test]
async fn missing_x5c() {
    let key = ec_key();
    let header = Header::new(Algorithm::ES256);
    let pem = key.serialize_pem();
    let jwt = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let pki = Pki::new();
    assert_eq!(check(&jwt, &pki).await.unwrap_err(), TrustError::MissingX5c);
}

#[tokio::test]
async fn untrusted_chain_is_refused_after_a_good_signature() {
    let key = ec_key();
    let pki = Pki::new();
    let leaf = signed(
        leaf_params(ISS),
        KeyPair::from_pem(&key.serialize_pem()).unwrap(),
        &pki.other,
    );
    let jwt = sign(Algorithm::ES256, &key, vec![leaf.b64()], &claims());
    assert_eq!(
        check(&jwt, &pki).await.unwrap_err(),
        TrustError::UntrustedAnchor
    );
}

#[tokio::test]
async fn malformed_framing() {
    let pki = Pki::new();
    let good_header = json!({"alg": "ES256", "x5c": pki.x5c()});
    for jwt in [
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        "!!.e30.AA".to_owned(),
        unsigned(
            &json!({"alg": "ES256", "x5c": "not-an-array"}),
            &claims(),
            "AA",
        ),
        unsigned(&json!({"alg": "ES256", "x5c": []}), &claims(), "AA"),
        unsigned(&json!({"alg": "ES256", "x5c": [1]}), &claims(), "AA"),
        unsigned(
            &json!({"alg": "ES256", "x5c": pki.x5c(), "crit": ["b64"]}),
            &claims(),
            "AA",
        ),
        format!(
            "{}.bm90IGpzb24.AA",
            URL_SAFE_NO_PAD.encode(good_header.to_string())
        ),
    ] {
        let err = check(&jwt, &pki).await;
        assert!(
            matches!(err, Err(TrustError::Malformed(_))),
            "{jwt:.60}: {err:?}"
        );
    }
    let huge = format!("e30.{}.AA", "a".repeat(MAX_JWT_BYTES));
    match check(&huge, &pki).await {
        Err(TrustError::Malformed(why)) => assert!(why.contains("too large"), "{why}"),
        other => panic!("{other:?}"),
    }
}
