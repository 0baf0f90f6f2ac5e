use std::sync::OnceLock;

use jsonwebtoken::{EncodingKey, Header};
use p384::pkcs8::EncodePrivateKey as _;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::json;

use super::*;
use crate::keys::testing::pool_key;
use crate::OAuthErrorCode;

const NOW: i64 = 1_700_000_000;
const CLIENT: &str = "bulk-client";
const TOKEN_URL: &str = "https://gw.example/auth/token";

/// A client with one RSA key (`rsa1`) and one P-384 key (`ec1`).
struct Client {
    rsa: EncodingKey,
    rsa_public_pem: String,
    ec: EncodingKey,
    rsa_jwk: Value,
    ec_jwk: Value,
}

fn client() -> &'static Client {
    static CLIENT_KEYS: OnceLock<Client> = OnceLock::new();
    CLIENT_KEYS.get_or_init(|| {
        let rsa = pool_key(5);
        let b64 = |b: Vec<u8>| URL_SAFE_NO_PAD.encode(b);
        let rsa_jwk = json!({"kty": "RSA", "kid": "rsa1", "n": b64(rsa.n().to_bytes_be()), "e": b64(rsa.e().to_bytes_be())});
        let ec = p384::SecretKey::random(&mut rand::rngs::OsRng);
        let mut ec_jwk: Value = serde_json::from_str(&ec.public_key().to_jwk_string()).unwrap();
        ec_jwk["kid"] = json!("ec1");
        Client {
            rsa: EncodingKey::from_rsa_der(rsa.to_pkcs1_der().unwrap().as_bytes()),
            rsa_public_pem: rsa.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
            ec: EncodingKey::from_ec_pem(ec.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap(),
            rsa_jwk,
            ec_jwk,
        }
    })
}

fn jwks() -> Value {
    json!({"keys": [client().rsa_jwk, client().ec_jwk]})
}

fn rules() -> AssertionRules<'static> {
    AssertionRules {
        client_id: CLIENT,
        token_endpoint: TOKEN_URL,
        now: NOW,
        max_lifetime_secs: 300,
        leeway_secs: 60,
    }
}

