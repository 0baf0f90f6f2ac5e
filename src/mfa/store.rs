//! Where second factors live (state store, shared by replicas;
//! migration 0018):
//!
//! - `mfa_totp`: one confirmed authenticator per user: its secret sealed with
//!   AES-256-GCM under `<data_dir>/keys/mfa-secrets.key` (the user name is
//!   the associated data, so a sealed secret moved to another row does not
//!   open), when enrollment was confirmed, and the last step accepted.
//!   Accepting a code is one conditional update (`last_step < step`), so two
//!   replicas given the same code at once accept it once.
//! - `mfa_totp_pending` (migration 0022): an authenticator being enrolled
//!   or replacing the one above; it takes that one's place (and new recovery
//!   codes the old ones') in one transaction once a code from it is
//!   confirmed, so abandoning a replacement loses nothing.
//! - `mfa_recovery`: recovery code digests per user, each spent once by a
//!   conditional update.
//! - `mfa_phone`, `mfa_phone_pending` (migration 0022): a confirmed phone
//!   number per user (sealed like TOTP secrets, associated data `phone:` +
//!   user name), and codes sent by Twilio Verify not yet checked, per user
//!   and purpose (enrolling a number, or a step-up): the number (sealed)
//!   and the channel.
//! - `mfa_stepups`: step-ups done, by session (digest of its id) and
//!   factor, read back as "fresh within N seconds".

use std::path::Path;

use aes_gcm::{aead::KeyInit, Aes256Gcm};

use crate::{
    audit::{auditor::now_ms, pseudonym::load_or_create_secret, pseudonym::KeyFileError},
    state::StateStore,
};

/// File name of the key sealing TOTP secrets, in the keys directory.
pub const KEY_FILE: &str = "mfa-secrets.key";

/// Failures of the factor store.
#[derive(Debug, thiserror::Error)]
pub enum MfaStoreError {
    /// The database.
    #[error("state store: {0}")]
    Db(#[from] sqlx::Error),
    /// A sealed secret does not open (wrong key, or moved/tampered).
    #[error("a stored TOTP secret does not open under this deployment's key")]
    Sealed,
}

/// Seals and opens TOTP secrets.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Loads (or creates) the key in `keys_dir`.
    pub fn load_or_create(keys_dir: &Path) -> Result<Self, KeyFileError> {
        let key = load_or_create_secret(&keys_dir.join(KEY_FILE))?;
        Ok(Self::from_key(&key))
    }

    /// A box over raw key bytes.
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            // a 32-byte key is always the right length
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// `v1.<nonce hex>.<ciphertext base64>` of `secret` for `username`.
    pub fn seal(&self, username: &str, secret: &[u8]) -> Result<String, MfaStoreError> {
        let s = crate::aead::seal(&self.cipher, username.as_bytes(), secret)
            .ok_or(MfaStoreError::Sealed)?;
        Ok(format!("v1.{}.{}", s.nonce, s.ciphertext))
    }

    /// The secret sealed for `username`.
    pub fn open(&self, username: &str, sealed: &str) -> Result<Vec<u8>, MfaStoreError> {
        let mut parts = sealed.split('.');
        let (Some("v1"), Some(nonce), Some(ciphertext), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MfaStoreError::Sealed);
        };
        let s = crate::aead::Sealed {
            nonce: nonce.to_owned(),
            ciphertext: ciphertext.to_owned(),
        };
        crate::aead::open(&self.cipher, &s, username.as_bytes()).ok_or(MfaStoreError::Sealed)
    }
}

/// A user's authenticator, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totp {
    /// The sealed secret.
    pub sealed: String,
    /// When enrollment was confirmed with a first code (ms), if it was.
    pub confirmed_at: Option<i64>,
    /// The last step accepted.
    pub last_step: Option<i64>,
}

