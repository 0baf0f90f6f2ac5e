//! Helpers of the admin page tests: sign in through `/login`, post forms
//! with the session cookie, read values off the pages.

use axum::http::{Method, StatusCode};

use crate::common::{TestApp, TestResponse};

/// The value of the first `name="csrf"` field on a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// `name=value` of the `Set-Cookie` for `name`.
pub fn cookie_pair(r: &TestResponse, name: &str) -> String {
    let c = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("a {name} cookie"));
    c.split(';').next().unwrap().to_owned()
}

pub async fn post_form(
    t: &TestApp,
    path: &str,
    cookie: &str,
    pairs: &[(&str, &str)],
) -> TestResponse {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
    if !cookie.is_empty() {
        h.push(("cookie", cookie));
    }
    t.request_raw(Method::POST, path, &h, Some(body.into_bytes()))
        .await
}

pub async fn get_with(t: &TestApp, path: &str, cookie: &str) -> TestResponse {
    t.request_raw(Method::GET, path, &[("cookie", cookie)], None)
        .await
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
    let form = t.get("/login").await;
    let pre = cookie_pair(&form, "fhirgate_csrf");
    let csrf = csrf_of(&form.text());
    let r = post_form(
        t,
        "/login",
        &pre,
        &[
            ("csrf", &csrf),
            ("username", username),
            ("password", "pw"),
            ("next", "/"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    cookie_pair(&r, "fhirgate_session")
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
