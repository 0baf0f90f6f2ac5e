//! Driving the server-rendered pages as a browser does (cookies, no bearer
//! token): form tokens, cookies, form posts and a password sign-in through
//! `/login`.

use axum::http::{Method, StatusCode};

use super::{TestApp, TestResponse};

/// The value of the first `name="csrf"` field on a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// `name=value` of the `Set-Cookie` for `name`, if set.
pub fn cookie_pair(r: &TestResponse, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

/// POSTs `pairs` urlencoded, with `cookie` when not empty.
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

/// GETs `path` with `cookie`.
pub async fn get_with(t: &TestApp, path: &str, cookie: &str) -> TestResponse {
    t.request_raw(Method::GET, path, &[("cookie", cookie)], None)
        .await
}

/// Signs `username` in with `password` through the form; returns the
/// `fhirgate_session=…` pair.
pub async fn sign_in_with(t: &TestApp, username: &str, password: &str) -> String {
    let form = t.get("/login").await;
    let pre = cookie_pair(&form, "fhirgate_csrf").unwrap();
    let csrf = csrf_of(&form.text());
    let r = post_form(
        t,
        "/login",
        &pre,
        &[
            ("csrf", &csrf),
            ("username", username),
            ("password", password),
            ("next", "/"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    cookie_pair(&r, "fhirgate_session").unwrap()
}

/// The admin's client registration, as the admin page posts it (a
/// sensitive operation behind the step-up gate).
pub async fn register_client(t: &TestApp, cookie: &str) -> TestResponse {
    let page = get_with(t, "/admin", cookie).await;
    let csrf = csrf_of(&page.text());
    post_form(
        t,
        "/admin/clients",
        cookie,
        &[
            ("csrf", &csrf),
            ("client_name", "Step-up test app"),
            ("redirect_uris", "https://app.example/cb"),
            ("scope", "launch openid patient/*.rs"),
        ],
    )
    .await
}

/// Whether `r` sends the browser to the step-up page, then back to `/admin…`.
pub fn is_stepup_redirect(r: &TestResponse) -> bool {
    r.status == StatusCode::SEE_OTHER
        && r.header("location")
            .is_some_and(|l| l.starts_with("/stepup?next=%2Fadmin"))
}
