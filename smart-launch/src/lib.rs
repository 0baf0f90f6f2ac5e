//! fhirgate's SMART App Launch 2.2 authorization logic, with no HTTP
//! framework in it (the server's handlers are thin adapters over this).
//!
//! Module map:
//! - [`scope`]: the SMART v1/v2 scope grammar and the one matcher every
//!   authorization decision uses.
//! - [`keys`]: the server's rotatable RSA signing keys and their JWKS.
//! - [`token`]: access and id tokens: minting and validation.
//! - [`assertion`]: `private_key_jwt` client assertions (Backend Services, RFC 7523).
//! - [`b2b`]: the UDAP B2B authorization extension (`hl7-b2b`) such an
//!   assertion may carry: requesting organization and purpose of use.
//! - [`pkce`]: PKCE S256 (RFC 7636).
//! - [`context`]: what a validated access token lets the caller do.
//! - [`assurance`]: how strongly the token's user was identified and authenticated.
//! - [`error`]: RFC 6749 error responses.

pub mod assertion;
pub mod assurance;
pub mod b2b;
pub mod context;
pub mod error;
pub mod keys;
pub mod pkce;
pub mod scope;
pub mod token;

pub use error::{OAuthError, OAuthErrorCode};
