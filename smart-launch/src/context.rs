//! What a validated access token lets the caller do: the input of every
//! authorization decision in the FHIR pipeline (scope enforcement, consent,
//! audit). Built by the server from validated token claims.

use crate::{assurance::Assurance, scope::ScopeSet};

/// The caller of one FHIR request, as its access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessContext {
    /// The OAuth client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Launch patient id (`patient` in the token response), for `patient/` scopes.
    pub patient: Option<String>,
    /// Launch encounter id.
    pub encounter: Option<String>,
    /// The signed-in user's FHIR resource (`Practitioner/1`, `Patient/2`), if any.
    pub fhir_user: Option<String>,
    /// The signed-in user's role (`clinician`, `patient`, `admin`), if any.
    pub role: Option<String>,
    /// Token id (for revocation checks and audit).
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
    /// Purpose of use the token was issued for (v3-ActReason code), if any.
    pub purpose_of_use: Option<String>,
    /// The organization the caller acts for (`Organization/…`), if known:
    /// the signed-in user's, fixed when the token was issued.
    pub organization: Option<String>,
    /// How strongly the token's user was identified and authenticated
    /// (empty for tokens without a user).
    pub assurance: Assurance,
}
