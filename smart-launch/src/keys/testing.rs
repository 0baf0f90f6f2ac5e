//! Test fixtures shared by the `keys`, `token` and `assertion` tests: RSA
//! keys generated once per test binary (keygen is slow in debug builds),
//! key sets built from them, and self-deleting temporary directories.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rsa::RsaPrivateKey;

use super::{store, KeySet, SigningKey};

const POOL_SIZE: usize = 6;
static POOL: [OnceLock<RsaPrivateKey>; POOL_SIZE] = [const { OnceLock::new() }; POOL_SIZE];

/// The `i`-th pooled RSA-2048 key (generated on first use).
pub(crate) fn pool_key(i: usize) -> &'static RsaPrivateKey {
    POOL[i].get_or_init(|| store::generate().unwrap())
}

/// A key set holding only pool key 0, not backed by a directory.
pub(crate) fn shared() -> &'static KeySet {
    static SHARED: OnceLock<KeySet> = OnceLock::new();
    SHARED.get_or_init(|| KeySet::from_keys(vec![SigningKey::new(1, pool_key(0)).unwrap()]))
}

/// `load_or_create` on `dir`, generating pool key `first` if it is empty.
pub(crate) fn keyset_in(dir: &Path, first: usize) -> KeySet {
    KeySet::load_or_create_with(dir, || Ok(pool_key(first).clone())).unwrap()
}

/// `rotate` to pool key `i`.
pub(crate) fn rotate_to_pool(keys: &mut KeySet, dir: &Path, i: usize) {
    keys.rotate_to(dir, pool_key(i)).unwrap();
}

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        Self(std::env::temp_dir().join(format!("smart-launch-test-{}", uuid::Uuid::new_v4())))
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
