//! Recovery codes: shown once at TOTP enrollment, each good for one
//! sign-in step-up when the authenticator is lost. Ten codes of 10
//! characters from an alphabet without look-alikes (no 0/O, 1/I/L), about
//! 50 bits each, grouped `xxxxx-xxxxx` for reading; stored only as SHA-256
//! digests of their normal form (upper case, no separators), so a stolen
//! state store does not yield usable codes.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Codes issued at once.
pub const COUNT: usize = 10;
const LEN: usize = 10;
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// `COUNT` fresh codes, as shown to the user.
pub fn generate() -> Vec<String> {
    let mut rng = rand::thread_rng();
    (0..COUNT)
        .map(|_| {
            let raw: String = (0..LEN)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect();
            format!("{}-{}", &raw[..LEN / 2], &raw[LEN / 2..])
        })
        .collect()
}

/// The normal form of what a user typed: separators and spaces dropped,
/// upper case; `None` when it cannot be a code.
pub fn normalize(typed: &str) -> Option<String> {
    let n: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (n.len() == LEN && n.bytes().all(|b| ALPHABET.contains(&b))).then_some(n)
}

/// The stored digest of a code (shown or typed form).
pub fn digest(code: &str) -> Option<String> {
    normalize(code).map(|n| hex::encode(Sha256::digest(n.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_readable_and_match_their_digest_however_typed() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut uniq = codes.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), COUNT);
        for c in &codes {
            assert_eq!(c.len(), LEN + 1);
            assert_eq!(&c[5..6], "-");
            let d = digest(c).unwrap();
            assert_eq!(digest(&c.to_lowercase()), Some(d.clone()));
            assert_eq!(digest(&c.replace('-', " ")), Some(d.clone()));
            assert_eq!(digest(&c.replace('-', "")), Some(d));
        }
        for junk in ["", "ABCDE", "ABCDE-FGHI0", "ABCDE-FGHIJK", "ABCDE-FGHI!"] {
            assert_eq!(digest(junk), None, "{junk}");
        }
    }
}
