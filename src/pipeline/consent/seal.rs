//! Sealed paging tokens. Under consent the facade builds each page itself
//! from as many upstream pages as it takes, so its `next` link carries where
//! the upstream stands (the upstream's own continuation and how many of its
//! matches were already used) in a token the caller can neither read nor
//! forge: `base64url(nonce ‖ AES-256-GCM(JSON))` under a key derived from
//! the deployment's seal secret (a readable upstream offset would tell how
//! many hidden matches were skipped). The token is bound to the caller
//! (client and user), to the search it continues, and to the consent epoch
//! (any Consent change anywhere invalidates open paging, so a revoked
//! consent can never be paged around).

use aes_gcm::{
    aead::{Aead, KeyInit},
    Aes256Gcm, Nonce,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{FhirError, FhirResult, IssueType};

const NONCE_LEN: usize = 12;

/// The paging parameter the facade's `next` links carry.
pub const PAGE_PARAM: &str = "_page";

/// What a sealed token holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageState {
    /// The upstream continuation: path and query below the FHIR base
    /// (`Observation?code=x&_count=20&_offset=40`).
    pub upstream: String,
    /// Matches of that upstream page already used.
    pub skip: usize,
    /// Matches released on earlier pages (for a true total at the end).
    pub released: usize,
    /// The caller's true total, when it was counted ahead.
    #[serde(default)]
    pub total: Option<usize>,
    /// Page size the caller asked for.
    pub count: usize,
    /// `_elements` / `_summary` the caller asked for (applied by the facade).
    pub subset: Vec<(String, String)>,
    /// The facade path the token continues (`Observation`, `Patient/1/Condition`).
    pub path: String,
    /// Client id.
    pub client: String,
    /// fhirUser.
    pub user: Option<String>,
    /// Consent epoch when the search started.
    pub epoch: i64,
}

fn cipher(key: &[u8]) -> FhirResult<Aes256Gcm> {
    let mut h = Sha256::new();
    h.update(b"fhirgate paging seal v1\0");
    h.update(key);
    Aes256Gcm::new_from_slice(&h.finalize())
        .map_err(|_| FhirError::internal("paging seal key is unusable"))
}

/// Seals a page state.
pub fn seal(key: &[u8], state: &PageState) -> FhirResult<String> {
    let json =
        serde_json::to_vec(state).map_err(|e| FhirError::internal(format!("paging token: {e}")))?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher(key)?
        .encrypt(Nonce::from_slice(&nonce), json.as_slice())
        .map_err(|_| FhirError::internal("paging token encryption failed"))?;
    let mut out = nonce.to_vec();
    out.extend(ct);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

fn invalid(why: &str) -> FhirError {
    FhirError::new(
        axum::http::StatusCode::BAD_REQUEST,
        IssueType::Invalid,
        format!("the paging link is not valid: {why}; run the search again"),
    )
}

/// Opens a token for `caller`/`user` on `path`; any mismatch is an error.
pub fn open(
    key: &[u8],
    token: &str,
    path: &str,
    client: &str,
    user: Option<&str>,
    epoch: i64,
) -> FhirResult<PageState> {
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid("malformed"))?;
    if raw.len() <= NONCE_LEN {
        return Err(invalid("malformed"));
    }
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    let json = cipher(key)?
        .decrypt(Nonce::from_slice(nonce), ct)
        .map_err(|_| invalid("it was not issued by this server"))?;
    let state: PageState = serde_json::from_slice(&json).map_err(|_| invalid("malformed"))?;
    if state.client != client || state.user.as_deref() != user {
        return Err(invalid("it was issued to another caller"));
    }
    if state.path != path {
        return Err(invalid("it belongs to another search"));
    }
    if state.epoch != epoch {
        return Err(FhirError::new(
            axum::http::StatusCode::GONE,
            IssueType::Processing,
            "consent changed since this search started; run the search again",
        ));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> PageState {
        PageState {
            upstream: "Observation?_count=2&_offset=2".into(),
            skip: 1,
            released: 2,
            total: None,
            count: 2,
            subset: vec![],
            path: "Observation".into(),
            client: "app".into(),
            user: Some("Practitioner/1".into()),
            epoch: 7,
        }
    }

    #[test]
    fn round_trip_and_every_binding() {
        let key = b"k".repeat(32);
        let t = seal(&key, &state()).unwrap();
        let user = Some("Practitioner/1");
        assert_eq!(
            open(&key, &t, "Observation", "app", user, 7).unwrap(),
            state()
        );
        assert!(open(&key, &t, "Observation", "other", user, 7).is_err());
        assert!(open(&key, &t, "Observation", "app", None, 7).is_err());
        assert!(open(&key, &t, "Condition", "app", user, 7).is_err());
        let gone = open(&key, &t, "Observation", "app", user, 8).unwrap_err();
        assert_eq!(gone.status.as_u16(), 410);
        assert!(open(&b"x".repeat(32), &t, "Observation", "app", user, 7).is_err());
        // opaque: nothing of the state is readable, and any change breaks it
        assert!(!t.contains("Observation") && !t.contains("offset"));
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(raw);
        assert!(open(&key, &forged, "Observation", "app", user, 7).is_err());
    }
}
