//! Throttling of failed authentication attempts (issue 10, limits), shared
//! by replicas through the state store (`auth_failures`).
//!
//! A key (for a password sign-in: the lower-cased user name) that has
//! `limit` failures of one kind within `window` is refused until the oldest
//! of them leaves the window, whatever it presents, so a guesser learns
//! nothing from the answers while throttled. A success clears the key's
//! failures. Keys are kept only as SHA-256 digests: names typed by
//! strangers are not stored.
//!
//! Kinds: [`SIGNIN`] (the password form, `http::ui::login`) and
//! `member-match` (failed matches by client id, `payer::throttle`).

use sha2::{Digest, Sha256};

use crate::{
    audit::{auditor::now_ms, AuditError, HttpFacts, RouteNote},
    AppState,
};

/// Failed password sign-ins, keyed by the lower-cased user name.
pub const SIGNIN: &str = "signin";

/// A throttle: at most `limit` failures in `window_ms`; `limit` 0 is off.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Failures allowed in the window.
    pub limit: u32,
    /// The window, milliseconds.
    pub window_ms: i64,
}

impl Rule {
    /// `limit` failures in `window_secs` seconds.
    pub fn new(limit: u32, window_secs: u64) -> Self {
        Self {
            limit,
            window_ms: i64::try_from(window_secs)
                .unwrap_or(i64::MAX / 2_000)
                .saturating_mul(1000),
        }
    }

    /// The sign-in rule of `[limits]`.
    pub fn signin(app: &AppState) -> Self {
        let l = &app.config.limits;
        Self::new(l.signin_failure_limit, l.signin_failure_window_seconds)
    }
}

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `Some(seconds to wait)` when `key` has used up its failures of `kind`.
pub async fn blocked(
    app: &AppState,
    kind: &str,
    key: &str,
    rule: Rule,
) -> Result<Option<u64>, sqlx::Error> {
    if rule.limit == 0 {
        return Ok(None);
    }
    let now = now_ms();
    let sql = "SELECT COUNT(*), MIN(at_ms) FROM auth_failures \
               WHERE kind = $1 AND key_hash = $2 AND at_ms > $3";
    let h = digest(key);
    let (count, oldest): (i64, Option<i64>) = crate::state::on_pool!(&app.state, |p| {
        sqlx::query_as(sql)
            .bind(kind)
            .bind(&h)
            .bind(now - rule.window_ms)
            .fetch_one(p)
            .await
    })?;
    if count < i64::from(rule.limit) {
        return Ok(None);
    }
    let wait_ms = oldest.map_or(rule.window_ms, |o| o + rule.window_ms - now);
    Ok(Some(
        u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1),
    ))
}

/// Records one failure of `key`; returns whether this one reached the
/// limit (the moment to raise an alert). Failures older than the window
/// are deleted on the way.
pub async fn fail(app: &AppState, kind: &str, key: &str, rule: Rule) -> Result<bool, sqlx::Error> {
    if rule.limit == 0 {
        return Ok(false);
    }
    let now = now_ms();
    let h = digest(key);
    crate::state::on_pool!(&app.state, |p| {
        sqlx::query("DELETE FROM auth_failures WHERE kind = $1 AND at_ms <= $2")
            .bind(kind)
            .bind(now - rule.window_ms)
            .execute(p)
            .await
            .map(|_| ())
    })?;
    crate::state::on_pool!(&app.state, |p| {
        sqlx::query("INSERT INTO auth_failures (kind, key_hash, at_ms) VALUES ($1, $2, $3)")
            .bind(kind)
            .bind(&h)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
    })?;
    Ok(blocked(app, kind, key, rule).await?.is_some())
}

/// Records a brute-force alert on the ledger: a route event `POST
/// <path>` named `route` (its AuditEvent subtype is `POST <route>`), status
/// 429, with `note` saying who and what (never the guessed values).
pub async fn record_alert(
    app: &AppState,
    request_id: &str,
    path: &str,
    route: &str,
    note: &RouteNote,
) -> Result<(), AuditError> {
    let http = HttpFacts {
        method: "POST".into(),
        path: path.to_owned(),
        query: None,
        client_addr: None,
        recorded: now_ms(),
    };
    let event = app
        .audit
        .builder()
        .route(request_id, &http, route, 429, note);
    app.audit.record(vec![event]).await.map(|_| ())
}

/// Forgets the failures of `key` (after a success).
pub async fn clear(app: &AppState, kind: &str, key: &str) -> Result<(), sqlx::Error> {
    let h = digest(key);
    crate::state::on_pool!(&app.state, |p| {
        sqlx::query("DELETE FROM auth_failures WHERE kind = $1 AND key_hash = $2")
            .bind(kind)
            .bind(&h)
            .execute(p)
            .await
            .map(|_| ())
    })?;
    Ok(())
}
