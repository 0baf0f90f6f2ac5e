//! fhirgate's server-rendered pages (the `/login`, `/auth/continue`,
//! `/launcher`, `/admin`, `/portal` and `/` pages of the server's `http::ui` module).
//!
//! The server crate only *fills* the structs here and serves the result;
//! nothing in this crate knows HTTP. Module map:
//! - [`pages`]: one askama template struct per page (templates in
//!   `ui/templates/`, HTML-escaped by askama), plus the row structs they list;
//!   [`portal`]: the patient consent portal's page and rows.
//! - [`secrets`]: the UI session and CSRF primitives (SHA-256 of a session
//!   id, HMAC-derived form tokens, constant-time comparison).
//! - [`STYLESHEET`]: the one stylesheet, served at `/ui/static/fhirgate.css`;
//!   [`LOGO_PNG`], the logo at `/ui/static/fhirgate.png`.
//!
//! The labels and button texts browser tests rely on (ARCHITECTURE.md,
//! "Interface contract") live in the templates: `Username`, `Password`,
//! `Sign in`, `Select`, `Allow`, `Deny`, `App`, `Launch`.

pub mod pages;
pub mod portal;
pub mod prior_auth;
pub mod secrets;

pub use askama::Template;
pub use pages::*;
pub use portal::*;
pub use prior_auth::*;

/// The stylesheet every page links to (`/ui/static/fhirgate.css`).
pub const STYLESHEET: &str = include_str!("../static/fhirgate.css");

/// The logo (`/ui/static/fhirgate.png`; the `logo_uri` of fhirgate's own
/// UDAP registrations).
pub const LOGO_PNG: &[u8] = include_bytes!("../static/fhirgate.png");

/// Renders a page to HTML.
pub fn render<T: Template>(page: &T) -> Result<String, askama::Error> {
    page.render()
}
