//! Registering each client type on the admin page, and using the client
//! registered: listed, launchable from `/launcher`, authenticating at the
//! token and introspection endpoints.

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::json;

use crate::{
    common::TestApp,
    support::{admin, csrf_of, get_with, post_form, signed_in, value_after},
};

const TOKEN_ENDPOINT: &str = "http://fhirgate.test/auth/token";

#[tokio::test]
async fn a_public_client_with_a_launch_url_is_listed_and_launchable() {
    let t = TestApp::new().await;
    let (cookie, csrf) = admin(&t).await;
    let r = post_form(
        &t,
        "/admin/clients",
        &cookie,
        &[
            ("csrf", &csrf),
            ("client_name", "Growth <Chart>"),
            ("token_endpoint_auth_method", "none"),
            (
                "redirect_uris",
                "https://app.example/cb\r\nhttps://app.example/cb2",
            ),
            ("launch_url", "https://app.example/launch"),
            ("scope", "launch openid fhirUser patient/*.rs"),
            ("grant_types", "authorization_code"),
            ("grant_types", "refresh_token"),
            ("jwks", ""),
            ("jwks_uri", ""),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(html.contains("Client registered"));
    assert!(html.contains("Growth &#60;Chart&#62;") || html.contains("Growth &lt;Chart&gt;"));
    assert!(!html.contains("Client secret"));
    let id = value_after(&html, r#"<code id="client_id">"#);
    let clients = t.app.state.client_list().await.unwrap();
    assert_eq!(clients.len(), 1);
    let c = &clients[0];
    assert_eq!(c.client_id, id);
    assert_eq!(c.client_type, "public");
    assert!(c.secret_hash.is_none());
    assert_eq!(c.metadata["launch_url"], "https://app.example/launch");
    assert_eq!(
        c.metadata["redirect_uris"],
        json!(["https://app.example/cb", "https://app.example/cb2"])
    );
    assert_eq!(
        c.metadata["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    // The list shows it.
    let list = get_with(&t, "/admin", &cookie).await.text();
    for shown in [
        id.as_str(),
        "public",
        "authorization_code, refresh_token",
        "launch openid fhirUser patient/*.rs",
        "https://app.example/cb2",
        "https://app.example/launch",
    ] {
        assert!(list.contains(shown), "{shown} in the list");
    }
    // A clinician can launch it from the EHR launcher.
    let pid = t
        .create(json!({"resourceType": "Patient", "name": [{"family": "Alpha", "given": ["Bob"]}]}))
        .await;
    let dr = signed_in(&t, "dr.a", "clinician", "Practitioner/p1").await;
    let launcher = get_with(&t, &format!("/launcher?patient={pid}"), &dr)
        .await
        .text();
    assert!(
        launcher.contains(&format!(
            r#"<option value="{id}">Growth &#60;Chart&#62;</option>"#
        )) || launcher.contains(&format!(
            r#"<option value="{id}">Growth &lt;Chart&gt;</option>"#
        )),
        "{launcher}"
    );
    let csrf_dr = csrf_of(&launcher);
    let r = post_form(
        &t,
        "/launcher",
        &dr,
        &[("csrf", &csrf_dr), ("patient", &pid), ("client_id", &id)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("https://app.example/launch?iss="));
}

#[tokio::test]
async fn a_symmetric_client_sees_its_secret_once_and_it_works() {
    let t = TestApp::new().await;
    let (cookie, csrf) = admin(&t).await;
    let r = post_form(
        &t,
        "/admin/clients",
        &cookie,
        &[
            ("csrf", &csrf),
            ("client_name", "Confidential"),
            ("token_endpoint_auth_method", "client_secret_basic"),
            ("redirect_uris", "https://conf.example/cb"),
            ("scope", "openid fhirUser launch/patient patient/*.rs"),
            ("grant_types", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(html.contains("not shown again"));
    assert!(html.contains(r#"<label for="client_secret">Client secret</label>"#));
    let id = value_after(&html, r#"<code id="client_id">"#);
    let secret = value_after(&html, r#"id="client_secret" type="text" value=""#);
    assert!(secret.len() >= 32, "{secret}");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    // Never again: not on the list, not in the store.
    let list = get_with(&t, "/admin", &cookie).await.text();
    assert!(list.contains(&id) && list.contains("confidential-symmetric"));
    assert!(!list.contains(&secret));
    let stored = t.app.state.client_get(&id).await.unwrap().unwrap();
    assert!(stored.secret_hash.as_deref().is_some_and(|h| h != secret));
    assert!(!stored.metadata.to_string().contains(&secret));
    // The secret authenticates the client (introspection needs client auth).
    let introspect = |basic: String| {
        let t = &t;
        async move {
            let auth = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(basic)
            );
            t.request_raw(
                Method::POST,
                "/auth/introspect",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &auth),
                ],
                Some(b"token=nope".to_vec()),
            )
            .await
        }
    };
    let ok = introspect(format!("{id}:{secret}")).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.json["active"], false);
    let wrong = introspect(format!("{id}:wrong")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_asymmetric_client_with_a_jwks_gets_backend_services_tokens() {
    let t = TestApp::new().await;
    let (cookie, csrf) = admin(&t).await;
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())}]});
    let r = post_form(
        &t,
        "/admin/clients",
        &cookie,
        &[
            ("csrf", &csrf),
            ("client_name", "Nightly export"),
            ("token_endpoint_auth_method", "private_key_jwt"),
            ("scope", "system/*.rs"),
            ("grant_types", "client_credentials"),
            ("jwks", &serde_json::to_string_pretty(&jwks).unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let html = r.text();
    assert!(!html.contains("Client secret"));
    let id = value_after(&html, r#"<code id="client_id">"#);
    let stored = t.app.state.client_get(&id).await.unwrap().unwrap();
    assert_eq!(stored.client_type, "confidential-asymmetric");
    assert_eq!(stored.metadata["jwks"], jwks);
    // It authenticates with a signed assertion and reads through the facade.
    let now = fhirgate::oauth::now();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
    header.kid = Some("k1".into());
    let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
    let assertion = jsonwebtoken::encode(
        &header,
        &json!({"iss": id, "sub": id, "aud": TOKEN_ENDPOINT, "exp": now + 240, "iat": now, "jti": "j1"}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let r = post_form(
        &t,
        "/auth/token",
        "",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/Patient.rs"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let r = t
        .request_raw(
            Method::GET,
            "/fhir/Patient",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
