//! `private_key_jwt` client authentication: the signed JWT a confidential
//! asymmetric client sends as `client_assertion` at the token endpoint.
//!
//! - RFC 7523 §2.2 and §3 (JWT client authentication and its claims),
//!   RFC 7521 §4.2 (`client_assertion_type`).
//! - SMART App Launch 2.2 "Client Authentication: Asymmetric (public key)":
//!   RS384 and ES384 are accepted; RS256 too, because UDAP requires it.
//!   `iss` = `sub` = `client_id`, `aud` = the token endpoint URL, `exp` at
//!   most five minutes ahead, `jti` unique. The key is chosen by `kid` from
//!   the client's JWKS, among keys whose type fits the `alg`.
//! - RFC 8725 §2.1/§3.1 (algorithm confusion): `none`, HMAC and any `alg`
//!   that does not fit the JWK's key type are refused before any
//!   signature check.
//!
//! Flow at the token endpoint: [`check_assertion_type`], then
//! [`peek_issuer`] to find the client (unverified!), then the caller fetches
//! that client's JWKS (registered or from its `jwks_uri`), then
//! [`verify_client_assertion`]; finally the caller refuses a `jti` it has
//! seen before and remembers it until [`VerifiedAssertion::exp`].
//! Every refusal is `invalid_client` (RFC 6749 §5.2, 401) with a specific
//! description that never echoes the assertion.

#[cfg(test)]
mod tests;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::keys::{audience_contains, numeric_date, Unverified};
use crate::OAuthError;

/// The only `client_assertion_type` (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest assertion we look at, bytes (a guard, not a protocol limit).
pub const MAX_ASSERTION_BYTES: usize = 64 * 1024;

/// Longest `jti` we accept: the caller stores it for replay detection.
pub const MAX_JTI_CHARS: usize = 256;

/// What a client assertion must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct AssertionRules<'a> {
    /// The client the assertion's `iss` named (and `sub` must too).
    pub client_id: &'a str,
    /// This server's token endpoint URL, the required `aud`.
    pub token_endpoint: &'a str,
    /// The current time, seconds since the epoch.
    pub now: i64,
    /// Furthest `exp` may be ahead of `now`, seconds (SMART: 300).
    pub max_lifetime_secs: i64,
    /// Clock-skew allowance for `exp`, `iat` and `nbf`, seconds (e.g. 60).
    pub leeway_secs: i64,
}

/// An assertion that passed every check; the caller does replay detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The assertion's id: refuse it if seen before, remember it until `exp`.
    pub jti: String,
    /// The assertion's expiry, seconds since the epoch.
    pub exp: i64,
    /// The `extensions` claim as sent (UDAP authorization extensions such
    /// as `hl7-b2b`, read by [`crate::b2b`]), if any.
    pub extensions: Option<Value>,
}

/// Key types an accepted `alg` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP384,
}

fn invalid(description: &str) -> OAuthError {
    OAuthError::invalid_client(description)
}

/// Checks `client_assertion_type` (RFC 7521 §4.2): anything but
/// [`CLIENT_ASSERTION_TYPE`] is `invalid_request` (400).
pub fn check_assertion_type(assertion_type: Option<&str>) -> Result<(), OAuthError> {
    match assertion_type {
        Some(CLIENT_ASSERTION_TYPE) => Ok(()),
        Some(_) => Err(OAuthError::invalid_request(format!(
            "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
        ))),
        None => Err(OAuthError::invalid_request(
            "client_assertion_type is required",
        )),
    }
}

/// The assertion's `iss`, **unverified**: only for finding which client's
/// keys to verify it with. Never trust it before [`verify_client_assertion`].
pub fn peek_issuer(assertion: &str) -> Result<String, OAuthError> {
    parse(assertion)?
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .filter(|iss| !iss.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| invalid("client_assertion has no iss"))
}

fn parse(assertion: &str) -> Result<Unverified, OAuthError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(invalid("client_assertion is too large"));
    }
    Unverified::parse(assertion).ok_or_else(|| invalid("client_assertion is not a well-formed JWT"))
}

/// Verifies a `private_key_jwt` assertion against the client's JWKS
/// (`{"keys": [...]}`) and `rules`: signature first, then claims.
pub fn verify_client_assertion(
    assertion: &str,
    client_jwks: &Value,
    rules: &AssertionRules,
) -> Result<VerifiedAssertion, OAuthError> {
    let raw = parse(assertion)?;
    let alg_name = raw
        .alg()
        .ok_or_else(|| invalid("client_assertion header has no alg"))?;
    let (alg, kind) = accepted_alg(alg_name)?;
    if raw.header.contains_key("crit") {
        return Err(invalid(
            "client_assertion has critical header extensions that are not understood",
        ));
    }
    let keys = candidate_keys(client_jwks, raw.kid())?;
    let usable: Vec<DecodingKey> = keys
        .iter()
        .filter_map(|jwk| decoding_key(jwk, alg_name, kind))
        .collect();
    if usable.is_empty() {
        return Err(invalid(match kind {
            KeyKind::Rsa => {
                "the client's key for this kid is not an RSA signing key usable with this alg"
            }
            KeyKind::EcP384 => {
                "the client's key for this kid is not a P-384 EC signing key usable with ES384"
            }
        }));
    }
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let signed = usable.iter().any(|key| {
        jsonwebtoken::decode::<serde::de::IgnoredAny>(assertion, key, &validation).is_ok()
    });
    if !signed {
        return Err(invalid("client_assertion signature is invalid"));
    }
    check_claims(&raw.claims, rules)
}

