//! Authorization-server state: registered clients, pending authorize
//! requests, codes, refresh tokens, issued access tokens, EHR launch
//! contexts, client-assertion ids and UI sessions. One SQL text per query
//! (`$N` placeholders work on both backends), run on either pool.
//!
//! Single-use rules are enforced by the database, not by read-then-write:
//! a code is redeemed by `UPDATE … WHERE used_at IS NULL`, a launch likewise,
//! an assertion `jti` by its primary key, so two replicas racing on the same
//! code or jti cannot both win.

use rusqlite::OptionalExtension;
use serde_json::Value;
use sqlx::Row;

use super::StateStore;

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    /// `client_id`.
    pub client_id: String,
    /// Human-readable name.
    pub client_name: String,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub client_type: String,
    /// argon2id hash of the secret (symmetric clients).
    pub secret_hash: Option<String>,
    /// The registered metadata (RFC 7591), incl. `redirect_uris`, `scope`,
    /// `grant_types`, `jwks`/`jwks_uri`, `launch_url`.
    pub metadata: Value,
    /// Registration time, seconds since the epoch.
    pub created_at: i64,
}

/// What redeeming an authorization code found.
#[derive(Debug, Clone, PartialEq)]
pub enum Redeemed {
    /// First use: the grant and its client.
    Fresh {
        /// Client the code was issued to.
        client_id: String,
        /// What it grants (JSON).
        grant: Value,
        /// Expiry.
        expires_at: i64,
    },
    /// Already used: the caller must revoke what it issued (RFC 6749 §4.1.2).
    Reused,
    /// Never issued.
    Unknown,
}

/// A stored refresh token.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshRecord {
    /// Client it was issued to.
    pub client_id: String,
    /// What it grants (JSON).
    pub grant: Value,
    /// The code its chain started from.
    pub code_hash: Option<String>,
    /// Expiry.
    pub expires_at: i64,
    /// Revoked or rotated away.
    pub revoked: bool,
}

fn json(text: &str) -> Result<Value, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

