//! The key directory on disk (`{data_dir}/keys`): one PKCS#8 PEM file per
//! RSA key (RFC 5958, PEM per RFC 7468), named `key-<sequence>.pem` so the
//! highest sequence is the current signing key. Files are written to a
//! temporary name and renamed into place, so a reader never sees half a key.
//! On Unix the directory is created 0700 and key files 0600.
//!
//! One process owns a key directory: concurrent rotation by two processes
//! is not coordinated here.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;

use super::KeyError;

/// Bits of every key we generate, and the least we load.
pub(super) const RSA_BITS: usize = 2048;

const PREFIX: &str = "key-";
const SUFFIX: &str = ".pem";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) if missing, 0700 on Unix.
pub(super) fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(dir))
}

/// The key files in `dir`, newest (highest sequence) first. Other files are ignored.
pub(super) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, KeyError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let seq = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            found.push((seq, entry.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

/// Reads one key file; refuses anything but an RSA key of at least [`RSA_BITS`].
pub(super) fn read_key(path: &Path) -> Result<RsaPrivateKey, KeyError> {
    let pem = fs::read_to_string(path).map_err(io(path))?;
    let bad = |reason: String| KeyError::BadKeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| bad(e.to_string()))?;
    if key.size() * 8 < RSA_BITS {
        return Err(bad(format!("key is shorter than {RSA_BITS} bits")));
    }
    Ok(key)
}

/// Writes `key` as `key-<seq>.pem` in `dir` (0600 on Unix), atomically.
pub(super) fn write_key(dir: &Path, seq: u64, key: &RsaPrivateKey) -> Result<PathBuf, KeyError> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Encode(e.to_string()))?;
    let path = dir.join(format!("{PREFIX}{seq:010}{SUFFIX}"));
    let tmp = dir.join(format!(".{PREFIX}{}.tmp", uuid::Uuid::new_v4()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(pem.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
        // Best effort: a leftover temporary file is ignored by `list`.
        let _ = fs::remove_file(&tmp);
        return Err(io(&path)(e));
    }
    Ok(path)
}

/// Deletes a key file; one already gone is fine.
pub(super) fn remove(path: &Path) -> Result<(), KeyError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

/// A fresh RSA key from the OS random source.
pub(super) fn generate() -> Result<RsaPrivateKey, KeyError> {
    RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS).map_err(KeyError::Generate)
}
