//! Keyed pseudonyms: what the chained part of an audit entry says instead of
//! identifiers.
//!
//! A patient's pseudonym is `hex(HMAC-SHA256(K, "Patient/<id>"))` under the
//! deployment's pseudonym key `K` (`<data_dir>/keys/audit-pseudonym.key`,
//! 32 random bytes, hex, created on first start, mode 0600). The same key
//! hashes references, agents and payloads with a domain prefix (`ref:`,
//! `agent:`, `payload:`), so no two uses collide. Keyed rather than plain
//! SHA-256: resource ids are short and enumerable, so a plain hash of
//! `Observation/17` could be reversed by trying every id; without `K` these
//! values reveal nothing, with `K` (the operator) they can be recomputed
//! and compared. Replicas sharing one ledger must share this file (and the
//! vault's master key), like the signing keys.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// File name of the pseudonym key in the keys directory.
pub const PSEUDONYM_KEY_FILE: &str = "audit-pseudonym.key";

/// Why a key file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("audit key file {path}: {message}")]
pub struct KeyFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// Loads a 32-byte secret (hex) from `path`, creating it with random bytes
/// (mode 0600) when it does not exist yet. Two processes starting at once
/// agree: the file is created exclusively and the loser reads the winner's.
pub fn load_or_create_secret(path: &Path) -> Result<[u8; 32], KeyFileError> {
    let err = |message: String| KeyFileError {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory: {e}")))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            f.write_all(hex::encode(key).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| err(format!("cannot write: {e}")))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A concurrent creator may still be writing: retry briefly.
            for _ in 0..50 {
                let text =
                    std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
                if let Some(key) = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                {
                    return Ok(key);
                }
                if !text.trim().is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(err("not 64 hex characters (32 bytes)".into()))
        }
        Err(e) => Err(err(format!("cannot create: {e}"))),
    }
}

/// The deployment's keyed hash.
#[derive(Clone)]
pub struct Pseudonymizer {
    /// HMAC-SHA256 keyed with `K`: the key schedule (the inner and outer
    /// padded key blocks) is computed once here and cloned for every use,
    /// instead of two extra SHA-256 blocks per pseudonym.
    keyed: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer under `key`.
    pub fn new(key: [u8; 32]) -> Self {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        Self {
            keyed: <Hmac<Sha256> as Mac>::new_from_slice(&key).ok(),
        }
    }

    /// Loads (or creates) `<keys_dir>/audit-pseudonym.key`.
    pub fn load_or_create(keys_dir: &Path) -> Result<Self, KeyFileError> {
        load_or_create_secret(&keys_dir.join(PSEUDONYM_KEY_FILE)).map(Self::new)
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let Some(mut mac) = self.keyed.clone() else {
            return String::new();
        };
        for p in parts {
            mac.update(p);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The pseudonym of a patient: `HMAC(K, "Patient/<id>")`. Accepts
    /// `Patient/<id>`, a bare id, or an absolute URL ending in `Patient/<id>`.
    pub fn patient(&self, patient: &str) -> String {
        self.mac(&[patient_reference(patient).as_bytes()])
    }

    /// The keyed hash of a reference (`Type/id`).
    pub fn reference(&self, reference: &str) -> String {
        self.mac(&[b"ref:", reference.as_bytes()])
    }

    /// The keyed hash of an agent identity (`Practitioner/7`, `client:<id>`).
    pub fn agent(&self, agent: &str) -> String {
        self.mac(&[b"agent:", agent.as_bytes()])
    }

    /// The keyed digest of a set of references (sorted, newline-joined).
    pub fn references(&self, refs: &[String]) -> String {
        let mut sorted: Vec<&str> = refs.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        self.mac(&[b"refs:", sorted.join("\n").as_bytes()])
    }

    /// The keyed digest of a payload's plaintext bytes.
    pub fn payload(&self, plaintext: &[u8]) -> String {
        self.mac(&[b"payload:", plaintext])
    }
}

/// `Patient/<id>` from `Patient/<id>`, `<id>`, `…/Patient/<id>` or
/// `Patient/<id>/_history/<v>`.
pub fn patient_reference(patient: &str) -> String {
    let p = patient.trim();
    let p = match p.find("/_history/") {
        Some(i) => &p[..i],
        None => p,
    };
    match p.rfind("Patient/") {
        Some(i) => p[i..].to_owned(),
        None => format!("Patient/{p}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_normalised() {
        let a = Pseudonymizer::new([1; 32]);
        let b = Pseudonymizer::new([2; 32]);
        let p = a.patient("Patient/123");
        assert_eq!(p.len(), 64);
        assert_eq!(p, a.patient("123"));
        assert_eq!(p, a.patient("http://x/fhir/Patient/123/_history/2"));
        assert_ne!(p, a.patient("Patient/124"));
        assert_ne!(
            p,
            b.patient("Patient/123"),
            "another key, another pseudonym"
        );
        assert_ne!(p, a.reference("Patient/123"), "domains are separated");
        // HMAC-SHA256(K, "Patient/123") exactly.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[1; 32]).unwrap();
        mac.update(b"Patient/123");
        assert_eq!(p, hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            a.references(&["B/1".into(), "A/1".into(), "B/1".into()]),
            a.references(&["A/1".into(), "B/1".into()])
        );
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = Pseudonymizer::load_or_create(dir.path()).unwrap();
        let k2 = Pseudonymizer::load_or_create(dir.path()).unwrap();
        assert_eq!(k1.patient("Patient/1"), k2.patient("Patient/1"));
        let text = std::fs::read_to_string(dir.path().join(PSEUDONYM_KEY_FILE)).unwrap();
        assert_eq!(text.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(PSEUDONYM_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("bad.key"), "zz").unwrap();
        assert!(load_or_create_secret(&dir.path().join("bad.key")).is_err());
    }
}
