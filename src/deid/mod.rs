//! De-identification for secondary use (issue 12): profiles of rules that
//! select elements by path or data type and apply a method (redact, keep,
//! date shift, crypto-hash, generalize, perturb, substitute), the built-in
//! HIPAA Safe Harbor profiles, and the engine that rewrites one resource at
//! a time. Pure: no I/O besides reading a profile file.
//!
//! - [`profile`]: the profile file format, validation, built-in profiles.
//! - [`engine`]: [`Deidentifier`], applying a profile to a resource.
//! - [`config`]: the `[deid]` settings (profiles, key sets, purposes,
//!   research consent policy).
//! - [`export`]: what a de-identified `$export` adds to the bulk worker.
//! - [`search`]: de-identified search, and secondary-use clients limited
//!   to de-identified data.

pub mod config;
pub mod engine;
pub mod export;
pub mod profile;
pub mod search;

mod dates;
mod keyed;
mod kinds;
mod methods;
mod refs;
mod rules;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_profile;
#[cfg(test)]
mod tests_safe_harbor;

pub use engine::Deidentifier;
pub use profile::{Profile, ProfileError};
