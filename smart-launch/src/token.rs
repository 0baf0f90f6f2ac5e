//! Access tokens and id tokens, signed by the server's [`KeySet`].
//!
//! - Access tokens follow the JWT profile of RFC 9068: header `typ` is
//!   `at+jwt` (§2.1), claims `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
//!   `jti` (§2.2) and `scope` (§2.2.3), plus the SMART App Launch 2.2 launch
//!   context (§"Launch context arrives with your access_token": `patient`,
//!   `encounter`) and the signed-in user (`fhirUser`, role). Resource
//!   servers check `typ` (§4), so an id token is never taken for an access
//!   token.
//! - Id tokens follow OpenID Connect Core §2 and are RS256, which SMART App
//!   Launch 2.2 (§"Scopes for requesting identity data") requires; `fhirUser`
//!   names the user's Patient, Practitioner, RelatedPerson or Person.
//! - [`random_token`] makes authorization codes, refresh tokens and `jti`s;
//!   [`hash_token`] is what the state store keeps in their place.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{KeyError, KeySet, VerifyOptions};
use crate::{OAuthError, OAuthErrorCode};

/// Header `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock-skew allowance when validating our own access tokens. Zero: the
/// server that minted a token shares its clock with the one validating it
/// (replicas are expected to run NTP), and a token should die on time.
pub const ACCESS_TOKEN_LEEWAY_SECS: i64 = 0;

/// Fewest random bytes [`random_token`] will use (128 bits).
pub const MIN_RANDOM_BYTES: usize = 16;

