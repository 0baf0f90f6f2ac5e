//! Persistence of PAS subscriptions (`pas_subscriptions`, migration 0012)
//! on both state-store backends.
//!
//! Status changes are compare-and-set on (status, version): a delivery
//! failure that raced with the owner's update, or a handshake answer for a
//! version since replaced, changes nothing.

use serde_json::Value;
use sqlx::Row;

use super::state::Status;
use crate::state::{on_pool, StateStore};

/// One stored subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Our id.
    pub id: String,
    /// The owning organization (`Organization/…`).
    pub organization: String,
    /// The OAuth client that created it.
    pub client_id: String,
    /// Current status.
    pub status: Status,
    /// Why it is in error (sent as `Subscription.error`).
    pub error: Option<String>,
    /// The Subscription as the client sent it.
    pub resource: Value,
    /// Event notifications generated since it started.
    pub events: i64,
    /// Version (`meta.versionId`), bumped by every change.
    pub version: i64,
    /// Created (ms).
    pub created_ms: i64,
    /// Last changed (ms, `meta.lastUpdated`).
    pub updated_ms: i64,
}

const COLUMNS: &str =
    "id, organization, client_id, status, error, resource, events, version, created_ms, updated_ms";

macro_rules! from_row {
    ($r:expr) => {{
        let r = $r;
        let status: String = r.try_get("status")?;
        let resource: String = r.try_get("resource")?;
        Ok::<Stored, sqlx::Error>(Stored {
            id: r.try_get("id")?,
            organization: r.try_get("organization")?,
            client_id: r.try_get("client_id")?,
            status: Status::parse(&status).unwrap_or(Status::Error),
            error: r.try_get("error")?,
            resource: serde_json::from_str(&resource)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            events: r.try_get("events")?,
            version: r.try_get("version")?,
            created_ms: r.try_get("created_ms")?,
            updated_ms: r.try_get("updated_ms")?,
        })
    }};
}

/// Runs a query on whichever pool `$store` has: `$bind` builds it from
/// `$q`, `$run` executes it, `$post` turns the answer `$res` into the
/// result (written once, expanded per backend row type).
macro_rules! on_backend {
    ($store:expr, $template:expr, |$q:ident| $bind:expr, $run:ident, |$res:ident| $post:expr) => {
        on_pool!($store, |p| {
            let $q = sqlx::query($template);
            let $res = $bind.$run(p).await?;
            $post
        })
    };
}

