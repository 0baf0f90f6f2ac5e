//! `[prior_auth]`: configuration of Da Vinci PAS (`Claim/$submit`,
//! `Claim/$inquire`).
//!
//! ```toml
//! [prior_auth]
//! rules_file = "pa-rules.toml"   # payer rules; unset: the shipped demo rules
//! auth_number_prefix = "PA"      # prefix of preAuthRef numbers
//! ```

use std::path::PathBuf;

use serde::Deserialize;

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
}

impl Default for PriorAuthConfig {
    fn default() -> Self {
        Self {
            rules_file: None,
            auth_number_prefix: default_prefix(),
        }
    }
}

fn default_prefix() -> String {
    "PA".to_owned()
}
