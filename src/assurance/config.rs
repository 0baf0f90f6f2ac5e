//! `[assurance]`: which identity assurance each kind of access needs, and
//! the level of local (password) accounts.
//!
//! ```toml
//! [assurance]
//! # acr values, any of which lets a patient reach their own record
//! # (tokens of patient-role users, the portal). Empty: no requirement.
//! # Demo mode: NIST 800-63 IAL2.
//! patient_acr_values = ["http://idmanagement.gov/ns/assurance/ial/2"]
//! # Clinicians need a sign-in with a second factor (an `amr` such as otp,
//! # mfa, hwk) for their tokens and the launcher.
//! clinician_mfa = false
//! # The acr value that stands for "a multi-factor sign-in": named in
//! # RFC 9470 challenges, and accepted in a client's `acr_values`.
//! mfa_acr = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
//! # The acr of a password sign-in to a local account, unless `users` names it.
//! local_acr = "http://idmanagement.gov/ns/assurance/ial/1"
//! # Local accounts identity-proofed to another level (demo mode adds
//! # dr.lee and pat.jones at IAL2).
//! users = { "pat.jones" = "http://idmanagement.gov/ns/assurance/ial/2" }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// NIST SP 800-63-3 IAL1, as an acr (the value Login.gov uses).
pub const IAL1: &str = "http://idmanagement.gov/ns/assurance/ial/1";
/// NIST SP 800-63-3 IAL2, as an acr.
pub const IAL2: &str = "http://idmanagement.gov/ns/assurance/ial/2";
/// The PAPE multi-factor policy URI, a common acr for "MFA was used".
pub const PAPE_MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// The `[assurance]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssuranceConfig {
    /// acr values, any of which patient access needs; unset: `[IAL2]` in
    /// demo mode, none otherwise.
    #[serde(default)]
    pub patient_acr_values: Option<Vec<String>>,
    /// Whether clinicians need a multi-factor sign-in.
    #[serde(default)]
    pub clinician_mfa: bool,
    /// The acr meaning "a multi-factor sign-in".
    #[serde(default = "default_mfa_acr")]
    pub mfa_acr: String,
    /// The acr of a local password sign-in.
    #[serde(default = "default_local_acr")]
    pub local_acr: String,
    /// Local accounts with another acr (user name → acr).
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

fn default_mfa_acr() -> String {
    PAPE_MFA.into()
}

fn default_local_acr() -> String {
    IAL1.into()
}

impl Default for AssuranceConfig {
    fn default() -> Self {
        Self {
            patient_acr_values: None,
            clinician_mfa: false,
            mfa_acr: default_mfa_acr(),
            local_acr: default_local_acr(),
            users: BTreeMap::new(),
        }
    }
}

impl AssuranceConfig {
    /// Checks the section; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let blank = |s: &String| s.trim().is_empty() || s.chars().any(|c| c == '"' || c == '\\');
        if blank(&self.mfa_acr) {
            return Err(("assurance.mfa_acr", "must be a non-empty acr value".into()));
        }
        if blank(&self.local_acr) {
            return Err((
                "assurance.local_acr",
                "must be a non-empty acr value".into(),
            ));
        }
        if let Some(v) = self.patient_acr_values.iter().flatten().find(|v| blank(v)) {
            return Err((
                "assurance.patient_acr_values",
                format!("{v:?} is not an acr value (non-empty, no quotes or backslashes)"),
            ));
        }
        if let Some((u, _)) = self.users.iter().find(|(_, v)| blank(v)) {
            return Err(("assurance.users", format!("the acr of {u:?} is empty")));
        }
        Ok(())
    }
}