impl StateStore {
    /// Stores a new subscription.
    pub async fn sub_insert(&self, s: &Stored) -> Result<(), sqlx::Error> {
        let t = format!(
            "INSERT INTO pas_subscriptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let resource = s.resource.to_string();
        on_backend!(
            self,
            &t,
            |q| q
                .bind(&s.id)
                .bind(&s.organization)
                .bind(&s.client_id)
                .bind(s.status.as_str())
                .bind(&s.error)
                .bind(&resource)
                .bind(s.events)
                .bind(s.version)
                .bind(s.created_ms)
                .bind(s.updated_ms),
            execute,
            |_r| Ok(())
        )
    }

    /// One subscription by id (any owner; callers check ownership).
    pub async fn sub_get(&self, id: &str) -> Result<Option<Stored>, sqlx::Error> {
        let t = format!("SELECT {COLUMNS} FROM pas_subscriptions WHERE id = $1");
        on_backend!(self, &t, |q| q.bind(id), fetch_optional, |row| row
            .as_ref()
            .map(|r| from_row!(r))
            .transpose())
    }

    /// Every subscription of an organization, oldest first.
    pub async fn sub_of_org(&self, org: &str) -> Result<Vec<Stored>, sqlx::Error> {
        let t = format!(
            "SELECT {COLUMNS} FROM pas_subscriptions WHERE organization = $1 ORDER BY created_ms, id"
        );
        on_backend!(self, &t, |q| q.bind(org), fetch_all, |rows| rows
            .iter()
            .map(|r| from_row!(r))
            .collect())
    }

    /// The subscriptions of an organization in `status`.
    pub async fn sub_of_org_in(
        &self,
        org: &str,
        status: Status,
    ) -> Result<Vec<Stored>, sqlx::Error> {
        let t = format!(
            "SELECT {COLUMNS} FROM pas_subscriptions WHERE organization = $1 AND status = $2 ORDER BY created_ms, id"
        );
        on_backend!(
            self,
            &t,
            |q| q.bind(org).bind(status.as_str()),
            fetch_all,
            |rows| rows.iter().map(|r| from_row!(r)).collect()
        )
    }

    /// The owner's update: new resource and status, error cleared, version
    /// bumped; only if it is still at `version`. Returns whether it was.
    pub async fn sub_replace(
        &self,
        s: &Stored,
        version: i64,
        now_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let t = "UPDATE pas_subscriptions SET resource = $1, status = $2, error = NULL, \
                 version = version + 1, updated_ms = $3 WHERE id = $4 AND version = $5";
        let resource = s.resource.to_string();
        on_backend!(
            self,
            t,
            |q| q
                .bind(&resource)
                .bind(s.status.as_str())
                .bind(now_ms)
                .bind(&s.id)
                .bind(version),
            execute,
            |r| Ok(r.rows_affected() == 1)
        )
    }

    /// Compare-and-set of the status: only if it is still `from` at
    /// `version`. Returns whether it changed.
    pub async fn sub_transition(
        &self,
        id: &str,
        version: i64,
        (from, to): (Status, Status),
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let t = "UPDATE pas_subscriptions SET status = $1, error = $2, version = version + 1, \
                 updated_ms = $3 WHERE id = $4 AND status = $5 AND version = $6";
        on_backend!(
            self,
            t,
            |q| q
                .bind(to.as_str())
                .bind(error)
                .bind(now_ms)
                .bind(id)
                .bind(from.as_str())
                .bind(version),
            execute,
            |r| Ok(r.rows_affected() == 1)
        )
    }

    /// Numbers the next event of a subscription (1, 2, …); `None` when it
    /// is gone.
    pub async fn sub_next_event(&self, id: &str) -> Result<Option<i64>, sqlx::Error> {
        let t = "UPDATE pas_subscriptions SET events = events + 1 WHERE id = $1 RETURNING events";
        on_backend!(self, t, |q| q.bind(id), fetch_optional, |row| row
            .map(|r| r.try_get::<i64, _>("events"))
            .transpose())
    }

    /// Deletes an organization's subscription; whether there was one.
    pub async fn sub_delete(&self, id: &str, org: &str) -> Result<bool, sqlx::Error> {
        let t = "DELETE FROM pas_subscriptions WHERE id = $1 AND organization = $2";
        on_backend!(self, t, |q| q.bind(id).bind(org), execute, |r| Ok(r
            .rows_affected()
            == 1))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn stored(id: &str, org: &str, status: Status) -> Stored {
        Stored {
            id: id.into(),
            organization: org.into(),
            client_id: "c".into(),
            status,
            error: None,
            resource: serde_json::json!({"resourceType": "Subscription", "reason": id}),
            events: 0,
            version: 1,
            created_ms: 10,
            updated_ms: 10,
        }
    }

    /// What every backend must do with subscriptions.
    pub(crate) async fn suite(store: &StateStore) {
        store
            .sub_insert(&stored("s1", "Organization/a", Status::Requested))
            .await
            .unwrap();
        store
            .sub_insert(&stored("s2", "Organization/b", Status::Active))
            .await
            .unwrap();
        let got = store.sub_get("s1").await.unwrap().unwrap();
        assert_eq!(got, stored("s1", "Organization/a", Status::Requested));
        assert!(store.sub_get("nope").await.unwrap().is_none());
        // Handshake answered: requested → active, once.
        let ok = (Status::Requested, Status::Active);
        assert!(store.sub_transition("s1", 1, ok, None, 20).await.unwrap());
        assert!(!store.sub_transition("s1", 1, ok, None, 21).await.unwrap());
        let got = store.sub_get("s1").await.unwrap().unwrap();
        assert_eq!(
            (got.status, got.version, got.updated_ms),
            (Status::Active, 2, 20)
        );
        // A stale version changes nothing.
        let fail = (Status::Active, Status::Error);
        assert!(!store
            .sub_transition("s1", 1, fail, Some("x"), 22)
            .await
            .unwrap());
        assert!(store
            .sub_transition("s1", 2, fail, Some("down"), 22)
            .await
            .unwrap());
        let got = store.sub_get("s1").await.unwrap().unwrap();
        assert_eq!(got.error.as_deref(), Some("down"));
        // Owner's update clears the error.
        let mut upd = got.clone();
        upd.status = Status::Requested;
        upd.resource = serde_json::json!({"resourceType": "Subscription", "reason": "new"});
        assert!(!store.sub_replace(&upd, 1, 30).await.unwrap());
        assert!(store.sub_replace(&upd, 3, 30).await.unwrap());
        let got = store.sub_get("s1").await.unwrap().unwrap();
        assert_eq!(
            (got.status, got.version, got.error),
            (Status::Requested, 4, None)
        );
        assert_eq!(got.resource["reason"], "new");
        // Event numbers.
        assert_eq!(store.sub_next_event("s2").await.unwrap(), Some(1));
        assert_eq!(store.sub_next_event("s2").await.unwrap(), Some(2));
        assert_eq!(store.sub_next_event("nope").await.unwrap(), None);
        // Per organization.
        let a = store.sub_of_org("Organization/a").await.unwrap();
        assert_eq!(a.len(), 1);
        let active_b = store.sub_of_org_in("Organization/b", Status::Active);
        assert_eq!(active_b.await.unwrap().len(), 1);
        let active_a = store.sub_of_org_in("Organization/a", Status::Active);
        assert!(active_a.await.unwrap().is_empty());
        // Only the owner deletes.
        assert!(!store.sub_delete("s1", "Organization/b").await.unwrap());
        assert!(store.sub_delete("s1", "Organization/a").await.unwrap());
        assert!(store.sub_get("s1").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn sqlite_keeps_subscriptions() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(None, dir.path()).await.unwrap();
        suite(&store).await;
    }

    /// On the PostgreSQL of the test command (`FHIRGATE_TEST_DATABASE_URL`),
    /// in a fresh schema; skipped without it.
    #[tokio::test]
    async fn postgres_keeps_subscriptions() {
        let Some(pg) = crate::state::tests::Scratch::postgres().await else {
            return;
        };
        suite(&pg.store).await;
        pg.drop_schema().await;
    }
}