/// RS384, ES384 and RS256 only; specific refusals for the dangerous ones.
fn accepted_alg(alg: &str) -> Result<(Algorithm, KeyKind), OAuthError> {
    match alg {
        "RS384" => Ok((Algorithm::RS384, KeyKind::Rsa)),
        "RS256" => Ok((Algorithm::RS256, KeyKind::Rsa)),
        "ES384" => Ok((Algorithm::ES384, KeyKind::EcP384)),
        a if a.eq_ignore_ascii_case("none") => Err(invalid(
            "unsigned client assertions (alg none) are not accepted",
        )),
        a if a.to_ascii_uppercase().starts_with("HS") => Err(invalid(
            "symmetric (HMAC) client assertion algs are not accepted for private_key_jwt",
        )),
        _ => Err(invalid(
            "client_assertion alg is not accepted; use RS384, ES384 or RS256",
        )),
    }
}

/// The JWKS entries the header's `kid` selects; with no `kid`, the JWKS's
/// only key.
fn candidate_keys<'j>(
    jwks: &'j Value,
    kid: Option<&str>,
) -> Result<Vec<&'j Map<String, Value>>, OAuthError> {
    let keys: Vec<&Map<String, Value>> = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(invalid("the client has no registered public keys"));
    }
    let selected: Vec<_> = match kid {
        Some(kid) => keys
            .into_iter()
            .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            .collect(),
        None if keys.len() == 1 => keys,
        None => {
            return Err(invalid(
                "client_assertion has no kid and the client has more than one key",
            ))
        }
    };
    if selected.is_empty() {
        return Err(invalid(
            "no key in the client's JWKS has the client_assertion's kid",
        ));
    }
    Ok(selected)
}

/// A verification key from one JWK, if it fits `alg` (RFC 7517 §4.2–4.4:
/// `use`, `key_ops` and `alg` honoured when present; RFC 7518 §6).
fn decoding_key(jwk: &Map<String, Value>, alg: &str, kind: KeyKind) -> Option<DecodingKey> {
    let s = |name: &str| jwk.get(name).and_then(Value::as_str);
    let b64 = |name: &str| s(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    if s("alg").is_some_and(|a| a != alg) || s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return None;
        }
    }
    match (kind, s("kty")?) {
        (KeyKind::Rsa, "RSA") => {
            let (n, e) = (b64("n")?, b64("e")?);
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            (bits >= 2048 && !e.is_empty()).then(|| DecodingKey::from_rsa_raw_components(&n, &e))
        }
        (KeyKind::EcP384, "EC") if s("crv") == Some("P-384") => {
            let (x, y) = (s("x")?, s("y")?);
            if b64("x")?.len() != 48 || b64("y")?.len() != 48 {
                return None;
            }
            DecodingKey::from_ec_components(x, y).ok()
        }
        _ => None,
    }
}

/// RFC 7523 §3 claims, with SMART's limits.
fn check_claims(
    c: &Map<String, Value>,
    rules: &AssertionRules,
) -> Result<VerifiedAssertion, OAuthError> {
    let str_claim = |name: &str| c.get(name).and_then(Value::as_str);
    let iss = str_claim("iss");
    if iss.is_none() || iss != str_claim("sub") {
        return Err(invalid(
            "client_assertion iss and sub must both be the client_id",
        ));
    }
    if iss != Some(rules.client_id) {
        return Err(invalid(
            "client_assertion iss is not this client's client_id",
        ));
    }
    if !audience_contains(c.get("aud"), rules.token_endpoint) {
        return Err(invalid(
            "client_assertion aud must be the token endpoint URL",
        ));
    }
    let (now, leeway) = (rules.now, rules.leeway_secs);
    let exp = numeric_date(c, "exp")
        .ok()
        .flatten()
        .ok_or_else(|| invalid("client_assertion has no valid exp"))?;
    if exp <= now.saturating_sub(leeway) {
        return Err(invalid("client_assertion has expired"));
    }
    if exp
        > now
            .saturating_add(rules.max_lifetime_secs)
            .saturating_add(leeway)
    {
        return Err(invalid(&format!(
            "client_assertion exp is more than {} seconds ahead",
            rules.max_lifetime_secs
        )));
    }
    for (claim, what) in [("iat", "issued"), ("nbf", "valid")] {
        match numeric_date(c, claim) {
            Err(()) => {
                return Err(invalid(&format!(
                    "client_assertion {claim} is not a NumericDate"
                )))
            }
            Ok(Some(t)) if t > now.saturating_add(leeway) => {
                return Err(invalid(&format!(
                    "client_assertion is {what} in the future ({claim})"
                )))
            }
            Ok(_) => {}
        }
    }
    let jti = str_claim("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid("client_assertion has no jti"))?;
    if jti.chars().count() > MAX_JTI_CHARS {
        return Err(invalid("client_assertion jti is too long"));
    }
    Ok(VerifiedAssertion {
        jti: jti.to_owned(),
        exp,
        extensions: c.get("extensions").cloned(),
    })
}
