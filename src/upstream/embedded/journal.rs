//! What one request wrote to the embedded store, so that the writes can be
//! undone when the request fails closed after them (issue 10): the store
//! commits before the request's audit entry is appended, and when that
//! append fails the answer is a 503, so a retrying client would otherwise
//! leave a duplicate behind.
//!
//! `/fhir` runs each request inside [`Journal::scope`] (a task-local, so
//! only writes made by the request's own task count, not background
//! tasks'). `crud::write_version` notes each version it writes as pending;
//! the write transaction's commit makes the pending versions committed (a
//! rolled-back transaction's are dropped when the next one begins).
//! [`EmbeddedStore::undo`] then removes exactly those versions, newest
//! first, unless something newer was written since.

use std::sync::{Arc, Mutex};

use sqlx::{Row, SqliteConnection};

use super::{crud, index, EmbeddedStore};
use crate::error::FhirResult;

/// One version written by the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Resource type.
    pub rtype: String,
    /// Logical id.
    pub id: String,
    /// The version written.
    pub version: i64,
    /// Its `meta.lastUpdated`, which tells it apart from a version of the
    /// same number written by someone else after an undo.
    pub last_updated: String,
}

#[derive(Debug, Default)]
struct Inner {
    pending: Vec<Version>,
    committed: Vec<Version>,
}

/// The writes of one request. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Inner>>);

tokio::task_local! {
    static CURRENT: Journal;
}

impl Journal {
    /// Runs `fut` with this journal noting the embedded store's writes.
    pub async fn scope<F: std::future::Future>(&self, fut: F) -> F::Output {
        CURRENT.scope(self.clone(), fut).await
    }

    /// The versions committed so far, in write order.
    pub fn committed(&self) -> Vec<Version> {
        self.0
            .lock()
            .map(|j| j.committed.clone())
            .unwrap_or_default()
    }

    fn with(f: impl FnOnce(&mut Inner)) {
        let _ = CURRENT.try_with(|j| {
            if let Ok(mut inner) = j.0.lock() {
                f(&mut inner);
            }
        });
    }

    /// A write transaction begins: versions of an earlier one that rolled
    /// back are forgotten.
    pub(crate) fn begin() {
        Self::with(|j| j.pending.clear());
    }

    /// A version was written in the current transaction.
    pub(crate) fn note(v: Version) {
        Self::with(|j| j.pending.push(v));
    }

    /// The current transaction committed.
    pub(crate) fn commit() {
        Self::with(|j| {
            let pending = std::mem::take(&mut j.pending);
            j.committed.extend(pending);
        });
    }
}

/// What a resource is after one of its versions was undone.
#[derive(Debug, Clone, PartialEq)]
pub enum Restored {
    /// No version is left: it never existed.
    Gone,
    /// Its previous version, a deletion.
    Deleted {
        /// That version's number.
        version: i64,
        /// Its `lastUpdated`.
        last_updated: String,
    },
    /// Its previous version.
    Live(serde_json::Value),
}

/// One undone version and what the resource is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Undone {
    /// The version removed.
    pub version: Version,
    /// The resource now.
    pub now: Restored,
}

/// Undoes what a request that failed closed wrote ([`EmbeddedStore::undo`])
/// and puts the consent index back for each undone Consent (it learned the
/// write when it was made). Failures are logged: the request already
/// answers 503.
pub async fn undo_request(app: &crate::AppState, journal: &Journal) {
    let Some(store) = app.upstream.embedded() else {
        return;
    };
    let undone = match store.undo(journal).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "failed closed, but its writes could not be undone");
            return;
        }
    };
    if !undone.is_empty() {
        tracing::warn!(
            versions = undone.len(),
            "failed closed: the request's writes were undone"
        );
    }
    for u in undone.iter().filter(|u| u.version.rtype == "Consent") {
        if let Err(e) = app.consent.index.revert(&u.version.id, &u.now).await {
            tracing::error!(error = %e, consent = %u.version.id, "an undone Consent write is still in the consent index");
        }
    }
}

impl EmbeddedStore {
    /// Removes the versions `journal` committed, newest first, in one write
    /// transaction: each version's row goes from the history, and the
    /// resource is back at its previous version (index rows included), or
    /// gone when that was its first. A version that is no longer the
    /// resource's latest (written over since) is left alone. Returns the
    /// versions removed, newest first.
    pub async fn undo(&self, journal: &Journal) -> FhirResult<Vec<Undone>> {
        let versions = journal.committed();
        if versions.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let mut undone = Vec::new();
        for v in versions.iter().rev() {
            if let Some(now) = undo_one(&mut tx, v).await? {
                undone.push(Undone {
                    version: v.clone(),
                    now,
                });
            } else {
                tracing::warn!(
                    resource = %format!("{}/{}", v.rtype, v.id),
                    version = v.version,
                    "not undone: written over since"
                );
            }
        }
        tx.commit().await?;
        Ok(undone)
    }
}

async fn undo_one(conn: &mut SqliteConnection, v: &Version) -> FhirResult<Option<Restored>> {
    let Some(cur) = crud::current(&mut *conn, &v.rtype, &v.id).await? else {
        return Ok(None);
    };
    if cur.version != v.version {
        return Ok(None);
    }
    let gone = sqlx::query(
        "DELETE FROM resource_version WHERE type = ? AND id = ? AND version = ? AND last_updated = ?",
    )
    .bind(&v.rtype)
    .bind(&v.id)
    .bind(v.version)
    .bind(&v.last_updated)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if gone == 0 {
        return Ok(None);
    }
    let previous = sqlx::query(
        "SELECT version, last_updated, deleted, body FROM resource_version \
         WHERE type = ? AND id = ? ORDER BY version DESC LIMIT 1",
    )
    .bind(&v.rtype)
    .bind(&v.id)
    .fetch_optional(&mut *conn)
    .await?;
    let indexed = !cur.deleted;
    Ok(Some(match previous {
        None => {
            index::reindex(&mut *conn, cur.res, &v.rtype, None, indexed).await?;
            sqlx::query("DELETE FROM resource WHERE res = ?")
                .bind(cur.res)
                .execute(&mut *conn)
                .await?;
            Restored::Gone
        }
        Some(p) => {
            let version: i64 = p.get(0);
            let last_updated: String = p.get(1);
            let deleted: i64 = p.get(2);
            let body: Option<String> = p.get(3);
            sqlx::query(
                "UPDATE resource SET version = ?, last_updated = ?, deleted = ?, body = ? WHERE res = ?",
            )
            .bind(version)
            .bind(&last_updated)
            .bind(deleted)
            .bind(&body)
            .bind(cur.res)
            .execute(&mut *conn)
            .await?;
            let json = body
                .as_deref()
                .map(serde_json::from_str::<serde_json::Value>)
                .transpose()?;
            index::reindex(&mut *conn, cur.res, &v.rtype, json.as_ref(), indexed).await?;
            match json {
                Some(body) => Restored::Live(body),
                None => Restored::Deleted {
                    version,
                    last_updated,
                },
            }
        }
    }))
}