fn claims() -> Value {
    json!({"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 240, "iat": NOW, "jti": "jti-1"})
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let key = match alg {
        Algorithm::ES384 => &client().ec,
        _ => &client().rsa,
    };
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Asserts an `invalid_client` refusal whose description contains `needle`.
fn refused(assertion: &str, jwks: &Value, needle: &str) {
    let e = verify_client_assertion(assertion, jwks, &rules()).unwrap_err();
    assert_eq!(e.code, OAuthErrorCode::InvalidClient, "{e}");
    assert_eq!(e.code.status(), 401);
    assert!(
        e.description.contains(needle),
        "expected '{needle}' in '{}'",
        e.description
    );
    assert!(!e.description.contains(assertion));
}

fn forge_header(assertion: &str, header: Value) -> String {
    let rest = assertion.split_once('.').unwrap().1;
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[test]
fn rs384_es384_and_rs256_are_accepted() {
    for (alg, kid) in [
        (Algorithm::RS384, "rsa1"),
        (Algorithm::ES384, "ec1"),
        (Algorithm::RS256, "rsa1"),
    ] {
        let a = sign(alg, Some(kid), &claims());
        let ok = verify_client_assertion(&a, &jwks(), &rules()).unwrap();
        assert_eq!(
            ok,
            VerifiedAssertion {
                jti: "jti-1".into(),
                exp: NOW + 240,
                extensions: None,
            },
            "{alg:?}"
        );
    }
}

#[test]
fn key_selection_by_kid() {
    let only_ec = json!({"keys": [client().ec_jwk]});
    assert!(
        verify_client_assertion(&sign(Algorithm::ES384, None, &claims()), &only_ec, &rules())
            .is_ok()
    );
    refused(&sign(Algorithm::RS384, None, &claims()), &jwks(), "no kid");
    refused(
        &sign(Algorithm::RS384, Some("rsa2"), &claims()),
        &jwks(),
        "no key in the client's JWKS",
    );
    refused(
        &sign(Algorithm::RS384, Some("rsa1"), &claims()),
        &json!({"keys": []}),
        "no registered public keys",
    );
    refused(
        &sign(Algorithm::RS384, Some("rsa1"), &claims()),
        &json!({}),
        "no registered public keys",
    );
    // Several keys under one kid: the one whose type fits the alg is used.
    let mut ec_same_kid = client().ec_jwk.clone();
    ec_same_kid["kid"] = json!("rsa1");
    let shared_kid = json!({"keys": [ec_same_kid, client().rsa_jwk]});
    assert!(verify_client_assertion(
        &sign(Algorithm::RS384, Some("rsa1"), &claims()),
        &shared_kid,
        &rules()
    )
    .is_ok());
}

#[test]
fn alg_none_and_hmac_are_refused() {
    let good = sign(Algorithm::RS384, Some("rsa1"), &claims());
    let none = forge_header(&good, json!({"alg": "none", "kid": "rsa1"}));
    refused(&none, &jwks(), "alg none");
    let (unsigned, _) = none.rsplit_once('.').unwrap();
    refused(&format!("{unsigned}."), &jwks(), "well-formed");
    refused(
        &forge_header(&good, json!({"alg": "None", "kid": "rsa1"})),
        &jwks(),
        "alg none",
    );
    // The classic confusion attack: HS256 keyed with the client's public key.
    for secret in [
        client().rsa_public_pem.as_bytes(),
        client().rsa_jwk["n"].as_str().unwrap().as_bytes(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa1".into());
        let hs =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret)).unwrap();
        refused(&hs, &jwks(), "HMAC");
    }
    // Even against a symmetric key the client registered.
    let oct = json!({"keys": [{"kty": "oct", "kid": "k", "k": URL_SAFE_NO_PAD.encode("secret")}]});
    let mut header = Header::new(Algorithm::HS384);
    header.kid = Some("k".into());
    let hs =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"secret")).unwrap();
    refused(&hs, &oct, "HMAC");
    // RSA keys with other algs.
    refused(
        &forge_header(&good, json!({"alg": "PS384", "kid": "rsa1"})),
        &jwks(),
        "RS384, ES384 or RS256",
    );
    refused(
        &forge_header(&good, json!({"alg": "RS512", "kid": "rsa1"})),
        &jwks(),
        "RS384, ES384 or RS256",
    );
    refused(
        &forge_header(&good, json!({"kid": "rsa1"})),
        &jwks(),
        "no alg",
    );
}

#[test]
fn alg_must_fit_the_key_type() {
    // ES384 naming an RSA key, and RS384 naming an EC key.
    refused(
        &sign(Algorithm::ES384, Some("rsa1"), &claims()),
        &jwks(),
        "P-384",
    );
    refused(
        &sign(Algorithm::RS384, Some("ec1"), &claims()),
        &jwks(),
        "RSA signing key",
    );
    // A JWK registered for one alg is not used with another, nor an encryption key.
    let mut rs384_only = client().rsa_jwk.clone();
    rs384_only["alg"] = json!("RS384");
    let jwks_alg = json!({"keys": [rs384_only]});
    assert!(verify_client_assertion(
        &sign(Algorithm::RS384, Some("rsa1"), &claims()),
        &jwks_alg,
        &rules()
    )
    .is_ok());
    refused(
        &sign(Algorithm::RS256, Some("rsa1"), &claims()),
        &jwks_alg,
        "RSA signing key",
    );
    let mut enc = client().rsa_jwk.clone();
    enc["use"] = json!("enc");
    refused(
        &sign(Algorithm::RS384, Some("rsa1"), &claims()),
        &json!({"keys": [enc]}),
        "RSA signing key",
    );
    // A P-256 key cannot serve ES384.
    let mut p256 = client().ec_jwk.clone();
    p256["crv"] = json!("P-256");
    refused(
        &sign(Algorithm::ES384, Some("ec1"), &claims()),
        &json!({"keys": [p256]}),
        "P-384",
    );
}

#[test]
fn tampered_assertions_are_refused() {
    let good = sign(Algorithm::RS384, Some("rsa1"), &claims());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(with(json!({"jti": "jti-2"})).to_string());
    refused(&parts.join("."), &jwks(), "signature is invalid");
    let ec = sign(Algorithm::ES384, Some("ec1"), &claims());
    let (body, sig) = ec.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') {
        sig.replacen('A', "B", 1)
    } else {
        format!("A{}", &sig[1..])
    };
    refused(
        &format!("{body}.{flipped}"),
        &jwks(),
        "signature is invalid",
    );
    // The named key is not the one that signed.
    let mut other = client().ec_jwk.clone();
    other["x"] = json!(URL_SAFE_NO_PAD.encode([7u8; 48]));
    refused(&ec, &json!({"keys": [other]}), "signature is invalid");
    refused("not-a-jwt", &jwks(), "well-formed");
}

