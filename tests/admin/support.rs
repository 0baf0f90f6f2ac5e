//! Helpers of the admin page tests: sign in through `/login`, post forms
//! with the session cookie, read values off the pages.

// Several test binaries include this module; each uses some of these.
#[allow(unused_imports)]
pub use crate::common::forms::{csrf_of, get_with, post_form};
use axum::http::StatusCode;

use crate::common::{forms, TestApp, TestResponse};

/// `name=value` of the `Set-Cookie` for `name` (which must be set).
pub fn cookie_pair(r: &TestResponse, name: &str) -> String {
    forms::cookie_pair(r, name).unwrap_or_else(|| panic!("a {name} cookie"))
}

/// Creates `username` (password `pw`) and signs in through the form;
/// returns the `fhirgate_session=…` cookie pair.
pub async fn signed_in(t: &TestApp, username: &str, role: &str, fhir_user: &str) -> String {
    let u = fhirgate::state::users::User {
        username: username.into(),
        role: role.into(),
        fhir_user: fhir_user.into(),
        display_name: format!("Name of {username}"),
        organization: None,
    };
    t.app.state.upsert_user(&u, "pw").await.unwrap();
    forms::sign_in_with(t, username, "pw").await
}

/// Signs in as an administrator; returns the cookie and the form token.
pub async fn admin(t: &TestApp) -> (String, String) {
    let cookie = signed_in(t, "root", "admin", "Organization/org-1").await;
    let r = get_with(t, "/admin", &cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let csrf = csrf_of(&r.text());
    (cookie, csrf)
}

/// The text right after `anchor`, up to the next `"` or `<`.
pub fn value_after(html: &str, anchor: &str) -> String {
    let at = html
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} in {html}"));
    let rest = &html[at + anchor.len()..];
    rest[..rest.find(['"', '<']).unwrap()].to_owned()
}
