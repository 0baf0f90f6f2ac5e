use std::time::Instant;

use serde_json::{json, Value};

use super::testing::{keyset_in, rotate_to_pool, shared, TempDir};
use super::*;

const NOW: i64 = 1_700_000_000;

fn opts() -> VerifyOptions<'static> {
    VerifyOptions {
        now: NOW,
        ..VerifyOptions::default()
    }
}

fn claims(exp: i64) -> Value {
    json!({"iss": "https://gw.example/fhir", "aud": "https://gw.example/fhir", "sub": "u1", "exp": exp})
}

/// Re-signs nothing: swaps a token's header for `header` (signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[test]
fn rfc7638_thumbprint_example() {
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    assert_eq!(
        rsa_thumbprint(n, "AQAB"),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn fresh_dir_generates_a_key_that_persists() {
    let dir = TempDir::new();
    let keys_dir = dir.path().join("data").join("keys");
    let started = Instant::now();
    let first = KeySet::load_or_create(&keys_dir).unwrap();
    eprintln!("load_or_create on a fresh dir took {:?}", started.elapsed());
    let again = KeySet::load_or_create(&keys_dir).unwrap();
    assert_eq!(first.current_kid(), again.current_kid());
    assert_eq!(first.jwks(), again.jwks());
    assert_eq!(store::list(&keys_dir).unwrap().len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys_dir), 0o700);
        assert_eq!(mode(&store::list(&keys_dir).unwrap()[0].1), 0o600);
    }
}

#[test]
fn jwks_publishes_public_rs256_keys_with_thumbprint_kids() {
    let keys = shared();
    let jwks = keys.jwks();
    let k = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        (k["kty"].as_str(), k["alg"].as_str(), k["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert_eq!(k["e"], "AQAB");
    assert_eq!(k["kid"], keys.current_kid());
    assert_eq!(
        rsa_thumbprint(k["n"].as_str().unwrap(), "AQAB"),
        keys.current_kid()
    );
    assert!(k.get("d").is_none() && k.get("p").is_none());
    // The JWKS is readable by jsonwebtoken's own JWK parser.
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    assert!(set.find(keys.current_kid()).is_some());
}

#[test]
fn sign_then_verify_round_trip_with_header() {
    let keys = shared();
    let token = keys.sign(&claims(NOW + 60), Some("at+jwt")).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(keys.current_kid()));
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let v = VerifyOptions {
        issuer: Some("https://gw.example/fhir"),
        audience: Some("https://gw.example/fhir"),
        typ: Some("at+jwt"),
        ..opts()
    };
    let back: Value = keys.verify(&token, &v).unwrap();
    assert_eq!(back, claims(NOW + 60));
    let plain = keys.sign(&claims(NOW + 60), None).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&plain).unwrap().typ.as_deref(),
        Some("JWT")
    );
    assert!(matches!(
        keys.verify::<Value>(&plain, &v),
        Err(KeyError::Type)
    ));
}

#[test]
fn verify_checks_time_issuer_and_audience() {
    let keys = shared();
    let token = keys.sign(&claims(NOW), None).unwrap();
    assert!(matches!(
        keys.verify::<Value>(&token, &opts()),
        Err(KeyError::Expired)
    ));
    let lenient = VerifyOptions {
        leeway_secs: 5,
        ..opts()
    };
    assert!(keys.verify::<Value>(&token, &lenient).is_ok());
    let no_exp = keys.sign(&json!({"sub": "x"}), None).unwrap();
    assert!(matches!(
        keys.verify::<Value>(&no_exp, &opts()),
        Err(KeyError::MissingExp)
    ));
    let nbf = keys
        .sign(&json!({"exp": NOW + 60, "nbf": NOW + 30}), None)
        .unwrap();
    assert!(matches!(
        keys.verify::<Value>(&nbf, &opts()),
        Err(KeyError::NotYetValid)
    ));
    let token = keys.sign(&claims(NOW + 60), None).unwrap();
    let iss = VerifyOptions {
        issuer: Some("https://other"),
        ..opts()
    };
    assert!(matches!(
        keys.verify::<Value>(&token, &iss),
        Err(KeyError::Issuer)
    ));
    let aud = VerifyOptions {
        audience: Some("https://gw.example/fhir/"),
        ..opts()
    };
    assert!(matches!(
        keys.verify::<Value>(&token, &aud),
        Err(KeyError::Audience)
    ));
}