impl StateStore {
    /// Registers a client (fails on a duplicate id).
    pub async fn client_insert(&self, c: &ClientRecord) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO oauth_clients (client_id, client_name, client_type, secret_hash, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        let meta = c.metadata.to_string();
        on_pool!(self, |p| sqlx::query(sql)
            .bind(&c.client_id)
            .bind(&c.client_name)
            .bind(&c.client_type)
            .bind(&c.secret_hash)
            .bind(&meta)
            .bind(c.created_at)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// Replaces a registered client's name, type and metadata (UDAP
    /// re-registration); false when there is no such client.
    pub async fn client_update(&self, c: &ClientRecord) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE oauth_clients SET client_name = $1, client_type = $2, metadata = $3 WHERE client_id = $4";
        let meta = c.metadata.to_string();
        on_pool!(self, |p| sqlx::query(sql)
            .bind(&c.client_name)
            .bind(&c.client_type)
            .bind(&meta)
            .bind(&c.client_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    /// Looks a client up.
    pub async fn client_get(&self, client_id: &str) -> Result<Option<ClientRecord>, sqlx::Error> {
        let sql = "SELECT client_id, client_name, client_type, secret_hash, metadata, created_at FROM oauth_clients WHERE client_id = $1";
        let row: Option<(String, String, String, Option<String>, String, i64)> =
            on_pool!(self, |p| sqlx::query_as(sql)
                .bind(client_id)
                .fetch_optional(p)
                .await)?;
        row.map(
            |(client_id, client_name, client_type, secret_hash, meta, created_at)| {
                Ok(ClientRecord {
                    client_id,
                    client_name,
                    client_type,
                    secret_hash,
                    metadata: json(&meta)?,
                    created_at,
                })
            },
        )
        .transpose()
    }

    /// Every client, by name.
    pub async fn client_list(&self) -> Result<Vec<ClientRecord>, sqlx::Error> {
        let sql = "SELECT client_id, client_name, client_type, secret_hash, metadata, created_at FROM oauth_clients ORDER BY client_name, client_id";
        let rows: Vec<(String, String, String, Option<String>, String, i64)> =
            on_pool!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?;
        rows.into_iter()
            .map(
                |(client_id, client_name, client_type, secret_hash, meta, created_at)| {
                    Ok(ClientRecord {
                        client_id,
                        client_name,
                        client_type,
                        secret_hash,
                        metadata: json(&meta)?,
                        created_at,
                    })
                },
            )
            .collect()
    }

    /// Stores (or replaces) a pending authorize request.
    pub async fn pending_put(
        &self,
        id: &str,
        request: &Value,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO oauth_pending (id, request, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET request = excluded.request";
        let text = request.to_string();
        on_pool!(self, |p| sqlx::query(sql)
            .bind(id)
            .bind(&text)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// A pending request that has not expired.
    pub async fn pending_get(&self, id: &str, now: i64) -> Result<Option<Value>, sqlx::Error> {
        let sql = "SELECT request FROM oauth_pending WHERE id = $1 AND expires_at > $2";
        let row: Option<(String,)> = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(id)
            .bind(now)
            .fetch_optional(p)
            .await)?;
        row.map(|(t,)| json(&t)).transpose()
    }

    /// Removes a pending request (answered or abandoned).
    pub async fn pending_delete(&self, id: &str) -> Result<(), sqlx::Error> {
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM oauth_pending WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))
    }

    /// Stores an authorization code (by hash).
    pub async fn code_put(
        &self,
        code_hash: &str,
        client_id: &str,
        grant: &Value,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO oauth_codes (code_hash, client_id, grant_json, expires_at) VALUES ($1, $2, $3, $4)";
        let text = grant.to_string();
        on_pool!(self, |p| sqlx::query(sql)
            .bind(code_hash)
            .bind(client_id)
            .bind(&text)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// Redeems a code exactly once (the database decides the race).
    pub async fn code_redeem(&self, code_hash: &str, now: i64) -> Result<Redeemed, sqlx::Error> {
        let claim = "UPDATE oauth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL";
        let won = on_pool!(self, |p| sqlx::query(claim)
            .bind(now)
            .bind(code_hash)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        let sql = "SELECT client_id, grant_json, expires_at FROM oauth_codes WHERE code_hash = $1";
        let row: Option<(String, String, i64)> = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(code_hash)
            .fetch_optional(p)
            .await)?;
        Ok(match (won, row) {
            (1, Some((client_id, grant, expires_at))) => Redeemed::Fresh {
                client_id,
                grant: json(&grant)?,
                expires_at,
            },
            (_, Some(_)) => Redeemed::Reused,
            (_, None) => Redeemed::Unknown,
        })
    }

    /// Revokes every access and refresh token issued from a code (reuse detected).
    pub async fn revoke_code_chain(&self, code_hash: &str) -> Result<(), sqlx::Error> {
        // On a connection closed, not pooled, if this fails or is dropped
        // mid-transaction (`TxConn`).
        on_pool!(self, |p| {
            let mut conn = super::TxConn::acquire(p).await?;
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::query("UPDATE oauth_access SET revoked = 1 WHERE code_hash = $1")
                .bind(code_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE oauth_refresh SET revoked = 1 WHERE code_hash = $1")
                .bind(code_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            conn.done();
            Ok(())
        })
    }

    /// Records an issued access token.
    pub async fn access_put(
        &self,
        jti: &str,
        client_id: &str,
        code_hash: Option<&str>,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO oauth_access (jti, client_id, code_hash, expires_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(jti)
            .bind(client_id)
            .bind(code_hash)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// Whether an access token may still be used: issued by us and not
    /// revoked. An unknown jti counts as revoked (fail closed).
    pub async fn access_active(&self, jti: &str) -> Result<bool, sqlx::Error> {
        // asked on every request: read in place on a SQLite file (`inline`)
        if let StateStore::Sqlite(p) = self {
            let row = super::inline::read(p, |c| {
                c.prepare_cached("SELECT revoked FROM oauth_access WHERE jti = ?1")?
                    .query_row([jti], |r| r.get::<_, i64>(0))
                    .optional()
            });
            if let Some(row) = row {
                return Ok(row? == Some(0));
            }
        }
        let sql = "SELECT revoked FROM oauth_access WHERE jti = $1";
        let row: Option<(i64,)> = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(jti)
            .fetch_optional(p)
            .await)?;
        Ok(matches!(row, Some((0,))))
    }

    /// Revokes one access token; returns whether it existed for that client.
    pub async fn access_revoke(&self, jti: &str, client_id: &str) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE oauth_access SET revoked = 1 WHERE jti = $1 AND client_id = $2";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(jti)
            .bind(client_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
    }

    /// Stores a refresh token (by hash).
    pub async fn refresh_put(
        &self,
        token_hash: &str,
        r: &RefreshRecord,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO oauth_refresh (token_hash, client_id, grant_json, code_hash, expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6)";
        let text = r.grant.to_string();
        on_pool!(self, |p| sqlx::query(sql)
            .bind(token_hash)
            .bind(&r.client_id)
            .bind(&text)
            .bind(&r.code_hash)
            .bind(r.expires_at)
            .bind(i64::from(r.revoked))
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// Looks a refresh token up.
    pub async fn refresh_get(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, sqlx::Error> {
        let sql = "SELECT client_id, grant_json, code_hash, expires_at, revoked FROM oauth_refresh WHERE token_hash = $1";
        let row: Option<(String, String, Option<String>, i64, i64)> =
            on_pool!(self, |p| sqlx::query_as(sql)
                .bind(token_hash)
                .fetch_optional(p)
                .await)?;
        row.map(|(client_id, grant, code_hash, expires_at, revoked)| {
            Ok(RefreshRecord {
                client_id,
                grant: json(&grant)?,
                code_hash,
                expires_at,
                revoked: revoked != 0,
            })
        })
        .transpose()
    }

    /// Revokes a refresh token exactly once; returns whether this call did it
    /// (rotation uses this to decide a race between two uses of one token).
    pub async fn refresh_revoke(&self, token_hash: &str) -> Result<bool, sqlx::Error> {
        let sql = "UPDATE oauth_refresh SET revoked = 1 WHERE token_hash = $1 AND revoked = 0";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(token_hash)
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
    }

    /// Stores an EHR launch context.
    pub async fn launch_put(
        &self,
        launch_id: &str,
        client_id: &str,
        context: &Value,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO oauth_launch (launch_id, client_id, context, expires_at) VALUES ($1, $2, $3, $4)";
        let text = context.to_string();
        on_pool!(self, |p| sqlx::query(sql)
            .bind(launch_id)
            .bind(client_id)
            .bind(&text)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// Takes a launch context once, only for its client and before it expires.
    pub async fn launch_take(
        &self,
        launch_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<Value>, sqlx::Error> {
        let claim = "UPDATE oauth_launch SET used_at = $1 WHERE launch_id = $2 AND client_id = $3 AND used_at IS NULL AND expires_at > $1";
        let won = on_pool!(self, |p| sqlx::query(claim)
            .bind(now)
            .bind(launch_id)
            .bind(client_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if won != 1 {
            return Ok(None);
        }
        let row: Option<(String,)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT context FROM oauth_launch WHERE launch_id = $1"
        )
        .bind(launch_id)
        .fetch_optional(p)
        .await)?;
        row.map(|(t,)| json(&t)).transpose()
    }

    /// Records a client assertion `jti`; false when it was seen before
    /// (replay). Expired entries are purged on the way.
    pub async fn assertion_jti_first_use(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM oauth_assertion_jti WHERE expires_at < $1"
        )
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))?;
        let sql = "INSERT INTO oauth_assertion_jti (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(client_id)
            .bind(jti)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
    }

    /// Stores a UI session (by id hash).
    pub async fn session_put(
        &self,
        id_hash: &str,
        username: &str,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO ui_sessions (id_hash, username, expires_at) VALUES ($1, $2, $3)";
        on_pool!(self, |p| sqlx::query(sql)
            .bind(id_hash)
            .bind(username)
            .bind(expires_at)
            .execute(p)
            .await
            .map(|_| ()))
    }

    /// The user of a live session.
    pub async fn session_user(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let sql = "SELECT username FROM ui_sessions WHERE id_hash = $1 AND expires_at > $2";
        let row = on_pool!(self, |p| sqlx::query(sql)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(p)
            .await
            .map(|r| r.map(|r| r.get::<String, _>(0))))?;
        Ok(row)
    }

    /// Ends a session (and forgets how its user authenticated).
    pub async fn session_delete(&self, id_hash: &str) -> Result<(), sqlx::Error> {
        for sql in [
            "DELETE FROM ui_sessions WHERE id_hash = $1",
            "DELETE FROM ui_session_assurance WHERE id_hash = $1",
        ] {
            on_pool!(self, |p| sqlx::query(sql)
                .bind(id_hash)
                .execute(p)
                .await
                .map(|_| ()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// On a SQLite file an access token's state is read in place on this
    /// thread (`state::inline`), and a revocation is in force at once,
    /// whoever committed it.
    #[tokio::test]
    async fn revocation_is_read_in_place_and_in_force_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(None, dir.path()).await.unwrap();
        let StateStore::Sqlite(pool) = &s else {
            unreachable!()
        };
        s.access_put("j", "c", None, i64::MAX).await.unwrap();
        s.access_put("k", "c", None, i64::MAX).await.unwrap();
        assert!(s.access_active("j").await.unwrap());
        assert!(
            crate::state::inline::open_here(pool),
            "read on this thread's connection, not a pooled one"
        );
        assert!(s.access_revoke("j", "c").await.unwrap());
        assert!(!s.access_active("j").await.unwrap());
        // another process (the CLI) revokes on its own connection
        rusqlite::Connection::open(dir.path().join("state.db"))
            .unwrap()
            .execute("UPDATE oauth_access SET revoked = 1 WHERE jti = 'k'", [])
            .unwrap();
        assert!(!s.access_active("k").await.unwrap());
    }

    /// Part of the generic state-store suite (run on SQLite and PostgreSQL).
    pub(crate) async fn suite(s: &StateStore) {
        let c = ClientRecord {
            client_id: "c1".into(),
            client_name: "App".into(),
            client_type: "public".into(),
            secret_hash: None,
            metadata: json!({"redirect_uris": ["http://app/cb"]}),
            created_at: 10,
        };
        s.client_insert(&c).await.unwrap();
        assert!(s.client_insert(&c).await.is_err(), "duplicate client id");
        assert_eq!(s.client_get("c1").await.unwrap(), Some(c.clone()));
        assert_eq!(s.client_get("nope").await.unwrap(), None);
        assert_eq!(s.client_list().await.unwrap().len(), 1);

        s.pending_put("p1", &json!({"a": 1}), 100).await.unwrap();
        assert_eq!(
            s.pending_get("p1", 50).await.unwrap(),
            Some(json!({"a": 1}))
        );
        assert_eq!(s.pending_get("p1", 100).await.unwrap(), None, "expired");
        s.pending_delete("p1").await.unwrap();
        assert_eq!(s.pending_get("p1", 50).await.unwrap(), None);

        s.code_put("h1", "c1", &json!({"scope": "openid"}), 100)
            .await
            .unwrap();
        assert!(matches!(
            s.code_redeem("h1", 5).await.unwrap(),
            Redeemed::Fresh { .. }
        ));
        assert_eq!(s.code_redeem("h1", 6).await.unwrap(), Redeemed::Reused);
        assert_eq!(s.code_redeem("h2", 6).await.unwrap(), Redeemed::Unknown);

        s.access_put("j1", "c1", Some("h1"), 100).await.unwrap();
        assert!(s.access_active("j1").await.unwrap());
        assert!(
            !s.access_active("unknown").await.unwrap(),
            "unknown jti fails closed"
        );
        let r = RefreshRecord {
            client_id: "c1".into(),
            grant: json!({}),
            code_hash: Some("h1".into()),
            expires_at: 100,
            revoked: false,
        };
        s.refresh_put("r1", &r).await.unwrap();
        s.revoke_code_chain("h1").await.unwrap();
        assert!(!s.access_active("j1").await.unwrap());
        assert!(s.refresh_get("r1").await.unwrap().unwrap().revoked);

        s.refresh_put(
            "r2",
            &RefreshRecord {
                code_hash: None,
                ..r
            },
        )
        .await
        .unwrap();
        assert!(s.refresh_revoke("r2").await.unwrap());
        assert!(
            !s.refresh_revoke("r2").await.unwrap(),
            "only one revocation wins"
        );
        s.access_put("j2", "c1", None, 100).await.unwrap();
        assert!(!s.access_revoke("j2", "other-client").await.unwrap());
        assert!(s.access_revoke("j2", "c1").await.unwrap());
        assert!(!s.access_active("j2").await.unwrap());

        s.launch_put("l1", "c1", &json!({"patient": "p"}), 100)
            .await
            .unwrap();
        assert_eq!(
            s.launch_take("l1", "other", 5).await.unwrap(),
            None,
            "bound to its client"
        );
        assert_eq!(
            s.launch_take("l1", "c1", 5).await.unwrap(),
            Some(json!({"patient": "p"}))
        );
        assert_eq!(
            s.launch_take("l1", "c1", 6).await.unwrap(),
            None,
            "single use"
        );
        s.launch_put("l2", "c1", &json!({}), 100).await.unwrap();
        assert_eq!(
            s.launch_take("l2", "c1", 100).await.unwrap(),
            None,
            "expired"
        );

        assert!(s.assertion_jti_first_use("c1", "a", 100, 5).await.unwrap());
        assert!(
            !s.assertion_jti_first_use("c1", "a", 100, 6).await.unwrap(),
            "replay"
        );
        assert!(
            s.assertion_jti_first_use("c2", "a", 100, 6).await.unwrap(),
            "per client"
        );

        s.session_put("s1", "dr.lee", 100).await.unwrap();
        assert_eq!(
            s.session_user("s1", 5).await.unwrap().as_deref(),
            Some("dr.lee")
        );
        assert_eq!(s.session_user("s1", 100).await.unwrap(), None);
        s.session_delete("s1").await.unwrap();
        assert_eq!(s.session_user("s1", 5).await.unwrap(), None);
    }
}
