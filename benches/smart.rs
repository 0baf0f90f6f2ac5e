//! SMART benchmark (issue 3): prints, from one run,
//! - token endpoint requests/second for the authorization-code exchange
//!   (public client, PKCE) and for Backend Services `client_credentials`
//!   (RS384 client assertion), through the router in-process;
//! - the cost of token validation plus scope checking per FHIR request, as
//!   a ratio to the rest of an (otherwise identical) facade read.
//!
//! Run: `scripts/bench.sh smart` (or `cargo bench --bench smart`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use axum::{body::Body, http::Request};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use fhirgate::{
    config::Config,
    fhir::{FhirRequest, Interaction},
    AppState,
};
use http_body_util::BodyExt;
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::json;
use smart_launch::{pkce::challenge_of, token::hash_token};
use tower::ServiceExt;

const VERIFIER: &str = "bench-verifier-0123456789-0123456789-0123456789";

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn post_form(router: &axum::Router, path: &str, body: String) -> serde_json::Value {
    let req = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("FHIRGATE_DEMO".to_owned(), "1".to_owned()),
    ];
    let config = Config::from_parts("", std::path::Path::new("none.toml"), &env).unwrap();
    let (app, _) = AppState::open(config).await.unwrap();
    fhirgate::demo::seed_population(&app, 5).await.unwrap();
    let router = fhirgate::app(app.clone());

    // Public client, code exchange: codes are minted as `approve` would.
    let (public, _) = fhirgate::oauth::clients::register(&app, &json!({"client_name": "bench", "redirect_uris": ["https://b/cb"], "scope": "openid fhirUser patient/*.rs"})).await.unwrap();
    let n_codes = 2000;
    let mut bodies = Vec::with_capacity(n_codes);
    for i in 0..n_codes {
        let code = format!("bench-code-{i}");
        let grant = json!({"client_id": public.client_id, "redirect_uri": "https://b/cb", "code_challenge": challenge_of(VERIFIER),
            "scope": "openid fhirUser patient/*.rs", "patient": "patient-00001", "username": "pat.jones", "fhir_user": "Patient/patient-00001", "role": "patient"});
        app.state
            .code_put(
                &hash_token(&code),
                &public.client_id,
                &grant,
                fhirgate::oauth::now() + 3600,
            )
            .await
            .unwrap();
        bodies.push(format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fb%2Fcb&client_id={}&code_verifier={VERIFIER}", public.client_id));
    }
    let t = Instant::now();
    let mut access = String::new();
    for b in bodies {
        access = post_form(&router, "/auth/token", b).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let code_rps = per_second(n_codes, t.elapsed());

    // Backend Services client with an RS384 key.
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let jwk = json!({"kty": "RSA", "kid": "b", "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be())});
    let (backend, _) = fhirgate::oauth::clients::register(
        &app,
        &json!({"client_name": "bench-backend", "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"], "scope": "system/*.rs", "jwks": {"keys": [jwk]}}),
    )
    .await
    .unwrap();
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(
        key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let n_cc = 1000;
    let mut bodies = Vec::with_capacity(n_cc);
    let now = fhirgate::oauth::now();
    for i in 0..n_cc {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
        h.kid = Some("b".into());
        let claims = json!({"iss": backend.client_id, "sub": backend.client_id, "aud": "http://127.0.0.1:8080/auth/token", "exp": now + 280, "jti": format!("j{i}")});
        let a = jsonwebtoken::encode(&h, &claims, &enc).unwrap();
        bodies.push(format!("grant_type=client_credentials&scope=system%2FPatient.rs&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={a}"));
    }
    let t = Instant::now();
    for b in bodies {
        post_form(&router, "/auth/token", b).await;
    }
    let cc_rps = per_second(n_cc, t.elapsed());

    // Per-request authentication + scope checking vs the whole read.
    let n = 20_000;
    let auth = format!("Bearer {access}");
    let t = Instant::now();
    for _ in 0..n {
        let req = Request::get("/fhir/Patient/patient-00001")
            .header("authorization", &auth)
            .body(Body::empty())
            .unwrap();
        let res = router.clone().oneshot(req).await.unwrap();
        assert!(res.status().is_success());
        res.into_body().collect().await.unwrap();
    }
    let full = t.elapsed() / n as u32;
    let t = Instant::now();
    for _ in 0..n {
        let caller = fhirgate::pipeline::authenticate::authenticate(&app, Some(&auth))
            .await
            .unwrap();
        let mut r = FhirRequest::new(Interaction::Read);
        r.resource_type = Some("Patient".into());
        r.id = Some("patient-00001".into());
        fhirgate::pipeline::authorize::authorize(&caller, &mut r).unwrap();
    }
    let auth_cost = t.elapsed() / n as u32;
    let rest = full.saturating_sub(auth_cost);

    println!("\n## SMART (release, 2 worker threads, sequential requests through the router)\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!("| token endpoint, authorization_code exchange (PKCE, RS256 access + id token) | {code_rps:.0} req/s |");
    println!("| token endpoint, client_credentials (RS384 assertion verify + jti + RS256 sign) | {cc_rps:.0} req/s |");
    println!(
        "| facade read Patient/{{id}} with bearer token, per request | {:.1} us |",
        full.as_secs_f64() * 1e6
    );
    println!(
        "| of which token validation + revocation lookup + scope check | {:.1} us |",
        auth_cost.as_secs_f64() * 1e6
    );
    println!(
        "| auth cost as a ratio to the unauthenticated rest of the request | {:.2}x |",
        auth_cost.as_secs_f64() / rest.as_secs_f64()
    );
}
