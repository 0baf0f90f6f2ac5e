//! UDAP trust (HL7 FAST Security IG, issue 8): certificate-based discovery,
//! dynamic client registration and JWT client authentication for TEFCA and
//! B2B clients.
//!
//! - [`config`]: `[udap]`, the server certificate and trust communities;
//!   [`setup`] loads them (or makes the demo community, [`pki`]).
//! - [`discovery`]: `GET /fhir/.well-known/udap` with `signed_metadata`.
//! - [`registration`]: UDAP dynamic client registration at
//!   `POST /auth/register` (a body with `software_statement`).
//! - [`authn`]: `x5c` client assertions at the token endpoint for clients
//!   registered by UDAP, with the community's `hl7-b2b` requirement.
//! - [`tiered`]: Tiered OAuth, fhirgate sending users to the OpenID
//!   Connect identity provider a client names (`udap` scope, `idp`).
//! - [`cli`]: `fhirgate udap client-cert` (a certificate from the demo CA)
//!   and `fhirgate udap link-identity` (an IdP's subject to a local user).
//! - [`trust`], [`crl`], [`x5c_jwt`], [`error`]: X.509 chains to a
//!   community's anchors (validity, key usage, CA constraints, CRLs) and
//!   JWTs signed by a chain's leaf.

use axum::{routing::get, Router};

use crate::AppState;

pub mod authn;
pub mod cli;
pub mod config;
pub mod crl;
pub mod discovery;
pub mod error;
pub mod pki;
pub mod registration;
pub mod setup;
pub mod tiered;
pub mod trust;
pub mod x5c_jwt;

pub use setup::Udap;

/// The B2B authorization extension's key.
pub const B2B: &str = smart_launch::b2b::KEY;

/// UDAP's own routes (registration and token go through `/auth/...`).
pub fn router() -> Router<AppState> {
    Router::new().route("/fhir/.well-known/udap", get(discovery::get))
}
