//! `private_key_jwt` client assertion (SMART Backend Services, RFC 7523):
//! the untrusted compact JWT the token endpoint receives. Three shapes of
//! input, chosen by the first byte:
//! - `{`: a claims object, signed here with the fixture ES384 key so the
//!   claim checks behind the signature (`exp`, `aud`, `jti`, ...) are fuzzed;
//! - otherwise, with a newline: `<client JWKS JSON>\n<assertion>`, so the
//!   JWK decoding is fuzzed too;
//! - otherwise: the assertion alone, against the fixture JWKS.
//!
//! Entry points: `peek_issuer`, `verify_client_assertion`,
//! `check_assertion_type` (smart-launch/src/assertion/).
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use smart_launch::assertion::{
    check_assertion_type, peek_issuer, verify_client_assertion, AssertionRules,
};

/// Test-only key, also in the corpus's JWKS; it signs nothing real.
const FIXTURE_PEM: &[u8] = include_bytes!("fixture_es384.pem");
const EC_X: &str = "arcCMn59DxiPXGmh5-s_8fB4r4sbHQqLZw_6Uz1Qgr8wZflg411YFhzTa1tlnAvI";
const EC_Y: &str = "QwN66Tp5At9tcW12SryF_fmSHMcCTbuR-T48MoziIpgYZpaTcBVodFVmO3hzsUrg";

fn key() -> &'static EncodingKey {
    static KEY: OnceLock<EncodingKey> = OnceLock::new();
    KEY.get_or_init(|| EncodingKey::from_ec_pem(FIXTURE_PEM).expect("fixture key"))
}

fn fixture_jwks() -> Value {
    json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "ec1", "x": EC_X, "y": EC_Y}]})
}

fn rules() -> AssertionRules<'static> {
    AssertionRules {
        client_id: "app",
        token_endpoint: "https://fhirgate.test/auth/token",
        now: 1_700_000_000,
        max_lifetime_secs: 300,
        leeway_secs: 60,
    }
}

fn check(assertion: &str, jwks: &Value) {
    let _ = check_assertion_type(Some(assertion));
    let _ = peek_issuer(assertion);
    let _ = verify_client_assertion(assertion, jwks, &rules());
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if s.starts_with('{') {
        let Ok(claims) = serde_json::from_str::<Value>(s) else {
            return;
        };
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some("ec1".into());
        let Ok(jwt) = jsonwebtoken::encode(&header, &claims, key()) else {
            return;
        };
        check(&jwt, &fixture_jwks());
    } else if let Some((jwks, assertion)) = s.split_once('\n') {
        let jwks = serde_json::from_str(jwks).unwrap_or_else(|_| fixture_jwks());
        check(assertion, &jwks);
    } else {
        check(s, &fixture_jwks());
    }
});
