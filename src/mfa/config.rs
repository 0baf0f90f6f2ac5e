//! `[mfa]`: step-up authentication for sensitive UI operations.
//!
//! ```toml
//! [mfa]
//! stepup = "off"                 # off | required
//! stepup_max_age_seconds = 300   # how long one step-up counts
//! issuer = "fhirgate"            # the name authenticator apps show
//! code_failure_limit = 5         # wrong codes per user in the window, then 429
//! code_failure_window_seconds = 300
//! ```
//!
//! With `stepup = "required"`, granting or revoking a consent in the
//! portal, registering an OAuth client in the admin pages and a reviewer's
//! prior-authorization decision need a step-up (a TOTP or recovery code)
//! done within `stepup_max_age_seconds` in the same session; without one
//! the request is sent to `/stepup` and comes back after it.

use serde::Deserialize;

/// Whether sensitive operations need a fresh step-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepUp {
    /// No step-up is asked for.
    #[default]
    Off,
    /// Sensitive operations need a fresh step-up.
    Required,
}

/// The `[mfa]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaConfig {
    /// Whether sensitive operations need a fresh step-up.
    #[serde(default)]
    pub stepup: StepUp,
    /// How long one step-up counts, seconds.
    #[serde(default = "default_max_age")]
    pub stepup_max_age_seconds: u64,
    /// The issuer name in the enrollment URI (what apps display).
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Wrong codes one user may enter in the window before 429.
    #[serde(default = "default_code_limit")]
    pub code_failure_limit: u32,
    /// The window of `code_failure_limit`, seconds.
    #[serde(default = "default_code_window")]
    pub code_failure_window_seconds: u64,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            stepup: StepUp::default(),
            stepup_max_age_seconds: default_max_age(),
            issuer: default_issuer(),
            code_failure_limit: default_code_limit(),
            code_failure_window_seconds: default_code_window(),
        }
    }
}

fn default_max_age() -> u64 {
    300
}

fn default_issuer() -> String {
    "fhirgate".into()
}

fn default_code_limit() -> u32 {
    5
}

fn default_code_window() -> u64 {
    300
}
