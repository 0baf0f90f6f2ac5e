//! The SMART App Launch 2.2 authorization server's server side: what needs
//! the state store, the keys and the configuration (the protocol rules
//! themselves live in the `smart-launch` crate; HTTP adapters in `http::oauth`).
//!
//! - [`authorize`]: validating authorize requests, pending requests, issuing codes.
//! - [`token`]: the token endpoint's grants.
//! - [`clients`]: client registration (RFC 7591, CLI, admin).
//! - [`organization`]: the organization a signed-in user acts for, fixed at
//!   token issuance.

pub mod authorize;
pub mod clients;
pub mod issue;
pub mod organization;
pub mod token;

/// Seconds since the epoch (time enters the protocol code as a parameter).
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
