//! Second factors for step-up authentication (issue 11): the building
//! blocks, each tested on its own; the step-up flow, its storage and its
//! pages build on them.
//!
//! - [`totp`]: RFC 6238 codes (authenticator apps), enrollment URI,
//!   replay-refusing verification;
//! - [`recovery`]: single-use recovery codes, stored as digests;
//! - [`twilio`]: SMS and voice codes through Twilio Verify's v2 REST API;
//! - [`phone`]: phone numbers (E.164, masked on pages);
//! - [`store`]: enrolled authenticators (secrets sealed), recovery codes
//!   phones, factors waiting for confirmation and step-ups done, in the
//!   state store.

pub mod config;
pub mod phone;
pub mod recovery;
pub mod store;
pub mod totp;
pub mod twilio;
