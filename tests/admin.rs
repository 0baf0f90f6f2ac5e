//! The admin page for OAuth clients (`/admin`, `POST /admin/clients`),
//! driven with `oneshot` after signing in through `/login`: who may see it,
//! CSRF, refused metadata and the demo admin here; registering each client
//! type, and using the client registered (listed, launchable,
//! authenticating), in [`registration`]; sign-in and form helpers in
//! [`support`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[path = "admin/registration.rs"]
mod registration;
#[path = "admin/support.rs"]
mod support;

use axum::http::{Method, StatusCode};
use common::TestApp;
use support::{admin, cookie_pair, csrf_of, get_with, post_form, signed_in};

#[tokio::test]
async fn strangers_sign_in_first_and_only_admins_get_in() {
    let t = TestApp::new().await;
    for r in [
        t.request_raw(Method::GET, "/admin", &[], None).await,
        post_form(&t, "/admin/clients", "", &[("client_name", "X")]).await,
    ] {
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(
            r.header("location").as_deref(),
            Some("/login?next=%2Fadmin")
        );
    }
    let dr = signed_in(&t, "dr.a", "clinician", "Practitioner/p1").await;
    let pat = signed_in(&t, "pat", "patient", "Patient/p1").await;
    for cookie in [&dr, &pat] {
        let r = get_with(&t, "/admin", cookie).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.text().contains("for administrators"), "{}", r.text());
        assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
        let csrf = csrf_of(&get_with(&t, "/", cookie).await.text());
        let r = post_form(
            &t,
            "/admin/clients",
            cookie,
            &[
                ("csrf", &csrf),
                ("client_name", "Sneaky"),
                ("redirect_uris", "https://s.example/cb"),
                ("grant_types", "authorization_code"),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert!(t.app.state.client_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_page_has_accessible_labels_and_security_headers() {
    let t = TestApp::new().await;
    let cookie = signed_in(&t, "root", "admin", "Organization/org-1").await;
    let r = get_with(&t, "/admin", &cookie).await;
    let html = r.text();
    for (id, label) in [
        ("client_name", "App name"),
        ("type-none", "Public"),
        ("type-client_secret_basic", "Confidential, symmetric"),
        ("type-private_key_jwt", "Confidential, asymmetric"),
        ("redirect_uris", "Redirect URIs"),
        ("launch_url", "Launch URL"),
        ("scope", "Scope"),
        ("grant-authorization_code", "authorization_code"),
        ("grant-refresh_token", "refresh_token"),
        ("grant-client_credentials", "client_credentials"),
        ("jwks", "JWKS"),
        ("jwks_uri", "JWKS URI"),
    ] {
        assert!(
            html.contains(&format!(r#"<label for="{id}">{label}"#)),
            "label {id}"
        );
        assert!(html.contains(&format!(r#"id="{id}""#)), "field {id}");
    }
    assert!(html.contains(r#"<button type="submit">Register</button>"#));
    assert!(html.contains("No client is registered yet"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn a_missing_or_foreign_form_token_is_refused() {
    let t = TestApp::new().await;
    let (cookie, _) = admin(&t).await;
    let other = signed_in(&t, "root2", "admin", "Organization/org-1").await;
    let foreign = csrf_of(&get_with(&t, "/admin", &other).await.text());
    let fields = [
        ("client_name", "No token"),
        ("redirect_uris", "https://n.example/cb"),
        ("grant_types", "authorization_code"),
    ];
    let with_foreign: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .chain([("csrf", foreign.as_str())])
        .collect();
    for pairs in [&fields[..], &with_foreign[..]] {
        let r = post_form(&t, "/admin/clients", &cookie, pairs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.text().contains("Form expired"));
    }
    assert!(t.app.state.client_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn refused_metadata_reshows_the_form_with_the_message() {
    let t = TestApp::new().await;
    let (cookie, csrf) = admin(&t).await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("client_name", "Public backend"),
                ("token_endpoint_auth_method", "none"),
                ("scope", "system/*.rs"),
                ("grant_types", "client_credentials"),
            ],
            "client_credentials needs token_endpoint_auth_method private_key_jwt",
        ),
        (
            &[
                ("client_name", "Bad redirect"),
                ("token_endpoint_auth_method", "none"),
                ("redirect_uris", "not a url"),
                ("grant_types", "authorization_code"),
            ],
            "is not an absolute URL",
        ),
        (
            &[
                ("client_name", "Keyless"),
                ("token_endpoint_auth_method", "private_key_jwt"),
                ("scope", "system/*.rs"),
                ("grant_types", "client_credentials"),
                ("jwks", "{not json"),
            ],
            "The JWKS is not valid JSON",
        ),
        (
            &[
                ("client_name", "No keys"),
                ("token_endpoint_auth_method", "private_key_jwt"),
                ("scope", "system/*.rs"),
                ("grant_types", "client_credentials"),
            ],
            "private_key_jwt clients must register jwks (with keys) or jwks_uri",
        ),
    ];
    for (fields, message) in cases {
        let mut pairs = vec![("csrf", csrf.as_str())];
        pairs.extend_from_slice(fields);
        let r = post_form(&t, "/admin/clients", &cookie, &pairs).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{message}");
        let html = r.text();
        assert!(
            html.contains(r#"<p class="error" role="alert">"#) && html.contains(message),
            "{message}: {html}"
        );
        // The entered values are kept.
        let name = fields[0].1;
        assert!(html.contains(&format!(r#"value="{name}""#)), "{name}");
        let method = fields[1].1;
        assert!(html.contains(&format!(
            r#"id="type-{method}" name="token_endpoint_auth_method" value="{method}" checked"#
        )));
        let grant = fields[3].1;
        assert!(html.contains(&format!(
            r#"id="grant-{grant}" name="grant_types" value="{grant}" checked"#
        )));
        assert!(html.contains(r#"<button type="submit">Register</button>"#));
    }
    let r = post_form(
        &t,
        "/admin/clients",
        &cookie,
        &[
            ("csrf", &csrf),
            ("client_name", "Bad redirect"),
            ("redirect_uris", "not a url"),
            ("grant_types", "authorization_code"),
        ],
    )
    .await;
    assert!(r.text().contains(">not a url</textarea>"));
    assert!(t.app.state.client_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_demo_start_creates_an_admin_who_can_open_the_page() {
    let t = TestApp::new().await;
    fhirgate::demo::ensure(&t.app, None, 1).await.unwrap();
    let admin = t
        .app
        .state
        .check_password("admin", "demo")
        .await
        .unwrap()
        .expect("the demo admin");
    assert_eq!(admin.role, "admin");
    assert_eq!(admin.fhir_user, fhirgate::demo::ADMIN_FHIR_USER);
    // Its fhir_user is a seeded resource.
    let r = t
        .get(&format!("/fhir/{}", fhirgate::demo::ADMIN_FHIR_USER))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The contract users are unchanged.
    for (name, role) in [("dr.lee", "clinician"), ("pat.jones", "patient")] {
        let u = t.app.state.check_password(name, "demo").await.unwrap();
        assert_eq!(u.map(|u| u.role).as_deref(), Some(role));
    }
    // A second start (seeded data dir) keeps it; it signs in to /admin.
    fhirgate::demo::ensure(&t.app, None, 1).await.unwrap();
    let form = t.get("/login").await;
    let pre = cookie_pair(&form, "fhirgate_csrf");
    let csrf = csrf_of(&form.text());
    let r = post_form(
        &t,
        "/login",
        &pre,
        &[
            ("csrf", &csrf),
            ("username", "admin"),
            ("password", "demo"),
            ("next", "/admin"),
        ],
    )
    .await;
    assert_eq!(r.header("location").as_deref(), Some("/admin"));
    let cookie = cookie_pair(&r, "fhirgate_session");
    assert_eq!(get_with(&t, "/admin", &cookie).await.status, StatusCode::OK);
}
