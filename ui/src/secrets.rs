//! UI session and CSRF primitives (pure functions; the server supplies the
//! randomness and the cookies).
//!
//! - A session id is 32 random bytes, hex in the `fhirgate_session` cookie;
//!   the state store only ever sees [`sha256_hex`] of it, so a leaked
//!   database does not yield live sessions.
//! - A form token is `HMAC-SHA256(key = a cookie secret, "fhirgate-csrf-v1:" + purpose)`:
//!   keyed with the session id once signed in, and with the random
//!   pre-session `fhirgate_csrf` cookie on the sign-in form. A cross-site
//!   page can neither read the cookie nor compute the token, and no server
//!   secret is needed, so any number of replicas agree on it.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes lower- or upper-case hex; `None` on anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// SHA-256 of `text`, hex (what the state store keeps of a session id).
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// The keyed MAC; `None` cannot happen for HMAC (any key length is
/// accepted) but is handled as "no token" so every caller fails closed.
fn mac(secret: &str, purpose: &str) -> Option<HmacSha256> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    m.update(b"fhirgate-csrf-v1:");
    m.update(purpose.as_bytes());
    Some(m)
}

/// The form token for `purpose`, keyed with a cookie secret.
pub fn csrf_token(secret: &str, purpose: &str) -> String {
    mac(secret, purpose)
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Whether `presented` is the form token for `secret` and `purpose`
/// (constant-time comparison).
pub fn csrf_valid(secret: &str, purpose: &str, presented: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    match (unhex(presented), mac(secret, purpose)) {
        (Some(bytes), Some(m)) => m.verify_slice(&bytes).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(unhex("0001abff"), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn csrf_tokens_bind_secret_and_purpose() {
        let t = csrf_token("s1", "session");
        assert!(csrf_valid("s1", "session", &t));
        assert!(!csrf_valid("s2", "session", &t), "other secret");
        assert!(!csrf_valid("s1", "login", &t), "other purpose");
        assert!(!csrf_valid("s1", "session", ""), "missing");
        assert!(!csrf_valid("s1", "session", &t[..10]), "truncated");
        assert!(
            !csrf_valid("", "session", &csrf_token("", "session")),
            "no cookie"
        );
    }
}
