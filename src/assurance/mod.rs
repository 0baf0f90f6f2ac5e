//! Identity assurance (issue 11 item 1): which `acr`/`amr` each kind of
//! access needs, and how a shortfall is answered.
//!
//! - Where assurance comes from: a federated sign-in keeps what the OpenID
//!   Provider asserted (`acr`, `amr`, `auth_time` of its id_token); a local
//!   password sign-in gets the account's configured acr (`[assurance]
//!   users`, else `local_acr`) and `amr` `["pwd"]`; a step-up in the
//!   session adds its factor and `mfa` ([`session`]). The session's
//!   assurance goes into the authorization code's grant, then into the
//!   access and id tokens (`acr`, `amr`, `auth_time`) and their audit
//!   entries.
//! - The policy ([`for_user`]): a patient-role user needs an acr in
//!   `patient_acr_values` (IAL2 in demo mode); a clinician needs a second
//!   factor when `clinician_mfa` is on. Sensitive operations
//!   ([`for_sensitive`]) need a second factor no older than `[mfa]
//!   stepup_max_age_seconds` when `[mfa] stepup = "required"`.
//! - A token short of it gets 401 with RFC 9470's `WWW-Authenticate:
//!   Bearer error="insufficient_user_authentication"` naming the
//!   `acr_values` (and `max_age`) to ask for; the client asks
//!   `/auth/authorize` for them, and the authorization UI gets them: it
//!   sends a federated user back to the provider with `acr_values`
//!   (`prompt=login`, `max_age`), and asks a local user for a step-up.
//!   A UI page short of it shows the step-up prompt instead.

use smart_launch::assurance::Assurance;

use crate::config::Config;
use crate::error::{FhirError, IssueType};

pub mod config;
pub mod session;

/// The RFC 9470 error code.
pub const INSUFFICIENT: &str = "insufficient_user_authentication";

/// What an access lacks: the acr values to ask for and, for a freshness
/// requirement, the most a sign-in may be old.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// Any of these would do (RFC 9470 `acr_values`).
    pub acr_values: Vec<String>,
    /// Seconds (RFC 9470 `max_age`), when the last authentication is too old.
    pub max_age: Option<i64>,
    /// Why, for people (no identifiers).
    pub reason: &'static str,
}

impl Shortfall {
    /// The `WWW-Authenticate` parameters after `realm` (RFC 9470 §3).
    pub fn challenge(&self) -> String {
        let mut c = format!(
            "error=\"{INSUFFICIENT}\", error_description=\"{}\"",
            self.reason
        );
        if !self.acr_values.is_empty() {
            c.push_str(&format!(", acr_values=\"{}\"", self.acr_values.join(" ")));
        }
        if let Some(m) = self.max_age {
            c.push_str(&format!(", max_age=\"{m}\""));
        }
        c
    }

    /// The FHIR answer: 401, OperationOutcome `security`, the challenge.
    pub fn into_fhir(self) -> FhirError {
        let mut e = FhirError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            IssueType::Security,
            self.reason,
        );
        e.challenge = Some(self.challenge());
        e
    }

    /// The RFC 6749-style JSON body of a non-FHIR API route.
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"error": INSUFFICIENT, "error_description": self.reason});
        if !self.acr_values.is_empty() {
            v["acr_values"] = self.acr_values.join(" ").into();
        }
        if let Some(m) = self.max_age {
            v["max_age"] = m.into();
        }
        v
    }
}

/// The acr values patient access needs (none: no requirement). Borrowed:
/// this is asked on every request of a patient's token.
pub fn patient_acr_values(config: &Config) -> &[String] {
    static DEMO: std::sync::OnceLock<[String; 1]> = std::sync::OnceLock::new();
    match &config.assurance.patient_acr_values {
        Some(v) => v,
        None if config.demo_enabled() => DEMO.get_or_init(|| [config::IAL2.to_owned()]),
        None => &[],
    }
}

/// The acr of a password sign-in to local account `username`.
pub fn local_acr(config: &Config, username: &str) -> String {
    if let Some(acr) = config.assurance.users.get(username) {
        return acr.clone();
    }
    let demo_proofed = ["dr.lee", "pat.jones"];
    if config.demo_enabled() && demo_proofed.contains(&username) {
        return config::IAL2.to_owned();
    }
    config.assurance.local_acr.clone()
}

/// The assurance of a local password sign-in at `now`.
pub fn local_sign_in(config: &Config, username: &str, now: i64) -> Assurance {
    Assurance {
        acr: Some(local_acr(config, username)),
        amr: vec!["pwd".into()],
        auth_time: Some(now),
    }
}

/// Whether `a` meets a client's `acr_values` (any one of them): its acr is
/// one of them, or one is `mfa_acr` and a second factor was used.
pub fn meets_acr_values(config: &Config, a: &Assurance, values: &[String]) -> bool {
    values.is_empty()
        || a.acr_in(values)
        || (values.contains(&config.assurance.mfa_acr) && a.multi_factor())
}

/// The policy for a user of `role` with assurance `a` (tokens, UI pages).
pub fn for_user(config: &Config, role: Option<&str>, a: &Assurance) -> Result<(), Shortfall> {
    match role {
        Some("patient") => {
            let needed = patient_acr_values(config);
            if needed.is_empty() || a.acr_in(needed) {
                Ok(())
            } else {
                Err(Shortfall {
                    acr_values: needed.to_vec(),
                    max_age: None,
                    reason: "patient access needs a higher identity assurance level",
                })
            }
        }
        Some("clinician") if config.assurance.clinician_mfa && !a.multi_factor() => {
            Err(Shortfall {
                acr_values: vec![config.assurance.mfa_acr.clone()],
                max_age: None,
                reason: "clinician access needs a multi-factor sign-in",
            })
        }
        _ => Ok(()),
    }
}

/// The policy for a sensitive operation (break-the-glass, ledger
/// administration) by a user with assurance `a` at `now`: a second factor
/// within `[mfa] stepup_max_age_seconds`, when `[mfa] stepup = "required"`.
pub fn for_sensitive(config: &Config, a: &Assurance, now: i64) -> Result<(), Shortfall> {
    if config.stepup() == crate::mfa::config::StepUp::Off {
        return Ok(());
    }
    let max_age = i64::try_from(config.mfa.stepup_max_age_seconds).unwrap_or(i64::MAX);
    if a.multi_factor() && a.fresh(max_age, now) {
        return Ok(());
    }
    Err(Shortfall {
        acr_values: vec![config.assurance.mfa_acr.clone()],
        max_age: Some(max_age),
        reason: "this operation needs a recent second-factor authentication (step-up)",
    })
}

#[cfg(test)]
mod tests;
