//! The tokens whose signature already verified: [`super::KeySet::verify`]
//! skips the RSA computation (and `jsonwebtoken`'s second parse of the
//! token) for a token it has seen verify before. Everything else (the
//! header checks, the `kid` being one of the set's keys *now*, and every
//! claim check: `exp`, `nbf`, `iss`, `aud`) still runs on every call.
//!
//! - Keyed by SHA-256 of the whole compact token (header, claims and
//!   signature bytes), so a token differing in any byte (an altered
//!   signature, a swapped header) misses and is verified in full.
//! - Each entry records the `kid` of the key that verified it; a hit counts
//!   only when the token's `kid` is that one and the set still holds that
//!   key (the caller looks the key up first), so a token signed by a key
//!   rotated out is refused as before. A `kid` is the key's RFC 7638
//!   thumbprint, so "verified by `kid`" is a fact about the key itself and
//!   clones of a key set can share one cache.
//! - Only successes are kept (never "this token is bad"), at most
//!   [`CAPACITY`] of them; the oldest is dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

/// How many verified tokens are remembered.
pub(super) const CAPACITY: usize = 4096;

/// SHA-256 of a compact token.
pub(super) type TokenDigest = [u8; 32];

/// The digest [`VerifiedCache`] keys a token by.
pub(super) fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Default)]
struct Inner {
    /// Token digest → the `kid` whose key verified its signature.
    kids: HashMap<TokenDigest, Box<str>>,
    /// Insertion order, oldest first (each digest once).
    order: VecDeque<TokenDigest>,
}

/// A bounded set of (token digest, `kid`) pairs; safe to share across threads.
#[derive(Default)]
pub(super) struct VerifiedCache {
    inner: Mutex<Inner>,
}

impl VerifiedCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map is consistent after every statement; a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the token with this digest verified before under `kid`.
    pub(super) fn verified(&self, token: &TokenDigest, kid: &str) -> bool {
        self.lock().kids.get(token).is_some_and(|k| &**k == kid)
    }

    /// Remembers that the token with this digest verified under `kid`,
    /// dropping the oldest entry when full.
    pub(super) fn insert(&self, token: TokenDigest, kid: &str) {
        let mut inner = self.lock();
        if inner.kids.contains_key(&token) {
            return;
        }
        while inner.order.len() >= CAPACITY {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.kids.remove(&old);
                }
                None => break,
            }
        }
        inner.kids.insert(token, kid.into());
        inner.order.push_back(token);
    }

    /// Forgets every entry whose `kid` is not in `kept`.
    pub(super) fn retain_kids(&self, kept: &[&str]) {
        let mut inner = self.lock();
        let Inner { kids, order } = &mut *inner;
        kids.retain(|_, kid| kept.contains(&&**kid));
        order.retain(|d| kids.contains_key(d));
    }

    /// How many entries are held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().kids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_first_and_kid_bound() {
        let cache = VerifiedCache::default();
        let d = |i: usize| digest(&format!("token-{i}"));
        for i in 0..CAPACITY + 10 {
            cache.insert(d(i), "k1");
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(!cache.verified(&d(0), "k1"), "the oldest were dropped");
        assert!(!cache.verified(&d(9), "k1"));
        assert!(cache.verified(&d(10), "k1"));
        assert!(cache.verified(&d(CAPACITY + 9), "k1"));
        assert!(!cache.verified(&d(CAPACITY + 9), "k2"), "another kid");
        cache.insert(d(CAPACITY + 9), "k2");
        assert!(cache.verified(&d(CAPACITY + 9), "k1"), "first kid kept");
        cache.retain_kids(&["k2"]);
        assert_eq!(cache.len(), 0);
        cache.insert(d(1), "k2");
        assert!(cache.verified(&d(1), "k2"));
    }
}
