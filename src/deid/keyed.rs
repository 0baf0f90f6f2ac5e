//! The keyed functions of the engine, all HMAC-SHA256 under the export key
//! with a domain prefix: pseudonyms (`id:`), date-shift offsets (`shift:`)
//! and perturbation noise (`perturb:`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The export key and what is derived from it.
#[derive(Clone)]
pub(crate) struct Keyed {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(..)")
    }
}

impl Keyed {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        // HMAC pads a key shorter than its 64-byte block with zeros: this is
        // HMAC keyed with `key`, built without a fallible constructor.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&key);
        let mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
        Keyed { mac }
    }

    fn digest(&self, domain: &str, parts: &[&str]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                // Separator that cannot occur in a UTF-8 string.
                mac.update(&[0xff]);
            }
            mac.update(p.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// The pseudonym of an id or identifying string: 64 hex characters (a
    /// valid FHIR id).
    pub(crate) fn pseudonym(&self, value: &str) -> String {
        hex::encode(self.digest("id:", &[value]))
    }

    /// The date-shift offset of a subject: ±1..=range days, never 0.
    pub(crate) fn shift_days(&self, subject: &str, range: i64) -> i64 {
        if range < 1 {
            return 0;
        }
        let d = self.digest("shift:", &[subject]);
        let x = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let range_u = range.unsigned_abs();
        let magnitude = i64::try_from(x % range_u).unwrap_or(0) + 1;
        if d[8] & 1 == 0 {
            magnitude
        } else {
            -magnitude
        }
    }

    /// Deterministic noise in [-1, 1] for one location of one resource.
    pub(crate) fn noise(&self, resource: &str, location: &str) -> f64 {
        let d = self.digest("perturb:", &[resource, location]);
        let x = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        // 53 random bits → [0, 1].
        let unit = (x >> 11) as f64 / ((1u64 << 53) - 1) as f64;
        unit * 2.0 - 1.0
    }
}
