//! CRD's state in the state store: the replay cache of CDS client JWT ids
//! (shared by replicas) and the server secret behind coverage-assertion ids.
//! One SQL text per query (`$N` placeholders work on both backends).

use rand::RngCore;

use crate::state::{on_pool, StateStore};

/// The `meta` key of the coverage-assertion secret.
const SECRET_KEY: &str = "crd.assertion_secret";

/// Records a client JWT `jti` for `iss`; false when it was seen before
/// (replay). The primary key decides, so racing replicas cannot both win.
/// Expired entries are purged on the way.
pub async fn jti_first_use(
    store: &StateStore,
    iss: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let purge = "DELETE FROM crd_client_jti WHERE expires_at < $1";
    let insert = "INSERT INTO crd_client_jti (iss, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    on_pool!(store, |p| sqlx::query(purge)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))?;
    let inserted = on_pool!(store, |p| sqlx::query(insert)
        .bind(iss)
        .bind(jti)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// The secret keying coverage-assertion ids: created once (the first
/// writer wins, every replica then reads the same one).
pub async fn assertion_secret(store: &StateStore) -> Result<String, sqlx::Error> {
    if let Some(s) = store.meta(SECRET_KEY).await? {
        return Ok(s);
    }
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let fresh = hex::encode(raw);
    let insert = "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
    let select = "SELECT value FROM meta WHERE key = $1";
    on_pool!(store, |p| sqlx::query(insert)
        .bind(SECRET_KEY)
        .bind(&fresh)
        .execute(p)
        .await
        .map(|_| ()))?;
    let (kept,): (String,) = on_pool!(store, |p| sqlx::query_as(select)
        .bind(SECRET_KEY)
        .fetch_one(p)
        .await)?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jtis_are_single_use_per_issuer_and_the_secret_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        assert!(jti_first_use(&store, "a", "j1", 200, 100).await.unwrap());
        assert!(!jti_first_use(&store, "a", "j1", 200, 100).await.unwrap());
        assert!(jti_first_use(&store, "b", "j1", 200, 100).await.unwrap());
        // expired entries are purged, so an id may come back after its exp
        assert!(jti_first_use(&store, "a", "j1", 400, 300).await.unwrap());
        let s = assertion_secret(&store).await.unwrap();
        assert_eq!(s.len(), 64);
        assert_eq!(assertion_secret(&store).await.unwrap(), s);
    }
}
