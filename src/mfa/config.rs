//! `[mfa]`: step-up authentication for sensitive UI operations.
//!
//! ```toml
//! [mfa]
//! stepup = "required"            # off | required; unset: required in demo mode, else off
//! stepup_max_age_seconds = 300   # how long one step-up counts
//! issuer = "fhirgate"            # the name authenticator apps show
//! code_failure_limit = 5         # wrong codes per user in the window, then 429
//! code_failure_window_seconds = 300
//! receipt_webhook = "https://notify.example/consent-receipts"  # optional
//!
//! [mfa.twilio]                   # optional: SMS and voice codes
//! service_sid = "VA…"            # the Twilio Verify service
//! account_sid = "AC…"
//! auth_token = "…"               # better: FHIRGATE_MFA_TWILIO_AUTH_TOKEN
//! base_url = "https://verify.twilio.com"   # the default
//! ```
//!
//! With `stepup = "required"`, granting or revoking a consent in the
//! portal, registering an OAuth client in the admin pages and a reviewer's
//! prior-authorization decision need a step-up (a TOTP or recovery code,
//! or with `[mfa.twilio]` a code sent by SMS or voice call to the phone
//! the user confirmed on `/account/security`) done within `stepup_max_age_seconds` in the same session; without one
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
    /// Whether sensitive operations need a fresh step-up; unset: required
    /// in demo mode, off otherwise (read it through `Config::stepup`).
    #[serde(default)]
    pub stepup: Option<StepUp>,
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
    /// SMS and voice codes through Twilio Verify; unset: not offered.
    #[serde(default)]
    pub twilio: Option<TwilioConfig>,
}

/// `[mfa.twilio]`: the Twilio Verify service sending SMS and voice codes.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The Verify service (`VA…`).
    pub service_sid: String,
    /// The account (`AC…`), the HTTP Basic user.
    pub account_sid: String,
    /// The account's auth token (`FHIRGATE_MFA_TWILIO_AUTH_TOKEN`).
    pub auth_token: String,
    /// The API's base URL: https, or http on loopback (tests).
    #[serde(default = "default_twilio_base")]
    pub base_url: String,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("service_sid", &self.service_sid)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish()
    }
}

fn default_twilio_base() -> String {
    "https://verify.twilio.com".into()
}

impl MfaConfig {
    /// Checks the webhook address; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(u) = &self.receipt_webhook {
            if !crate::net::https_or_loopback(u) {
                return Err((
                    "mfa.receipt_webhook",
                    format!("{u:?} must be an https URL (or http on a loopback address)"),
                ));
            }
        }
        if let Some(t) = &self.twilio {
            if !crate::net::https_or_loopback(&t.base_url) {
                return Err((
                    "mfa.twilio.base_url",
                    format!(
                        "{:?} must be an https URL (or http on a loopback address)",
                        t.base_url
                    ),
                ));
            }
            for (key, v) in [
                ("mfa.twilio.service_sid", &t.service_sid),
                ("mfa.twilio.account_sid", &t.account_sid),
                ("mfa.twilio.auth_token", &t.auth_token),
            ] {
                if v.trim().is_empty() {
                    return Err((key, "must not be empty".to_owned()));
                }
            }
        }
        Ok(())
    }
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            stepup: None,
            stepup_max_age_seconds: default_max_age(),
            issuer: default_issuer(),
            code_failure_limit: default_code_limit(),
            code_failure_window_seconds: default_code_window(),
            receipt_webhook: None,
            twilio: None,
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

    #[test]
    fn twilio_needs_its_ids_and_an_https_base_and_hides_its_token() {
        let t = TwilioConfig {
            service_sid: "VA1".into(),
            account_sid: "AC1".into(),
            auth_token: "s3cret-token".into(),
            base_url: default_twilio_base(),
        };
        let with = |t: TwilioConfig| MfaConfig {
            twilio: Some(t),
            ..MfaConfig::default()
        };
        assert!(with(t.clone()).validate().is_ok());
        assert!(!format!("{:?}", with(t.clone())).contains("s3cret-token"));
        let e = with(TwilioConfig {
            base_url: "http://verify.example".into(),
            ..t.clone()
        })
        .validate()
        .unwrap_err();
        assert_eq!(e.0, "mfa.twilio.base_url");
        let e = with(TwilioConfig {
            auth_token: " ".into(),
            ..t
        })
        .validate()
        .unwrap_err();
        assert_eq!(e.0, "mfa.twilio.auth_token");
    }
}