/// Starts (or restarts) enrollment: `sealed` waits in `mfa_totp_pending`
/// (replacing any earlier enrollment not confirmed) until [`totp_confirm`];
/// an authenticator already confirmed keeps working meanwhile.
pub async fn totp_begin(
    store: &StateStore,
    username: &str,
    sealed: &str,
) -> Result<(), MfaStoreError> {
    let sql = "INSERT INTO mfa_totp_pending (username, sealed, created_at) VALUES ($1, $2, $3) \
               ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, \
               created_at = excluded.created_at";
    crate::state::on_pool!(store, |p| {
        sqlx::query(sql)
            .bind(username)
            .bind(sealed)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// The sealed secret of the enrollment of `username` waiting for its
/// first code, if any.
pub async fn totp_pending(
    store: &StateStore,
    username: &str,
) -> Result<Option<String>, MfaStoreError> {
    let sql = "SELECT sealed FROM mfa_totp_pending WHERE username = $1";
    let row: Option<(String,)> = crate::state::on_pool!(store, |p| {
        sqlx::query_as(sql).bind(username).fetch_optional(p).await
    })?;
    Ok(row.map(|(s,)| s))
}

/// Confirms the pending enrollment `sealed` of `username` (its code
/// matched at `step`): in one transaction it replaces the user's
/// authenticator (if any) and recovery codes (by `recovery_digests`).
/// `false`, changing nothing, when that enrollment is no longer pending
/// (confirmed already by a racing request, or restarted since).
pub async fn totp_confirm(
    store: &StateStore,
    username: &str,
    sealed: &str,
    step: i64,
    recovery_digests: &[String],
) -> Result<bool, MfaStoreError> {
    let now = now_ms();
    let done = crate::state::on_pool!(store, |p| {
        let mut conn = crate::state::TxConn::acquire(p).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let taken = sqlx::query("DELETE FROM mfa_totp_pending WHERE username = $1 AND sealed = $2")
            .bind(username)
            .bind(sealed)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken != 1 {
            tx.rollback().await?;
            conn.done();
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO mfa_totp (username, sealed, confirmed_at, last_step, created_at) \
             VALUES ($1, $2, $3, $4, $3) \
             ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, \
             confirmed_at = excluded.confirmed_at, last_step = excluded.last_step, \
             created_at = excluded.created_at",
        )
        .bind(username)
        .bind(sealed)
        .bind(now)
        .bind(step)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM mfa_recovery WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        for d in recovery_digests {
            sqlx::query(
                "INSERT INTO mfa_recovery (username, code_hash, used_at) VALUES ($1, $2, NULL)",
            )
            .bind(username)
            .bind(d)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        conn.done();
        Ok::<bool, MfaStoreError>(true)
    })?;
    Ok(done)
}

/// The confirmed authenticator of `username`, if any.
pub async fn totp_get(store: &StateStore, username: &str) -> Result<Option<Totp>, MfaStoreError> {
    let sql = "SELECT sealed, confirmed_at, last_step FROM mfa_totp WHERE username = $1";
    let row: Option<(String, Option<i64>, Option<i64>)> = crate::state::on_pool!(store, |p| {
        sqlx::query_as(sql).bind(username).fetch_optional(p).await
    })?;
    Ok(row.map(|(sealed, confirmed_at, last_step)| Totp {
        sealed,
        confirmed_at,
        last_step,
    }))
}

/// Accepts `step` of the confirmed authenticator of `username` if it is
/// later than the last one accepted; `false` when another request got there
/// first (a replay), or there is no confirmed authenticator.
pub async fn totp_accept(
    store: &StateStore,
    username: &str,
    step: i64,
) -> Result<bool, MfaStoreError> {
    let sql = "UPDATE mfa_totp SET last_step = $2 WHERE username = $1 \
               AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)";
    let n = crate::state::on_pool!(store, |p| {
        sqlx::query(sql)
            .bind(username)
            .bind(step)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Removes the authenticator (confirmed or pending) and recovery codes of
/// `username`.
pub async fn totp_remove(store: &StateStore, username: &str) -> Result<(), MfaStoreError> {
    for sql in [
        "DELETE FROM mfa_totp WHERE username = $1",
        "DELETE FROM mfa_totp_pending WHERE username = $1",
        "DELETE FROM mfa_recovery WHERE username = $1",
    ] {
        crate::state::on_pool!(store, |p| {
            sqlx::query(sql).bind(username).execute(p).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// Replaces the recovery codes of `username` by `digests`.
pub async fn recovery_set(
    store: &StateStore,
    username: &str,
    digests: &[String],
) -> Result<(), MfaStoreError> {
    // On a connection closed, not pooled, if this fails or is dropped
    // mid-transaction (`state::TxConn`).
    crate::state::on_pool!(store, |p| {
        let mut conn = crate::state::TxConn::acquire(p).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("DELETE FROM mfa_recovery WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        for d in digests {
            sqlx::query(
                "INSERT INTO mfa_recovery (username, code_hash, used_at) VALUES ($1, $2, NULL)",
            )
            .bind(username)
            .bind(d)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        conn.done();
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

/// Spends the recovery code with `digest`; `false` if unknown or spent.
pub async fn recovery_use(
    store: &StateStore,
    username: &str,
    digest: &str,
) -> Result<bool, MfaStoreError> {
    let sql = "UPDATE mfa_recovery SET used_at = $3 \
               WHERE username = $1 AND code_hash = $2 AND used_at IS NULL";
    let n = crate::state::on_pool!(store, |p| {
        sqlx::query(sql)
            .bind(username)
            .bind(digest)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Recovery codes of `username` not yet spent.
pub async fn recovery_left(store: &StateStore, username: &str) -> Result<i64, MfaStoreError> {
    let sql = "SELECT COUNT(*) FROM mfa_recovery WHERE username = $1 AND used_at IS NULL";
    let (n,): (i64,) = crate::state::on_pool!(store, |p| {
        sqlx::query_as(sql).bind(username).fetch_one(p).await
    })?;
    Ok(n)
}

/// Records a step-up of the session whose id digest is `session` with
/// `factor` (`totp`, `recovery`, `sms`, `call`).
pub async fn stepup_record(
    store: &StateStore,
    session: &str,
    factor: &str,
) -> Result<(), MfaStoreError> {
    let sql = "INSERT INTO mfa_stepups (session_hash, factor, at_ms) VALUES ($1, $2, $3)";
    crate::state::on_pool!(store, |p| {
        sqlx::query(sql)
            .bind(session)
            .bind(factor)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// The factor of the session's latest step-up within `max_age_ms`, if any.
pub async fn stepup_fresh(
    store: &StateStore,
    session: &str,
    max_age_ms: i64,
) -> Result<Option<String>, MfaStoreError> {
    let sql = "SELECT factor FROM mfa_stepups WHERE session_hash = $1 AND at_ms > $2 \
               ORDER BY at_ms DESC LIMIT 1";
    let row: Option<(String,)> = crate::state::on_pool!(store, |p| {
        sqlx::query_as(sql)
            .bind(session)
            .bind(now_ms() - max_age_ms)
            .fetch_optional(p)
            .await
    })?;
    Ok(row.map(|(f,)| f))
}

/// The associated data a phone number of `username` is sealed under
/// (distinct from the TOTP secret's, so neither opens as the other).
pub fn phone_aad(username: &str) -> String {
    format!("phone:{username}")
}

/// The sealed confirmed phone number of `username`, if any.
pub async fn phone_get(
    store: &StateStore,
    username: &str,
) -> Result<Option<String>, MfaStoreError> {
    let sql = "SELECT sealed FROM mfa_phone WHERE username = $1";
    let row: Option<(String,)> = crate::state::on_pool!(store, |p| {
        sqlx::query_as(sql).bind(username).fetch_optional(p).await
    })?;
    Ok(row.map(|(s,)| s))
}

/// Removes the phone (confirmed and pending codes) of `username`.
pub async fn phone_remove(store: &StateStore, username: &str) -> Result<(), MfaStoreError> {
    for sql in [
        "DELETE FROM mfa_phone WHERE username = $1",
        "DELETE FROM mfa_phone_pending WHERE username = $1",
    ] {
        crate::state::on_pool!(store, |p| {
            sqlx::query(sql).bind(username).execute(p).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// What a phone code was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhonePurpose {
    /// Adding (or replacing) the user's phone number.
    Enroll,
    /// A step-up.
    StepUp,
}

impl PhonePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Enroll => "enroll",
            Self::StepUp => "stepup",
        }
    }
}

/// A code sent and not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonePending {
    /// The number it went to, sealed.
    pub sealed: String,
    /// `sms` or `call`.
    pub channel: String,
}

/// Records that a code for `purpose` was sent to the number `sealed` over
/// `channel` (replacing an earlier one of the same purpose).
pub async fn phone_pending_put(
    store: &StateStore,
    username: &str,
    purpose: PhonePurpose,
    sealed: &str,
    channel: &str,
) -> Result<(), MfaStoreError> {
    let sql = "INSERT INTO mfa_phone_pending (username, purpose, sealed, channel, created_at) \
               VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (username, purpose) DO UPDATE SET sealed = excluded.sealed, \
               channel = excluded.channel, created_at = excluded.created_at";
    crate::state::on_pool!(store, |p| {
        sqlx::query(sql)
            .bind(username)
            .bind(purpose.as_str())
            .bind(sealed)
            .bind(channel)
            .bind(now_ms())
            .execute(p)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// The code for `purpose` sent within `max_age_ms`, if any.
pub async fn phone_pending_get(
    store: &StateStore,
    username: &str,
    purpose: PhonePurpose,
    max_age_ms: i64,
) -> Result<Option<PhonePending>, MfaStoreError> {
    let sql = "SELECT sealed, channel FROM mfa_phone_pending \
               WHERE username = $1 AND purpose = $2 AND created_at > $3";
    let row: Option<(String, String)> = crate::state::on_pool!(store, |p| {
        sqlx::query_as(sql)
            .bind(username)
            .bind(purpose.as_str())
            .bind(now_ms() - max_age_ms)
            .fetch_optional(p)
            .await
    })?;
    Ok(row.map(|(sealed, channel)| PhonePending { sealed, channel }))
}

/// Forgets the code for `purpose`; `false` if there was none.
pub async fn phone_pending_clear(
    store: &StateStore,
    username: &str,
    purpose: PhonePurpose,
) -> Result<bool, MfaStoreError> {
    let sql = "DELETE FROM mfa_phone_pending WHERE username = $1 AND purpose = $2";
    let n = crate::state::on_pool!(store, |p| {
        sqlx::query(sql)
            .bind(username)
            .bind(purpose.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n >= 1)
}

/// The number `sealed`, whose enrollment code was approved, becomes the
/// phone of `username` (replacing any earlier one) in one transaction with
/// dropping that pending code; `false`, changing nothing, when that code is
/// no longer pending (a racing request, or another number since).
pub async fn phone_confirm(
    store: &StateStore,
    username: &str,
    sealed: &str,
) -> Result<bool, MfaStoreError> {
    let now = now_ms();
    let done = crate::state::on_pool!(store, |p| {
        let mut conn = crate::state::TxConn::acquire(p).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let taken = sqlx::query(
            "DELETE FROM mfa_phone_pending WHERE username = $1 AND purpose = $2 AND sealed = $3",
        )
        .bind(username)
        .bind(PhonePurpose::Enroll.as_str())
        .bind(sealed)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken != 1 {
            tx.rollback().await?;
            conn.done();
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO mfa_phone (username, sealed, confirmed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (username) DO UPDATE SET sealed = excluded.sealed, \
             confirmed_at = excluded.confirmed_at",
        )
        .bind(username)
        .bind(sealed)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // a step-up code sent to the old number no longer counts
        sqlx::query("DELETE FROM mfa_phone_pending WHERE username = $1 AND purpose = $2")
            .bind(username)
            .bind(PhonePurpose::StepUp.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.done();
        Ok::<bool, MfaStoreError>(true)
    })?;
    Ok(done)
}
