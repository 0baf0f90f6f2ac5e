//! `[mfa]`: step-up authentication for sensitive UI operations.
//!
//! ```toml
//! [mfa]
//! stepup = "off"                 # off | required
//! stepup_max_age_seconds = 300   # how long one step-up counts
//! issuer = "fhirgate"            # the name authenticator apps show
//! code_failure_limit = 5         # wrong codes per user in the window, then 429
//! code_failure_window_seconds = 300
//! receipt_webhook = "https://notify.example/consent-receipts"  # optional
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
    /// Where each consent receipt is POSTed as JSON (an operator's email or
    /// SMS notifier); https, or http on loopback. Unset: not sent.
    #[serde(default)]
    pub receipt_webhook: Option<String>,
}

impl MfaConfig {
    /// Checks the webhook address; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match &self.receipt_webhook {
            Some(u) if !crate::net::https_or_loopback(u) => Err((
                "mfa.receipt_webhook",
                format!("{u:?} must be an https URL (or http on a loopback address)"),
            )),
            _ => Ok(()),
        }
    }
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            stepup: StepUp::default(),
            stepup_max_age_seconds: default_max_age(),
            issuer: default_issuer(),
            code_failure_limit: default_code_limit(),
            code_failure_window_seconds: default_code_window(),
            receipt_webhook: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receipt_webhook_is_https_or_loopback() {
        let with = |u: &str| MfaConfig {
            receipt_webhook: Some(u.into()),
            ..MfaConfig::default()
        };
        assert!(MfaConfig::default().validate().is_ok());
        assert!(with("https://notify.example/r").validate().is_ok());
        assert!(with("http://127.0.0.1:9/r").validate().is_ok());
        for bad in ["http://notify.example/r", "ftp://x/r", "not a url"] {
            let e = with(bad).validate().unwrap_err();
            assert_eq!(e.0, "mfa.receipt_webhook", "{bad}");
        }
    }
}