#[test]
fn verify_refuses_none_other_algs_unknown_kids_and_tampering() {
    let keys = shared();
    let token = keys.sign(&claims(NOW + 60), None).unwrap();
    let kid = keys.current_kid();
    let none = with_header(&token, &json!({"alg": "none", "kid": kid}));
    assert!(matches!(
        keys.verify::<Value>(&none, &opts()),
        Err(KeyError::Unsigned)
    ));
    let (unsigned, _) = none.rsplit_once('.').unwrap();
    assert!(matches!(
        keys.verify::<Value>(&format!("{unsigned}."), &opts()),
        Err(KeyError::Malformed)
    ));
    let hs = with_header(&token, &json!({"alg": "HS256", "kid": kid}));
    assert!(matches!(
        keys.verify::<Value>(&hs, &opts()),
        Err(KeyError::Algorithm)
    ));
    let rs512 = with_header(&token, &json!({"alg": "RS512", "kid": kid}));
    assert!(matches!(
        keys.verify::<Value>(&rs512, &opts()),
        Err(KeyError::Algorithm)
    ));
    let unknown = with_header(&token, &json!({"alg": "RS256", "kid": "not-ours"}));
    assert!(matches!(
        keys.verify::<Value>(&unknown, &opts()),
        Err(KeyError::UnknownKey)
    ));
    let no_kid = with_header(&token, &json!({"alg": "RS256"}));
    assert!(matches!(
        keys.verify::<Value>(&no_kid, &opts()),
        Err(KeyError::UnknownKey)
    ));
    let crit = with_header(
        &token,
        &json!({"alg": "RS256", "kid": kid, "crit": ["x"], "x": 1}),
    );
    assert!(matches!(
        keys.verify::<Value>(&crit, &opts()),
        Err(KeyError::Critical)
    ));
    // A different but valid header breaks the signature.
    let retyped = with_header(
        &token,
        &json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}),
    );
    assert!(matches!(
        keys.verify::<Value>(&retyped, &opts()),
        Err(KeyError::Signature)
    ));
    let (head, _, sig) = {
        let mut p = token.split('.');
        (p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
    };
    let forged = URL_SAFE_NO_PAD.encode(claims(NOW + 9999).to_string());
    let tampered = format!("{head}.{forged}.{sig}");
    assert!(matches!(
        keys.verify::<Value>(&tampered, &opts()),
        Err(KeyError::Signature)
    ));
    assert!(matches!(
        keys.verify::<Value>("garbage", &opts()),
        Err(KeyError::Malformed)
    ));
}

#[test]
fn rotation_keeps_previous_keys_then_drops_the_oldest() {
    let dir = TempDir::new();
    let mut keys = keyset_in(dir.path(), 1);
    let first_kid = keys.current_kid().to_owned();
    let old_token = keys.sign(&claims(NOW + 600), None).unwrap();

    rotate_to_pool(&mut keys, dir.path(), 2);
    assert_ne!(keys.current_kid(), first_kid);
    let kids: Vec<Value> = keys.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, vec![json!(keys.current_kid()), json!(first_kid)]);
    assert!(
        keys.verify::<Value>(&old_token, &opts()).is_ok(),
        "previous key still verifies"
    );
    let new_token = keys.sign(&claims(NOW + 600), None).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .as_deref(),
        Some(keys.current_kid())
    );

    // A restart sees the same set, current first.
    let reloaded = KeySet::load_or_create(dir.path()).unwrap();
    assert_eq!(reloaded.jwks(), keys.jwks());

    rotate_to_pool(&mut keys, dir.path(), 3);
    assert_eq!(
        keys.jwks()["keys"].as_array().unwrap().len(),
        1 + PREVIOUS_KEYS_KEPT
    );
    assert!(keys.verify::<Value>(&old_token, &opts()).is_ok());
    rotate_to_pool(&mut keys, dir.path(), 4);
    assert_eq!(
        keys.jwks()["keys"].as_array().unwrap().len(),
        1 + PREVIOUS_KEYS_KEPT
    );
    assert!(matches!(
        keys.verify::<Value>(&old_token, &opts()),
        Err(KeyError::UnknownKey)
    ));
    assert!(keys.verify::<Value>(&new_token, &opts()).is_ok());
    assert_eq!(
        store::list(dir.path()).unwrap().len(),
        1 + PREVIOUS_KEYS_KEPT
    );
    let reloaded = KeySet::load_or_create(dir.path()).unwrap();
    assert_eq!(reloaded.current_kid(), keys.current_kid());
    assert!(matches!(
        reloaded.verify::<Value>(&old_token, &opts()),
        Err(KeyError::UnknownKey)
    ));
}

#[test]
fn unreadable_key_files_fail_closed() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path().join("key-0000000001.pem"), "not a key").unwrap();
    std::fs::write(dir.path().join("README"), "ignored").unwrap();
    assert!(matches!(
        KeySet::load_or_create(dir.path()),
        Err(KeyError::BadKeyFile { .. })
    ));
}

