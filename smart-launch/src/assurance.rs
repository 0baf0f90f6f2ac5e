//! How strongly the user behind a token was identified and authenticated:
//! the `acr` (authentication context class, e.g. an identity-proofing level
//! such as IAL2), the `amr` (the methods used, RFC 8176: `pwd`, `otp`,
//! `mfa`, …) and `auth_time` (when the user last authenticated, including
//! a step-up), as OpenID Connect Core §2 and RFC 9470 name them.
//!
//! Only carried and compared here; which level an access needs is the
//! server's policy.

use serde::{Deserialize, Serialize};

/// The `amr` values (RFC 8176 §2) that are a second factor, or say that
/// more than one factor was used.
pub const SECOND_FACTOR_AMR: &[&str] = &[
    "mfa", "otp", "hwk", "swk", "sms", "tel", "sc", "face", "fpt", "iris", "retina", "vbm",
];

/// The assurance of one authentication (a session, or the token issued from it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assurance {
    /// Authentication context class reference, as asserted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Authentication methods references, as asserted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user last authenticated (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Assurance {
    /// Whether a second factor was used (an `amr` in [`SECOND_FACTOR_AMR`]).
    pub fn multi_factor(&self) -> bool {
        self.amr
            .iter()
            .any(|m| SECOND_FACTOR_AMR.contains(&m.as_str()))
    }

    /// Whether the last authentication is at most `max_age` seconds old at `now`.
    pub fn fresh(&self, max_age: i64, now: i64) -> bool {
        self.auth_time.is_some_and(|t| now - t <= max_age)
    }

    /// Whether `acr` is one of `values`.
    pub fn acr_in(&self, values: &[String]) -> bool {
        self.acr.as_ref().is_some_and(|a| values.contains(a))
    }

    /// Adds `method` to `amr` once.
    pub fn add_method(&mut self, method: &str) {
        if !self.amr.iter().any(|m| m == method) {
            self.amr.push(method.to_owned());
        }
    }

    /// Whether nothing is known (no user, or a token from before assurance).
    pub fn is_empty(&self) -> bool {
        self.acr.is_none() && self.amr.is_empty() && self.auth_time.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(amr: &[&str], auth_time: Option<i64>) -> Assurance {
        Assurance {
            acr: Some("urn:x:ial2".into()),
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            auth_time,
        }
    }

    #[test]
    fn second_factors_are_recognised() {
        assert!(!with(&["pwd"], None).multi_factor());
        assert!(with(&["pwd", "otp"], None).multi_factor());
        assert!(with(&["mfa"], None).multi_factor());
        assert!(!Assurance::default().multi_factor());
    }

    #[test]
    fn freshness_needs_an_auth_time() {
        assert!(with(&[], Some(100)).fresh(300, 400));
        assert!(!with(&[], Some(100)).fresh(299, 400));
        assert!(!with(&[], None).fresh(300, 400));
    }

    #[test]
    fn acr_matches_exactly_and_methods_are_added_once() {
        let mut a = with(&["pwd"], None);
        assert!(a.acr_in(&["urn:x:ial2".into()]));
        assert!(!a.acr_in(&["urn:x:ial".into()]));
        a.add_method("otp");
        a.add_method("otp");
        assert_eq!(a.amr, ["pwd", "otp"]);
        assert!(Assurance::default().is_empty());
    }
}
