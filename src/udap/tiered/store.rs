//! What Tiered OAuth keeps in the state store (migration 0016): the client
//! id each identity provider gave fhirgate, and the operator's links from
//! an identity provider's subject (`iss`, `sub`) to a local user.

use crate::state::{on_pool, StateStore};

/// The client id fhirgate registered with at `idp`, if it did.
pub async fn idp_client(store: &StateStore, idp: &str) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT client_id FROM udap_idp_clients WHERE idp = $1";
    let row: Option<(String,)> = on_pool!(store, |p| sqlx::query_as(sql)
        .bind(idp)
        .fetch_optional(p)
        .await)?;
    Ok(row.map(|(c,)| c))
}

/// Records (or replaces) the client id `idp` gave fhirgate.
pub async fn set_idp_client(
    store: &StateStore,
    idp: &str,
    client_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO udap_idp_clients (idp, client_id, registered_at) VALUES ($1, $2, $3) \
               ON CONFLICT (idp) DO UPDATE SET client_id = excluded.client_id, registered_at = excluded.registered_at";
    on_pool!(store, |p| sqlx::query(sql)
        .bind(idp)
        .bind(client_id)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
}

/// Forgets the registration at `idp` (it refused our client id).
pub async fn forget_idp_client(store: &StateStore, idp: &str) -> Result<(), sqlx::Error> {
    on_pool!(store, |p| sqlx::query(
        "DELETE FROM udap_idp_clients WHERE idp = $1"
    )
    .bind(idp)
    .execute(p)
    .await
    .map(|_| ()))
}

/// The local user `subject` at `idp` is linked to.
pub async fn linked_user(
    store: &StateStore,
    idp: &str,
    subject: &str,
) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT username FROM udap_identity_links WHERE idp = $1 AND subject = $2";
    let row: Option<(String,)> = on_pool!(store, |p| sqlx::query_as(sql)
        .bind(idp)
        .bind(subject)
        .fetch_optional(p)
        .await)?;
    Ok(row.map(|(u,)| u))
}

/// Links `subject` at `idp` to local user `username` (replacing any link).
pub async fn link(
    store: &StateStore,
    idp: &str,
    subject: &str,
    username: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO udap_identity_links (idp, subject, username, created_at) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (idp, subject) DO UPDATE SET username = excluded.username, created_at = excluded.created_at";
    on_pool!(store, |p| sqlx::query(sql)
        .bind(idp)
        .bind(subject)
        .bind(username)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))
}

/// Removes the link of `subject` at `idp`; whether there was one.
pub async fn unlink(store: &StateStore, idp: &str, subject: &str) -> Result<bool, sqlx::Error> {
    let sql = "DELETE FROM udap_identity_links WHERE idp = $1 AND subject = $2";
    let n = on_pool!(store, |p| sqlx::query(sql)
        .bind(idp)
        .bind(subject)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::Scratch;

    async fn round_trip(store: &StateStore) {
        let idp = "https://idp.example/fhir";
        assert_eq!(idp_client(store, idp).await.unwrap(), None);
        set_idp_client(store, idp, "c1", 1).await.unwrap();
        set_idp_client(store, idp, "c2", 2).await.unwrap();
        assert_eq!(idp_client(store, idp).await.unwrap().as_deref(), Some("c2"));
        forget_idp_client(store, idp).await.unwrap();
        assert_eq!(idp_client(store, idp).await.unwrap(), None);

        assert_eq!(linked_user(store, idp, "alice").await.unwrap(), None);
        link(store, idp, "alice", "pat.jones", 1).await.unwrap();
        link(store, idp, "alice", "dr.lee", 2).await.unwrap();
        assert_eq!(
            linked_user(store, idp, "alice").await.unwrap().as_deref(),
            Some("dr.lee")
        );
        // the same subject at another IdP is another person
        assert_eq!(
            linked_user(store, "https://other.example/fhir", "alice")
                .await
                .unwrap(),
            None
        );
        assert!(unlink(store, idp, "alice").await.unwrap());
        assert!(!unlink(store, idp, "alice").await.unwrap());
    }

    #[tokio::test]
    async fn registrations_and_links_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        round_trip(&store).await;
    }

    #[tokio::test]
    async fn registrations_and_links_on_postgres() {
        let Some(s) = Scratch::postgres().await else {
            return;
        };
        round_trip(&s.store).await;
        s.drop_schema().await;
    }
}
