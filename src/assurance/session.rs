//! The assurance of a UI session: how its user signed in (recorded when the
//! session starts: a local password, or what the OpenID Provider asserted)
//! plus the step-ups done in it (`mfa_stepups`), which add their factor and
//! `mfa` to `amr` and move `auth_time` to the step-up.

use smart_launch::assurance::Assurance;
use sqlx::Row;

use crate::state::{on_pool, StateStore};

/// A local account's password sign-in.
pub const SOURCE_PASSWORD: &str = "password";
/// A sign-in at the configured OpenID Provider (`[federation]`).
pub const SOURCE_FEDERATED: &str = "federated";
/// A UDAP Tiered OAuth sign-in at another data holder.
pub const SOURCE_TIERED: &str = "tiered";

/// How a session's user authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAssurance {
    /// [`SOURCE_PASSWORD`], [`SOURCE_FEDERATED`], [`SOURCE_TIERED`], or
    /// `unknown` (a session started before assurance was recorded).
    pub source: String,
    /// acr, amr and auth_time, step-ups included.
    pub assurance: Assurance,
}

impl SessionAssurance {
    /// Whether the session came from the configured OpenID Provider (which
    /// can be asked for more).
    pub fn federated(&self) -> bool {
        self.source == SOURCE_FEDERATED
    }
}

/// The `amr` value (RFC 8176 §2) of a step-up factor.
pub fn amr_of_factor(factor: &str) -> &'static str {
    match factor {
        "sms" => "sms",
        "call" => "tel",
        _ => "otp",
    }
}

/// Records how the session `id_hash` (valid until `expires_at`) signed in.
pub async fn record(
    store: &StateStore,
    id_hash: &str,
    source: &str,
    a: &Assurance,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    let sql =
        "INSERT INTO ui_session_assurance (id_hash, source, acr, amr, auth_time, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6)";
    on_pool!(store, |p| sqlx::query(sql)
        .bind(id_hash)
        .bind(source)
        .bind(a.acr.as_deref())
        .bind(a.amr.join(" "))
        .bind(a.auth_time.unwrap_or(0))
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ()))
}

/// The assurance of session `id_hash`: its sign-in plus its latest step-up.
pub async fn of_session(
    store: &StateStore,
    id_hash: &str,
) -> Result<SessionAssurance, sqlx::Error> {
    let sql = "SELECT source, acr, amr, auth_time FROM ui_session_assurance WHERE id_hash = $1";
    let row = on_pool!(store, |p| sqlx::query(sql)
        .bind(id_hash)
        .fetch_optional(p)
        .await
        .map(|r| r.map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<Option<String>, _>(1),
                r.get::<String, _>(2),
                r.get::<i64, _>(3),
            )
        })))?;
    let mut out = match row {
        Some((source, acr, amr, auth_time)) => SessionAssurance {
            source,
            assurance: Assurance {
                acr,
                amr: amr.split_whitespace().map(str::to_owned).collect(),
                auth_time: (auth_time > 0).then_some(auth_time),
            },
        },
        None => SessionAssurance {
            source: "unknown".into(),
            assurance: Assurance::default(),
        },
    };
    let sql =
        "SELECT factor, at_ms FROM mfa_stepups WHERE session_hash = $1 ORDER BY at_ms DESC LIMIT 1";
    let latest = on_pool!(store, |p| sqlx::query(sql)
        .bind(id_hash)
        .fetch_optional(p)
        .await
        .map(|r| r.map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))))?;
    if let Some((factor, at_ms)) = latest {
        let a = &mut out.assurance;
        a.add_method(amr_of_factor(&factor));
        a.add_method("mfa");
        let at = at_ms.div_euclid(1000);
        a.auth_time = Some(a.auth_time.map_or(at, |t| t.max(at)));
    }
    Ok(out)
}
