//! PKCE (RFC 7636) with S256 only: SMART App Launch 2.2 requires S256 and
//! forbids `plain`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};

use crate::OAuthError;

/// Checks an authorize request's `code_challenge` / `code_challenge_method`.
pub fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<String, OAuthError> {
    let challenge = challenge
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("code_challenge is required (PKCE S256)"))?;
    match method {
        Some("S256") => {}
        Some("plain") => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method plain is not allowed; use S256",
            ))
        }
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "unsupported code_challenge_method '{other}'"
            )))
        }
        None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method S256 is required",
            ))
        }
    }
    // base64url of a SHA-256 digest: 43 characters.
    if challenge.len() != 43
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(OAuthError::invalid_request(
            "code_challenge is not a base64url SHA-256 digest",
        ));
    }
    Ok(challenge.to_owned())
}

/// Verifies a token request's `code_verifier` against the stored challenge
/// (RFC 7636 §4.6). The verifier must be 43–128 unreserved characters.
pub fn verify(verifier: Option<&str>, challenge: &str) -> Result<(), OAuthError> {
    let v = verifier
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_grant("code_verifier is required"))?;
    if !(43..=128).contains(&v.len())
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(OAuthError::invalid_grant("code_verifier is malformed"));
    }
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
    if digest == challenge {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ))
    }
}

/// The S256 challenge of a verifier (for clients and tests).
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            challenge_of(V),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify(Some(V), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").is_ok());
    }

    #[test]
    fn bad_verifiers_and_challenges_are_refused() {
        let c = challenge_of(V);
        assert!(verify(None, &c).is_err());
        assert!(verify(Some(""), &c).is_err());
        assert!(verify(Some(&"a".repeat(43)), &c).is_err());
        // The challenge itself is not a valid verifier for itself.
        assert!(verify(Some(&c), &c).is_err());
        assert!(check_challenge(Some(&c), Some("plain")).is_err());
        assert!(check_challenge(Some(&c), None).is_err());
        assert!(check_challenge(None, Some("S256")).is_err());
        assert!(check_challenge(Some("short"), Some("S256")).is_err());
        assert!(check_challenge(Some(&c), Some("S256")).is_ok());
    }
}
