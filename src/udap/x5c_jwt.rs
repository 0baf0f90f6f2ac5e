//! Verification of a compact JWS carrying its certificate chain in `x5c`
//! (RFC 7515 §4.1.6; HL7 FAST Security IG: software statements, signed
//! metadata, client assertions and id_tokens of UDAP).
//!
//! Checks here: framing, `alg` (from the caller's list, never `none`/`HS*`),
//! the signature by the leaf's key, the chain to the community's anchors
//! ([`crate::udap::trust::validate_chain`]), and `iss` equal to one of the
//! leaf's SAN URIs. The callers check `aud`, `exp`, `iat`, `jti` and the rest.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::crl::CrlCache;
use super::error::TrustError;
use super::trust::{self, parse_cert, Anchors, Verified};

/// Largest compact JWS accepted.
pub const MAX_JWT_BYTES: usize = 64 * 1024;
/// The algorithms UDAP allows (RS256 required; RS384, ES256, ES384 optional).
pub const UDAP_ALGS: &[&str] = &["RS256", "RS384", "ES256", "ES384"];

/// A verified `x5c` JWT: its header and claims as sent, and the chain.
#[derive(Debug, Clone)]
pub struct UdapJwt {
    /// The JOSE header as sent.
    pub header: Map<String, Value>,
    /// The claims as sent (only `iss` has been checked).
    pub claims: Map<String, Value>,
    /// The validated chain of the signer.
    pub chain: Verified,
}

/// Verifies `jwt` (see the module docs). `allowed` narrows [`UDAP_ALGS`]; an
/// algorithm outside [`UDAP_ALGS`] is refused even if listed.
pub async fn verify(
    jwt: &str,
    anchors: &Anchors,
    allowed: &[&str],
    now: i64,
    crls: &CrlCache,
) -> Result<UdapJwt, TrustError> {
    let (header, claims, x5c, alg) = parse(jwt, allowed)?;
    verify_signature(jwt, alg, &x5c)?;
    let chain = trust::validate_chain(&x5c, anchors, now, crls).await?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| TrustError::Malformed("the JWT has no string iss claim".into()))?;
    if !chain.san_uris.iter().any(|uri| uri == iss) {
        return Err(TrustError::san_mismatch(iss));
    }
    Ok(UdapJwt {
        header,
        claims,
        chain,
    })
}

/// [`verify`] for a JWT whose `iss` is not a certificate URI (a UDAP
/// client assertion: `iss` is the client id): the chain and signature as
/// [`verify`], and the leaf's SAN URIs must include `san` (the URI the
/// client registered with) instead of `iss`.
pub async fn verify_for_san(
    jwt: &str,
    anchors: &Anchors,
    allowed: &[&str],
    now: i64,
    crls: &CrlCache,
    san: &str,
) -> Result<UdapJwt, TrustError> {
    let (header, claims, x5c, alg) = parse(jwt, allowed)?;
    verify_signature(jwt, alg, &x5c)?;
    let chain = trust::validate_chain(&x5c, anchors, now, crls).await?;
    if !chain.san_uris.iter().any(|uri| uri == san) {
        return Err(TrustError::san_mismatch(san));
    }
    Ok(UdapJwt {
        header,
        claims,
        chain,
    })
}

type Parsed = (
    Map<String, Value>,
    Map<String, Value>,
    Vec<String>,
    Algorithm,
);

/// Header, claims, x5c and `alg` (one of [`UDAP_ALGS`] and of `allowed`).
fn parse(jwt: &str, allowed: &[&str]) -> Result<Parsed, TrustError> {
    if jwt.len() > MAX_JWT_BYTES {
        return Err(TrustError::Malformed("JWT too large".into()));
    }
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TrustError::Malformed(
            "not a compact JWS of three parts".into(),
        ));
    };
    let header = json_part(h, "header")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| TrustError::Alg("the JWS header names no alg".into()))?;
    let jws_alg = match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        _ => return Err(TrustError::Alg(format!("alg {alg} is not allowed"))),
    };
    if !allowed.contains(&alg) {
        return Err(TrustError::Alg(format!("alg {alg} is not allowed here")));
    }
    if header.contains_key("crit") {
        return Err(TrustError::Malformed(
            "crit header parameters are not supported".into(),
        ));
    }
    let x5c = match header.get("x5c") {
        None => return Err(TrustError::MissingX5c),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>(),
        Some(_) => None,
    }
    .ok_or_else(|| TrustError::Malformed("x5c is not a non-empty array of strings".into()))?;
    let claims = json_part(c, "claims")?;
    Ok((header, claims, x5c, jws_alg))
}

fn json_part(b64: &str, what: &str) -> Result<Map<String, Value>, TrustError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| TrustError::Malformed(format!("JWT {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| TrustError::Malformed(format!("JWT {what} is not a JSON object")))
}

/// The JWS signature by the leaf (`x5c[0]`), with the key type matching `alg`.
fn verify_signature(jwt: &str, alg: Algorithm, x5c: &[String]) -> Result<(), TrustError> {
    let leaf_der = x5c
        .first()
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .ok_or_else(|| TrustError::Malformed("x5c entry is not standard base64".into()))?;
    let leaf = parse_cert(&leaf_der)?;
    let key = decoding_key(leaf.public_key(), alg)?;
    let (signing_input, signature) = jwt
        .rsplit_once('.')
        .ok_or_else(|| TrustError::Malformed("not a compact JWS".into()))?;
    match jsonwebtoken::crypto::verify(signature, signing_input.as_bytes(), &key, alg) {
        Ok(true) => Ok(()),
        _ => Err(TrustError::BadSignature),
    }
}

/// The leaf's key for `alg`: RSA for RS*, P-256 for ES256, P-384 for ES384.
fn decoding_key(
    spki: &SubjectPublicKeyInfo<'_>,
    alg: Algorithm,
) -> Result<DecodingKey, TrustError> {
    let key_alg = &spki.algorithm.algorithm;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    let raw: &[u8] = &spki.subject_public_key.data;
    let fits = match alg {
        Algorithm::RS256 | Algorithm::RS384 => *key_alg == OID_PKCS1_RSAENCRYPTION,
        Algorithm::ES256 => *key_alg == OID_KEY_TYPE_EC_PUBLIC_KEY && curve == Some(OID_EC_P256),
        Algorithm::ES384 => {
            *key_alg == OID_KEY_TYPE_EC_PUBLIC_KEY && curve == Some(OID_NIST_EC_P384)
        }
        _ => false,
    };
    if !fits {
        return Err(TrustError::Alg(
            "the certificate's key does not match alg".into(),
        ));
    }
    match alg {
        Algorithm::RS256 | Algorithm::RS384 => Ok(DecodingKey::from_rsa_der(raw)),
        _ => Ok(DecodingKey::from_ec_der(raw)),
    }
}

#[cfg(test)]
mod tests;
