//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), as
//! authenticator apps compute them: HMAC-SHA-1, 30-second steps, 6 digits,
//! the secret shown as base32 (RFC 4648, no padding) in an `otpauth://`
//! URI (the Key Uri Format authenticator apps read from a QR code).
//!
//! Verification accepts the current step and `window` steps either side
//! (clock drift), and only a step later than the last one accepted for the
//! same secret, so a code seen once (over a shoulder, in a proxy log) cannot
//! be replayed within its lifetime.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

/// Step length, seconds (RFC 6238 default; what every app assumes).
pub const STEP_SECS: u64 = 30;
/// Code length (what every app assumes).
pub const DIGITS: u32 = 6;
/// Secret length, bytes (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; SECRET_LEN];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

/// The HOTP value of `secret` at `counter`, `digits` long (RFC 4226 §5.3).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The step `unix_secs` falls in.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// The code of `secret` at `unix_secs`, zero-padded.
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step_at(unix_secs), DIGITS),
        width = DIGITS as usize
    )
}

/// The step `code` matches at `unix_secs` within `window` steps either
/// side, if it is later than `last_step` (the last one accepted); `None`
/// for a wrong, malformed, stale or replayed code. Compares in constant
/// time.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_secs: u64,
    window: u64,
    last_step: Option<u64>,
) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(unix_secs);
    let mut found = None;
    for step in now.saturating_sub(window)..=now.saturating_add(window) {
        let want = format!(
            "{:0width$}",
            hotp(secret, step, DIGITS),
            width = DIGITS as usize
        );
        if same(want.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found.filter(|s| last_step.is_none_or(|last| *s > last))
}

/// Byte equality without an early exit.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Base32 (RFC 4648 alphabet, no padding), as authenticator apps take it.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buf >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://totp/…` URI an app enrolls from (Key Uri Format):
/// label `issuer:account`, the base32 secret, the issuer, and the
/// algorithm, digits and period spelled out.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits, seed "12345678901234567890").
    #[test]
    fn rfc6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(seed, step_at(t), 8), want, "T={t}");
        }
    }

    /// RFC 4226 Appendix D (6 digits, counters 0..9).
    #[test]
    fn rfc4226_test_vectors() {
        let want = [
            755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871,
            520_489,
        ];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", c as u64, 6), *w);
        }
    }

    #[test]
    fn verify_takes_the_window_and_refuses_replays_and_junk() {
        let s = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = code_at(s, now);
        let step = step_at(now);
        assert_eq!(verify(s, &code, now, 1, None), Some(step));
        // one step of drift either way
        assert_eq!(verify(s, &code, now + STEP_SECS, 1, None), Some(step));
        assert_eq!(verify(s, &code, now - STEP_SECS, 1, None), Some(step));
        // two steps away: refused
        assert_eq!(verify(s, &code, now + 2 * STEP_SECS, 1, None), None);
        // replay of the accepted step, or of an older one: refused
        assert_eq!(verify(s, &code, now, 1, Some(step)), None);
        assert_eq!(verify(s, &code, now, 1, Some(step + 1)), None);
        assert_eq!(verify(s, &code, now, 1, Some(step - 1)), Some(step));
        for junk in ["", "12345", "1234567", "12a456", "      "] {
            assert_eq!(verify(s, junk, now, 1, None), None, "{junk:?}");
        }
        let other = code_at(b"another secret value", now);
        if other != code {
            assert_eq!(verify(s, &other, now, 0, None), None);
        }
    }

    #[test]
    fn base32_and_the_enrollment_uri() {
        // RFC 4648 §10 vectors, without padding
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), enc);
        }
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        let uri = otpauth_uri("fhirgate demo", "dr.a@x", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/fhirgate%20demo:dr%2Ea%40x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=fhirgate%20demo&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(new_secret().len(), SECRET_LEN);
        assert_ne!(new_secret(), new_secret());
    }
}
