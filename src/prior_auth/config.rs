//! `[prior_auth]`: configuration of Da Vinci PAS (`Claim/$submit`,
//! `Claim/$inquire`).
//!
//! ```toml
//! [prior_auth]
//! rules_file = "pa-rules.toml"   # payer rules; unset: the shipped demo rules
//! auth_number_prefix = "PA"      # prefix of preAuthRef numbers
//! max_extension_days = 14        # longest timeframe extension a reviewer may give
//! appeal_days = 30               # decision timeframe of an appealed standard request
//! appeal_expedited_hours = 72    # … of an appealed expedited one
//! retention_days = 400           # decided requests are purged after this (>= 183)
//! pas_version = "2.0.1"          # or "2.2": the PAS 2.2 wire differences (`version.rs`)
//! ```
//!
//! Pended requests are never purged; decided ones stay queryable
//! (`$inquire`, metrics) for `retention_days` after their decision, at least
//! six months (a smaller value is refused at start).

use std::path::PathBuf;

use serde::Deserialize;

use super::version::PasVersion;

/// The `[prior_auth]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorAuthConfig {
    /// The adjudication rules (TOML, see `prior_auth::rules`); unset means
    /// the demo rules shipped in `src/prior_auth/default_rules.toml`.
    #[serde(default)]
    pub rules_file: Option<PathBuf>,
    /// Prefix of the authorization numbers (`preAuthRef`) issued.
    #[serde(default = "default_prefix")]
    pub auth_number_prefix: String,
    /// Longest timeframe extension a reviewer may give, days.
    #[serde(default = "default_max_extension")]
    pub max_extension_days: i64,
    /// Decision timeframe of an appealed standard request, days.
    #[serde(default = "default_appeal_days")]
    pub appeal_days: i64,
    /// Decision timeframe of an appealed expedited request, hours.
    #[serde(default = "default_appeal_hours")]
    pub appeal_expedited_hours: i64,
    /// Days a decided request is kept after its decision (at least
    /// [`MIN_RETENTION_DAYS`]).
    #[serde(default = "default_retention")]
    pub retention_days: i64,
    /// The Da Vinci PAS version answered: `"2.0.1"` (the version CMS
    /// recommends) or `"2.2"` (the differences listed in
    /// `src/prior_auth/version.rs`); anything else is refused at start.
    #[serde(default = "default_pas_version")]
    pub pas_version: String,
}

/// Six months: the least a decided request is kept.
pub const MIN_RETENTION_DAYS: i64 = 183;

impl Default for PriorAuthConfig {
    fn default() -> Self {
        Self {
            rules_file: None,
            auth_number_prefix: default_prefix(),
            max_extension_days: default_max_extension(),
            appeal_days: default_appeal_days(),
            appeal_expedited_hours: default_appeal_hours(),
            retention_days: default_retention(),
            pas_version: default_pas_version(),
        }
    }
}

impl PriorAuthConfig {
    /// Refuses settings that would break the CMS-0057-F promises.
    pub fn check(&self) -> Result<(), String> {
        PasVersion::parse(&self.pas_version)?;
        if self.retention_days < MIN_RETENTION_DAYS {
            return Err(format!(
                "[prior_auth] retention_days must be at least {MIN_RETENTION_DAYS} (six months), not {}",
                self.retention_days
            ));
        }
        if !(1..=365).contains(&self.max_extension_days)
            || !(1..=365).contains(&self.appeal_days)
            || !(1..=24 * 365).contains(&self.appeal_expedited_hours)
        {
            return Err(
                "[prior_auth] max_extension_days, appeal_days and appeal_expedited_hours must be positive and at most a year"
                    .into(),
            );
        }
        Ok(())
    }
}

impl PriorAuthConfig {
    /// The PAS version answered (2.0.1 when the setting is invalid, which
    /// [`Self::check`] refuses at start).
    pub fn pas_version(&self) -> PasVersion {
        PasVersion::parse(&self.pas_version).unwrap_or_default()
    }
}

fn default_pas_version() -> String {
    PasVersion::default().as_str().to_owned()
}

fn default_max_extension() -> i64 {
    14
}
fn default_appeal_days() -> i64 {
    30
}
fn default_appeal_hours() -> i64 {
    72
}
fn default_retention() -> i64 {
    400
}

fn default_prefix() -> String {
    "PA".to_owned()
}
