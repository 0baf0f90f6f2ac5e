//! The UDAP suites' small helpers (time, `jti`s, x5c-signed JWTs), with the
//! shared case runner and failure-text helpers re-exported.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::pki::Leaf;

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

pub fn jti(tag: &str) -> String {
    format!("{tag}-{}", rand::random::<u64>())
}

/// A JWT signed by `leaf` with `x5c` = [leaf, chain…].
pub fn signed(leaf: &Leaf, chain: &[String], claims: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(leaf.alg());
    let mut x5c = vec![leaf.b64()];
    x5c.extend(chain.iter().cloned());
    h.x5c = Some(x5c);
    jsonwebtoken::encode(&h, claims, &leaf.encoding_key()).unwrap()
}

pub use conformance_tests::cases::{ensure, short, Cases};