/// Flips one byte in the middle of a token's signature (valid base64url kept).
fn alter_signature(token: &str) -> String {
    let (message, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[test]
fn a_cached_token_still_expires_and_still_has_its_claims_checked() {
    let keys = KeySet::from_keys(shared().keys.clone());
    let token = keys.sign(&claims(NOW + 60), Some("at+jwt")).unwrap();
    let v = VerifyOptions {
        issuer: Some("https://gw.example/fhir"),
        audience: Some("https://gw.example/fhir"),
        typ: Some("at+jwt"),
        ..opts()
    };
    assert!(keys.verify::<Value>(&token, &v).is_ok());
    assert_eq!(keys.verified.len(), 1, "the signature is remembered");
    assert!(keys.verify::<Value>(&token, &v).is_ok(), "and hits");
    let later = VerifyOptions { now: NOW + 60, ..v };
    assert!(matches!(
        keys.verify::<Value>(&token, &later),
        Err(KeyError::Expired)
    ));
    let early = VerifyOptions { now: NOW - 10, ..v };
    assert!(keys.verify::<Value>(&token, &early).is_ok());
    let iss = VerifyOptions {
        issuer: Some("https://other"),
        ..v
    };
    assert!(matches!(
        keys.verify::<Value>(&token, &iss),
        Err(KeyError::Issuer)
    ));
    let aud = VerifyOptions {
        audience: Some("https://other"),
        ..v
    };
    assert!(matches!(
        keys.verify::<Value>(&token, &aud),
        Err(KeyError::Audience)
    ));
    let typ = VerifyOptions {
        typ: Some("JWT"),
        ..v
    };
    assert!(matches!(
        keys.verify::<Value>(&token, &typ),
        Err(KeyError::Type)
    ));
    // A not-yet-valid token that verified (with leeway) is still judged by nbf.
    let nbf = keys
        .sign(&json!({"exp": NOW + 60, "nbf": NOW + 30}), None)
        .unwrap();
    let lenient = VerifyOptions {
        leeway_secs: 30,
        ..opts()
    };
    assert!(keys.verify::<Value>(&nbf, &lenient).is_ok());
    assert!(matches!(
        keys.verify::<Value>(&nbf, &opts()),
        Err(KeyError::NotYetValid)
    ));
    assert_eq!(keys.verified.len(), 2);
}

#[test]
fn an_altered_signature_is_refused_right_after_the_valid_token_was_cached() {
    let keys = KeySet::from_keys(shared().keys.clone());
    let token = keys.sign(&claims(NOW + 60), None).unwrap();
    assert!(keys.verify::<Value>(&token, &opts()).is_ok());
    assert!(keys.verify::<Value>(&token, &opts()).is_ok());
    let altered = alter_signature(&token);
    assert_ne!(altered, token);
    for _ in 0..2 {
        assert!(matches!(
            keys.verify::<Value>(&altered, &opts()),
            Err(KeyError::Signature)
        ));
    }
    // Same signature under other claims or another header: refused too.
    let (head, _, sig) = {
        let mut p = token.split('.');
        (p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
    };
    let forged = URL_SAFE_NO_PAD.encode(claims(NOW + 9999).to_string());
    assert!(matches!(
        keys.verify::<Value>(&format!("{head}.{forged}.{sig}"), &opts()),
        Err(KeyError::Signature)
    ));
    let retyped = with_header(
        &token,
        &json!({"alg": "RS256", "kid": keys.current_kid(), "typ": "at+jwt"}),
    );
    assert!(matches!(
        keys.verify::<Value>(&retyped, &opts()),
        Err(KeyError::Signature)
    ));
    assert_eq!(keys.verified.len(), 1, "failures are never remembered");
    assert!(keys.verify::<Value>(&token, &opts()).is_ok());
}

#[test]
fn a_cached_token_of_a_removed_key_is_refused() {
    // A set sharing the cache but no longer holding the key: the cache
    // entry alone never lets the token through.
    let dir = TempDir::new();
    let mut keys = keyset_in(dir.path(), 1);
    let old_token = keys.sign(&claims(NOW + 600), None).unwrap();
    assert!(keys.verify::<Value>(&old_token, &opts()).is_ok());
    let without_old = KeySet {
        keys: vec![SigningKey::new(9, super::testing::pool_key(2)).unwrap()],
        verified: keys.verified.clone(),
    };
    assert_eq!(without_old.verified.len(), 1);
    assert!(matches!(
        without_old.verify::<Value>(&old_token, &opts()),
        Err(KeyError::UnknownKey)
    ));
    // Rotation out of the set: refused, and a clone taken before the
    // rotation (sharing the cache) still verifies it in full.
    let before = keys.clone();
    let new_token = keys.sign(&claims(NOW + 600), None).unwrap();
    assert!(keys.verify::<Value>(&new_token, &opts()).is_ok());
    for i in 2..3 + PREVIOUS_KEYS_KEPT {
        rotate_to_pool(&mut keys, dir.path(), i);
    }
    assert!(matches!(
        keys.verify::<Value>(&old_token, &opts()),
        Err(KeyError::UnknownKey)
    ));
    assert!(before.verify::<Value>(&old_token, &opts()).is_ok());
    assert!(matches!(
        keys.verify::<Value>(&alter_signature(&old_token), &opts()),
        Err(KeyError::UnknownKey)
    ));
    // A different key under the old kid (a forged header) does not verify.
    let foreign = KeySet::from_keys(vec![
        SigningKey::new(1, super::testing::pool_key(5)).unwrap()
    ]);
    let foreign_token = foreign.sign(&claims(NOW + 600), None).unwrap();
    let claimed = with_header(
        &foreign_token,
        &json!({"alg": "RS256", "kid": before.current_kid(), "typ": "JWT"}),
    );
    assert!(matches!(
        before.verify::<Value>(&claimed, &opts()),
        Err(KeyError::Signature)
    ));
}