#[test]
fn lifetime_rules() {
    let ok = |c: Value| {
        verify_client_assertion(&sign(Algorithm::RS384, Some("rsa1"), &c), &jwks(), &rules())
    };
    let no = |c: Value, needle: &str| {
        refused(&sign(Algorithm::RS384, Some("rsa1"), &c), &jwks(), needle)
    };
    no(with(json!({"exp": NOW - 61})), "expired");
    no(with(json!({"exp": NOW - 60})), "expired");
    assert!(ok(with(json!({"exp": NOW - 59}))).is_ok(), "within leeway");
    no(
        with(json!({"exp": NOW + 361})),
        "more than 300 seconds ahead",
    );
    assert!(
        ok(with(json!({"exp": NOW + 360}))).is_ok(),
        "5 minutes plus leeway"
    );
    no(with(json!({"exp": null})), "no valid exp");
    no(with(json!({"exp": "soon"})), "no valid exp");
    no(with(json!({"iat": NOW + 61})), "issued in the future");
    assert!(ok(with(json!({"iat": NOW + 60}))).is_ok());
    assert!(ok(with(json!({"iat": null}))).is_ok(), "iat is optional");
    no(with(json!({"iat": "now"})), "iat is not a NumericDate");
    no(with(json!({"nbf": NOW + 120})), "valid in the future");
}

#[test]
fn identity_audience_and_jti_rules() {
    let ok = |c: Value| {
        verify_client_assertion(&sign(Algorithm::ES384, Some("ec1"), &c), &jwks(), &rules())
    };
    let no =
        |c: Value, needle: &str| refused(&sign(Algorithm::ES384, Some("ec1"), &c), &jwks(), needle);
    no(
        with(json!({"aud": "https://gw.example/auth/authorize"})),
        "aud must be the token endpoint",
    );
    no(
        with(json!({"aud": ["https://a", "https://b"]})),
        "aud must be the token endpoint",
    );
    no(with(json!({"aud": null})), "aud must be the token endpoint");
    assert!(ok(with(json!({"aud": ["https://a", TOKEN_URL]}))).is_ok());
    no(with(json!({"sub": "someone-else"})), "iss and sub");
    no(with(json!({"sub": null})), "iss and sub");
    no(
        with(json!({"iss": "other", "sub": "other"})),
        "not this client's client_id",
    );
    no(with(json!({"jti": null})), "no jti");
    no(with(json!({"jti": ""})), "no jti");
    no(
        with(json!({"jti": "x".repeat(MAX_JTI_CHARS + 1)})),
        "jti is too long",
    );
}

#[test]
fn peek_issuer_reads_without_verifying() {
    let a = sign(Algorithm::RS384, Some("rsa1"), &claims());
    assert_eq!(peek_issuer(&a).unwrap(), CLIENT);
    let forged = forge_header(&a, json!({"alg": "none"}));
    assert_eq!(
        peek_issuer(&forged).unwrap(),
        CLIENT,
        "unverified by design"
    );
    let no_iss = sign(Algorithm::RS384, Some("rsa1"), &with(json!({"iss": null})));
    assert_eq!(
        peek_issuer(&no_iss).unwrap_err().code,
        OAuthErrorCode::InvalidClient
    );
    assert!(peek_issuer("x.y.z").is_err());
    assert!(peek_issuer(&"a".repeat(MAX_ASSERTION_BYTES + 1)).is_err());
}

#[test]
fn assertion_type_must_be_jwt_bearer() {
    assert!(check_assertion_type(Some(CLIENT_ASSERTION_TYPE)).is_ok());
    for bad in [
        None,
        Some(""),
        Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
    ] {
        let e = check_assertion_type(bad).unwrap_err();
        assert_eq!(
            (e.code, e.code.status()),
            (OAuthErrorCode::InvalidRequest, 400)
        );
    }
}