/// The claims of an access token (RFC 9068 §2.2 plus SMART launch context).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The authorization server's issuer URL.
    pub iss: String,
    /// The user, or the client for client_credentials (RFC 9068 §2.2).
    pub sub: String,
    /// The FHIR base URL the token is for (SMART `aud`).
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Unique token id: revocation and audit key.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Launch patient id (`patient/` scopes are confined to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// Launch encounter id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    /// The signed-in user's FHIR resource, e.g. `Practitioner/1`.
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The signed-in user's role (`clinician`, `patient`, `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Purpose of use (e.g. `TREAT`), for consent and audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose_of_use: Option<String>,
    /// The organization the user acts for (`Organization/…`), resolved at
    /// issuance; an input of consent decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The user's authentication context class (OpenID Connect `acr`), if
    /// a user signed in: the identity provider's, or the local account's level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The user's authentication methods (RFC 8176 `amr`), step-ups included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user last authenticated (a step-up counts), seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// The claims of an OpenID Connect id token (Core §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The authorization server's issuer URL.
    pub iss: String,
    /// The user's stable id at this issuer.
    pub sub: String,
    /// The client id the token is for.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// When the user authenticated, if known (Core §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authorization request's `nonce`, echoed (Core §3.1.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The user's FHIR resource (SMART `fhirUser`), absolute or relative URL.
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// Display name (`profile` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Login name (`profile` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Authentication context class reference (Core §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication methods references (Core §2, RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Signs an access token: RS256, `typ` `at+jwt`, `kid` of the current key.
pub fn mint_access(keys: &KeySet, claims: &AccessClaims) -> Result<String, KeyError> {
    keys.sign(claims, Some(ACCESS_TOKEN_TYP))
}

/// Validates a bearer token presented to the FHIR endpoint: signature by a
/// kept key, `typ` `at+jwt`, `iss` and `aud` exact, not expired at `now`.
/// Every failure is `invalid_token` (RFC 6750 §3.1) with a description safe
/// to show; the token is never echoed. Revocation is the caller's check
/// (by `jti`).
pub fn validate_access(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audience: &str,
    now: i64,
) -> Result<AccessClaims, OAuthError> {
    let invalid = |d: String| OAuthError::new(OAuthErrorCode::InvalidToken, d);
    let options = VerifyOptions {
        now,
        leeway_secs: ACCESS_TOKEN_LEEWAY_SECS,
        issuer: Some(issuer),
        audience: Some(audience),
        typ: Some(ACCESS_TOKEN_TYP),
    };
    let claims: AccessClaims = keys
        .verify(token, &options)
        .map_err(|e| invalid(e.to_string()))?;
    if claims.jti.is_empty() || claims.client_id.is_empty() {
        return Err(invalid("token has no jti or client_id".into()));
    }
    Ok(claims)
}

/// Signs an id token: RS256, `typ` `JWT`, `kid` of the current key.
pub fn mint_id_token(keys: &KeySet, claims: &IdTokenClaims) -> Result<String, KeyError> {
    keys.sign(claims, None)
}

/// A URL-safe (base64url, unpadded) string of `bytes` random bytes from the
/// OS, at least [`MIN_RANDOM_BYTES`] whatever is asked: for authorization
/// codes, refresh tokens, `jti`s and launch ids. 32 bytes is a good default.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes.max(MIN_RANDOM_BYTES)];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a token, lowercase hex: what the state store keeps instead of
/// codes and refresh tokens, so a leaked database yields no usable secret.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testing::{keyset_in, rotate_to_pool, shared, TempDir};
    use serde_json::{json, Value};

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://gw.example/auth";
    const AUD: &str = "https://gw.example/fhir";

    fn access(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: ISS.into(),
            sub: "clinician1".into(),
            aud: AUD.into(),
            exp,
            iat: NOW,
            jti: random_token(32),
            client_id: "app".into(),
            scope: "launch/patient patient/Observation.rs".into(),
            patient: Some("123".into()),
            encounter: None,
            fhir_user: Some("Practitioner/7".into()),
            role: Some("clinician".into()),
            purpose_of_use: None,
            organization: None,
            acr: None,
            amr: Vec::new(),
            auth_time: None,
        }
    }

    fn payload(token: &str) -> Value {
        let p = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    fn assert_invalid(r: Result<AccessClaims, OAuthError>, token: &str, needle: &str) {
        let e = r.unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidToken);
        assert_eq!(e.code.status(), 401);
        assert!(e.description.contains(needle), "{}", e.description);
        assert!(!e.description.contains(token));
    }

    #[test]
    fn access_token_round_trip() {
        let keys = shared();
        let claims = access(NOW + 300);
        let token = mint_access(keys, &claims).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(keys.current_kid()));
        let p = payload(&token);
        assert_eq!(p["fhirUser"], "Practitioner/7");
        assert!(p.get("encounter").is_none() && p.get("purpose_of_use").is_none());
        assert_eq!(
            validate_access(keys, &token, ISS, AUD, NOW + 299).unwrap(),
            claims
        );
    }

    #[test]
    fn access_token_refusals() {
        let keys = shared();
        let token = mint_access(keys, &access(NOW + 300)).unwrap();
        assert_invalid(
            validate_access(keys, &token, ISS, AUD, NOW + 300),
            &token,
            "expired",
        );
        assert_invalid(
            validate_access(keys, &token, ISS, "https://gw.example/other", NOW),
            &token,
            "audience",
        );
        assert_invalid(
            validate_access(keys, &token, "https://evil.example", AUD, NOW),
            &token,
            "issuer",
        );
        let rest = token.split_once('.').unwrap().1;
        let forge = |h: Value| format!("{}.{rest}", URL_SAFE_NO_PAD.encode(h.to_string()));
        let none = forge(json!({"alg": "none", "typ": "at+jwt", "kid": keys.current_kid()}));
        assert_invalid(
            validate_access(keys, &none, ISS, AUD, NOW),
            &none,
            "alg none",
        );
        let unknown = forge(json!({"alg": "RS256", "typ": "at+jwt", "kid": "someone-else"}));
        assert_invalid(
            validate_access(keys, &unknown, ISS, AUD, NOW),
            &unknown,
            "not signed by a current key",
        );
        assert_invalid(
            validate_access(keys, "abc.def", ISS, AUD, NOW),
            "abc.def",
            "well-formed",
        );
    }

    #[test]
    fn id_tokens_are_rs256_and_never_access_tokens() {
        let keys = shared();
        let claims = IdTokenClaims {
            iss: ISS.into(),
            sub: "patient1".into(),
            aud: "app".into(),
            exp: NOW + 300,
            iat: NOW,
            auth_time: Some(NOW - 10),
            nonce: Some("n-0S6_WzA2Mj".into()),
            fhir_user: Some("https://gw.example/fhir/Patient/123".into()),
            name: None,
            preferred_username: Some("pat".into()),
            acr: None,
            amr: Vec::new(),
        };
        let token = mint_id_token(keys, &claims).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(keys.current_kid()));
        let p = payload(&token);
        assert_eq!(p["fhirUser"], "https://gw.example/fhir/Patient/123");
        assert!(p.get("name").is_none());
        let v = VerifyOptions {
            now: NOW,
            audience: Some("app"),
            ..VerifyOptions::default()
        };
        assert_eq!(keys.verify::<IdTokenClaims>(&token, &v).unwrap(), claims);
        // Even with matching iss/aud, an id token is not an access token.
        assert_invalid(
            validate_access(keys, &token, ISS, "app", NOW),
            &token,
            "type",
        );
    }

    #[test]
    fn rotation_keeps_previous_access_tokens_until_rotated_out() {
        let dir = TempDir::new();
        let mut keys = keyset_in(dir.path(), 1);
        let old = mint_access(&keys, &access(NOW + 3600)).unwrap();
        rotate_to_pool(&mut keys, dir.path(), 2);
        assert!(
            validate_access(&keys, &old, ISS, AUD, NOW).is_ok(),
            "previous key still accepted"
        );
        let newer = mint_access(&keys, &access(NOW + 3600)).unwrap();
        for i in 3..3 + crate::keys::PREVIOUS_KEYS_KEPT {
            rotate_to_pool(&mut keys, dir.path(), i);
        }
        assert_invalid(
            validate_access(&keys, &old, ISS, AUD, NOW),
            &old,
            "not signed by a current key",
        );
        assert!(validate_access(&keys, &newer, ISS, AUD, NOW).is_ok());
    }

    #[test]
    fn random_tokens_and_hashes() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, random_token(32));
        assert_eq!(random_token(0).len(), 22, "never fewer than 16 bytes");
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_token(&a), a);
    }
}
