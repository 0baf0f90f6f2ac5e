//! AES-256-GCM as fhirgate stores sealed values (the audit vault's payloads
//! and wrapped keys, the step-up factors' TOTP secrets): a fresh random
//! 96-bit nonce per message, kept as hex; the ciphertext with its tag, kept
//! as base64; and associated data that binds the value to its place, so a
//! sealed value moved elsewhere does not open.

use aes_gcm::{
    aead::{Aead, Payload},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use rand::RngCore;

/// A sealed value: hex nonce and base64 ciphertext (with the GCM tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Hex, 12 bytes.
    pub nonce: String,
    /// Base64 ciphertext || tag.
    pub ciphertext: String,
}

/// Seals `msg` under `cipher` with `aad`; `None` only if the cipher fails.
pub fn seal(cipher: &Aes256Gcm, aad: &[u8], msg: &[u8]) -> Option<Sealed> {
    let mut n = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut n);
    let ct = cipher
        .encrypt(Nonce::from_slice(&n), Payload { msg, aad })
        .ok()?;
    Some(Sealed {
        nonce: hex::encode(n),
        ciphertext: B64.encode(ct),
    })
}

/// Opens `sealed` with `aad`; `None` when malformed, tampered with, sealed
/// under another key or for another place.
pub fn open(cipher: &Aes256Gcm, sealed: &Sealed, aad: &[u8]) -> Option<Vec<u8>> {
    let nonce = hex::decode(&sealed.nonce).ok().filter(|n| n.len() == 12)?;
    let ct = B64.decode(&sealed.ciphertext).ok()?;
    cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
        .ok()
}

#[cfg(test)]
mod tests {
    use aes_gcm::KeyInit;

    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_place() {
        let k = Aes256Gcm::new(&[1u8; 32].into());
        let s = seal(&k, b"here", b"secret").unwrap();
        assert_eq!(open(&k, &s, b"here").as_deref(), Some(&b"secret"[..]));
        assert_eq!(open(&k, &s, b"there"), None);
        assert_eq!(open(&Aes256Gcm::new(&[2u8; 32].into()), &s, b"here"), None);
        let mut t = s.clone();
        t.nonce = "00".into();
        assert_eq!(open(&k, &t, b"here"), None);
        assert_ne!(
            seal(&k, b"here", b"secret"),
            Some(s),
            "fresh nonce each time"
        );
    }
}
