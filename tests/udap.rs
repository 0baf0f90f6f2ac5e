//! UDAP (issue 8), in process through the router: discovery with signed
//! metadata checked against the demo community's CA; dynamic registration
//! with a software statement signed by a certificate that CA issued, then
//! `client_credentials` with an `x5c` client assertion carrying the
//! `hl7-b2b` extension and a FHIR read with the token; re-registration,
//! cancellation, and each refusal with the error UDAP specifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use base64::{engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use common::{TestApp, TestResponse};
use fhirgate::udap::pki::{self, Issued};
use serde_json::{json, Value};

const BASE: &str = "http://fhirgate.test/fhir";
const REGISTER: &str = "http://fhirgate.test/auth/register";
const TOKEN: &str = "http://fhirgate.test/auth/token";
const APP_URI: &str = "https://b2b.example.org/apps/claims-sync";

fn der_b64(pem: &str) -> String {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    STANDARD.encode(&p.contents)
}

/// The demo community CA of `t`'s data dir.
fn demo_ca(t: &TestApp) -> Issued {
    let dir = t.dir.path().join("udap");
    Issued {
        cert: std::fs::read_to_string(dir.join("community-ca.pem")).unwrap(),
        key: std::fs::read_to_string(dir.join("community-ca.key")).unwrap(),
    }
}

fn now() -> i64 {
    fhirgate::oauth::now()
}

/// A JWT signed by `leaf` with `x5c` = [leaf, ca].
fn signed(leaf: &Issued, ca: &Issued, alg: jsonwebtoken::Algorithm, claims: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(alg);
    h.x5c = Some(vec![der_b64(&leaf.cert), der_b64(&ca.cert)]);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(leaf.key.as_bytes()).unwrap();
    jsonwebtoken::encode(&h, claims, &key).unwrap()
}

fn statement_claims(iss: &str, jti: &str) -> Value {
    let t = now();
    json!({"iss": iss, "sub": iss, "aud": REGISTER, "iat": t, "exp": t + 240, "jti": jti,
        "client_name": "Claims sync (B2B)", "contacts": ["mailto:ops@b2b.example.org"],
        "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
        "scope": "system/Patient.rs system/Observation.rs"})
}

async fn register(t: &TestApp, statement: &str) -> TestResponse {
    let body = json!({"software_statement": statement, "udap": "1"});
    t.request_raw(
        Method::POST,
        "/auth/register",
        &[("content-type", "application/json")],
        Some(body.to_string().into_bytes()),
    )
    .await
}

fn b2b(purpose: &str) -> Value {
    json!({"hl7-b2b": {"version": "1", "organization_id": format!("{BASE}/Organization/org-b2b"),
        "organization_name": "B2B Health", "purpose_of_use": [purpose]}})
}

async fn token(t: &TestApp, assertion: &str, scope: &str) -> TestResponse {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .finish();
    t.request_raw(
        Method::POST,
        "/auth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.into_bytes()),
    )
    .await
}

fn assertion_claims(client_id: &str, jti: &str, ext: Option<Value>) -> Value {
    let t = now();
    let mut c = json!({"iss": client_id, "sub": client_id, "aud": TOKEN, "iat": t, "exp": t + 240, "jti": jti});
    if let Some(e) = ext {
        c["extensions"] = e;
    }
    c
}

fn error_of(r: &TestResponse, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.json["error"], code, "{}", r.text());
}

#[tokio::test]
async fn discovery_publishes_metadata_signed_for_the_fhir_base() {
    let t = TestApp::new().await;
    let r = t.get("/fhir/.well-known/udap").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let m = &r.json;
    assert_eq!(m["udap_versions_supported"], json!(["1"]));
    for p in ["udap_dcr", "udap_authn", "udap_authz", "udap_to"] {
        assert!(m["udap_profiles_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(p)));
    }
    // an identity provider for Tiered OAuth offers `openid` and `udap`
    for s in ["openid", "udap"] {
        assert!(m["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(s)));
    }
    assert_eq!(
        m["udap_authorization_extensions_supported"],
        json!(["hl7-b2b"])
    );
    assert_eq!(m["udap_authorization_extensions_required"], json!([]));
    assert_eq!(m["token_endpoint"], TOKEN);
    assert_eq!(m["registration_endpoint"], REGISTER);
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    assert!(m["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("RS256")));
    // signed_metadata: RS256, x5c whose leaf names the FHIR base as a SAN
    // URI and chains to the community CA, iss = sub = the FHIR base
    let jwt = m["signed_metadata"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    let leaf_der = STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let sans = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(sans
        .value
        .general_names
        .iter()
        .any(|g| matches!(g, x509_parser::extensions::GeneralName::URI(u) if *u == BASE)));
    let ca = demo_ca(&t);
    let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.cert.as_bytes()).unwrap();
    let ca_cert = ca_pem.parse_x509().unwrap();
    assert!(leaf.verify_signature(Some(ca_cert.public_key())).is_ok());
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&leaf.public_key().subject_public_key.data);
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_issuer(&[BASE]);
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims;
    assert_eq!(claims["sub"], BASE);
    assert_eq!(claims["token_endpoint"], TOKEN);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 365 * 86_400);
    // an unknown community: 204 No Content
    let r = t
        .get("/fhir/.well-known/udap?community=urn:example:other")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_b2b_client_registers_and_reads_without_manual_steps() {
    let t = TestApp::new().await;
    let ca = demo_ca(&t);
    let leaf = pki::leaf(&ca.key, APP_URI, "Claims sync", 30).unwrap();
    let st = signed(
        &leaf,
        &ca,
        jsonwebtoken::Algorithm::RS256,
        &statement_claims(APP_URI, "s1"),
    );
    let r = register(&t, &st).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let client_id = r.json["client_id"].as_str().unwrap().to_owned();
    assert_eq!(r.json["software_statement"], st, "echoed unchanged");
    assert_eq!(r.json["grant_types"], json!(["client_credentials"]));
    assert_eq!(r.json["token_endpoint_auth_method"], "private_key_jwt");

    // client_credentials with an x5c assertion and hl7-b2b, then a read
    let a = signed(
        &leaf,
        &ca,
        jsonwebtoken::Algorithm::RS256,
        &assertion_claims(
            &client_id,
            "a1",
            Some(b2b("urn:oid:2.16.840.1.113883.5.8#TREAT")),
        ),
    );
    let tok = token(&t, &a, "system/Patient.rs").await;
    assert_eq!(tok.status, StatusCode::OK, "{}", tok.text());
    let access = tok.json["access_token"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["organization"], "Organization/org-b2b");
    assert_eq!(payload["purpose_of_use"], "TREAT");
    let read = t
        .request_raw(
            Method::GET,
            "/fhir/Patient",
            &[("authorization", &format!("Bearer {access}"))],
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    // the audit record names the stated purpose and organization
    let seq = read.header("x-ledger-seq").unwrap();
    let ev = t.get(&format!("/fhir/AuditEvent/{seq}")).await;
    assert_eq!(ev.status, StatusCode::OK, "{}", ev.text());
    let agents = ev.json["agent"].to_string();
    assert!(agents.contains("Organization/org-b2b"), "{agents}");
    assert!(agents.contains("\"TREAT\""), "{agents}");
    // a replayed assertion is refused
    error_of(
        &token(&t, &a, "system/Patient.rs").await,
        401,
        "invalid_client",
    );
    // an assertion signed by a certificate for another URI is refused
    let other = pki::leaf(&ca.key, "https://b2b.example.org/other", "Other", 30).unwrap();
    let bad = signed(
        &other,
        &ca,
        jsonwebtoken::Algorithm::RS256,
        &assertion_claims(&client_id, "a2", None),
    );
    error_of(
        &token(&t, &bad, "system/Patient.rs").await,
        401,
        "invalid_client",
    );

    // re-registration by the same iss: 200, same client_id, new metadata
    let mut again = statement_claims(APP_URI, "s2");
    again["client_name"] = json!("Claims sync v2");
    let r = register(
        &t,
        &signed(&leaf, &ca, jsonwebtoken::Algorithm::RS256, &again),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["client_id"], client_id);
    assert_eq!(r.json["client_name"], "Claims sync v2");
    // an empty grant_types cancels: the client gets no more tokens
    let mut cancel = statement_claims(APP_URI, "s3");
    cancel["grant_types"] = json!([]);
    let r = register(
        &t,
        &signed(&leaf, &ca, jsonwebtoken::Algorithm::RS256, &cancel),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json["grant_types"], json!([]));
    let a = signed(
        &leaf,
        &ca,
        jsonwebtoken::Algorithm::RS256,
        &assertion_claims(&client_id, "a3", None),
    );
    error_of(
        &token(&t, &a, "system/Patient.rs").await,
        400,
        "unauthorized_client",
    );
}

#[tokio::test]
async fn registrations_are_refused_with_the_errors_udap_specifies() {
    let t = TestApp::new().await;
    let ca = demo_ca(&t);
    let leaf = pki::leaf(&ca.key, APP_URI, "Claims sync", 30).unwrap();
    let rs256 = jsonwebtoken::Algorithm::RS256;

    // untrusted anchor
    let rogue_ca = pki::community_ca().unwrap();
    let rogue = pki::leaf(&rogue_ca.key, APP_URI, "Rogue", 30).unwrap();
    let r = register(
        &t,
        &signed(&rogue, &rogue_ca, rs256, &statement_claims(APP_URI, "n1")),
    )
    .await;
    error_of(&r, 400, "unapproved_software_statement");
    // expired leaf
    let expired = pki::leaf(&ca.key, APP_URI, "Expired", -1).unwrap();
    let r = register(
        &t,
        &signed(&expired, &ca, rs256, &statement_claims(APP_URI, "n2")),
    )
    .await;
    error_of(&r, 400, "invalid_software_statement");
    assert!(
        r.json["error_description"]
            .as_str()
            .unwrap()
            .contains("xpired"),
        "{}",
        r.text()
    );
    // iss not the certificate's SAN URI
    let r = register(
        &t,
        &signed(
            &leaf,
            &ca,
            rs256,
            &statement_claims("https://b2b.example.org/impostor", "n3"),
        ),
    )
    .await;
    error_of(&r, 400, "invalid_software_statement");
    // lives longer than five minutes
    let mut long = statement_claims(APP_URI, "n4");
    long["exp"] = json!(now() + 600);
    let r = register(&t, &signed(&leaf, &ca, rs256, &long)).await;
    error_of(&r, 400, "invalid_software_statement");
    // a replayed statement (same jti)
    let once = signed(&leaf, &ca, rs256, &statement_claims(APP_URI, "n5"));
    assert_eq!(register(&t, &once).await.status, StatusCode::CREATED);
    error_of(
        &register(&t, &once).await,
        400,
        "invalid_software_statement",
    );
    // a signing alg UDAP does not allow (HS256), and no x5c at all
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.x5c = Some(vec![der_b64(&leaf.cert)]);
    let hs = jsonwebtoken::encode(
        &h,
        &statement_claims(APP_URI, "n6"),
        &jsonwebtoken::EncodingKey::from_secret(b"shared"),
    )
    .unwrap();
    error_of(&register(&t, &hs).await, 400, "invalid_software_statement");
    // metadata: no mailto contact; both grants at once
    let mut no_mail = statement_claims(APP_URI, "n7");
    no_mail["contacts"] = json!(["https://b2b.example.org"]);
    error_of(
        &register(&t, &signed(&leaf, &ca, rs256, &no_mail)).await,
        400,
        "invalid_client_metadata",
    );
    let mut both = statement_claims(APP_URI, "n8");
    both["grant_types"] = json!(["client_credentials", "authorization_code"]);
    error_of(
        &register(&t, &signed(&leaf, &ca, rs256, &both)).await,
        400,
        "invalid_client_metadata",
    );
    // missing "udap": "1"
    let st = signed(&leaf, &ca, rs256, &statement_claims(APP_URI, "n9"));
    let r = t
        .request_raw(
            Method::POST,
            "/auth/register",
            &[("content-type", "application/json")],
            Some(json!({"software_statement": st}).to_string().into_bytes()),
        )
        .await;
    error_of(&r, 400, "invalid_client_metadata");
}

#[tokio::test]
async fn a_community_that_requires_b2b_refuses_token_requests_without_it() {
    let seed = TestApp::new().await;
    let ca_path = seed.dir.path().join("udap").join("community-ca.pem");
    let t = seed
        .reopen_with_config(&format!(
            "[[udap.communities]]\nname = \"urn:example:b2b-community\"\nanchors = [\"{}\"]\nrequire_b2b = true\n",
            ca_path.display()
        ))
        .await;
    let m = t.get("/fhir/.well-known/udap").await;
    assert_eq!(
        m.json["udap_authorization_extensions_required"],
        json!(["hl7-b2b"])
    );
    let ca = demo_ca(&t);
    let leaf = pki::leaf(&ca.key, APP_URI, "Claims sync", 30).unwrap();
    let rs256 = jsonwebtoken::Algorithm::RS256;
    let r = register(
        &t,
        &signed(&leaf, &ca, rs256, &statement_claims(APP_URI, "r1")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json["client_id"].as_str().unwrap().to_owned();
    let without = signed(&leaf, &ca, rs256, &assertion_claims(&id, "t1", None));
    error_of(
        &token(&t, &without, "system/Patient.rs").await,
        400,
        "invalid_grant",
    );
    let with = signed(
        &leaf,
        &ca,
        rs256,
        &assertion_claims(&id, "t2", Some(b2b("SYSDEV"))),
    );
    let ok = token(&t, &with, "system/Patient.rs").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
}

const REDIRECT: &str = "https://b2b.example.org/apps/portal/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-udap-entropy";

fn code_statement(iss: &str, jti: &str) -> Value {
    let t = now();
    json!({"iss": iss, "sub": iss, "aud": REGISTER, "iat": t, "exp": t + 240, "jti": jti,
        "client_name": "B2B user app", "contacts": ["mailto:ops@b2b.example.org"],
        "redirect_uris": [REDIRECT], "logo_uri": "https://b2b.example.org/logo.png",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt", "scope": "openid fhirUser user/Patient.rs"})
}

/// `/auth/authorize` for `client_id` with `pairs` (PKCE and state as given),
/// then the clinician's approval; the code (or the error redirect).
async fn code_flow(
    t: &TestApp,
    client_id: &str,
    pkce: bool,
    state: bool,
) -> Result<String, String> {
    let challenge = smart_launch::pkce::challenge_of(VERIFIER);
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid fhirUser user/Patient.rs"),
        ("aud", BASE),
    ];
    if state {
        pairs.push(("state", "st-udap"));
    }
    if pkce {
        pairs.push(("code_challenge", challenge.as_str()));
        pairs.push(("code_challenge_method", "S256"));
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let r = t
        .request_raw(Method::GET, &format!("/auth/authorize?{q}"), &[], None)
        .await;
    let loc = r.header("location").unwrap_or_default();
    let Some(pending) = loc.strip_prefix("/auth/continue?req=") else {
        return Err(loc);
    };
    let user = fhirgate::state::users::User {
        username: "dr.b2b".into(),
        role: "clinician".into(),
        fhir_user: "Practitioner/dr-b2b".into(),
        display_name: "Dr B2B".into(),
        organization: None,
    };
    let url = fhirgate::oauth::authorize::approve(
        &t.app,
        pending,
        &user,
        &Default::default(),
        "openid fhirUser user/Patient.rs",
        None,
    )
    .await
    .unwrap();
    let code = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    Ok(code)
}

async fn redeem(t: &TestApp, code: &str, assertion: &str, verifier: Option<&str>) -> TestResponse {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ];
    if let Some(v) = verifier {
        pairs.push(("code_verifier", v));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    t.request_raw(
        Method::POST,
        "/auth/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.into_bytes()),
    )
    .await
}

#[tokio::test]
async fn a_udap_user_app_uses_the_authorization_code_flow_with_pkce_and_state() {
    let t = TestApp::new().await;
    let ca = demo_ca(&t);
    let uri = "https://b2b.example.org/apps/portal";
    let leaf = pki::leaf(&ca.key, uri, "B2B user app", 30).unwrap();
    let rs256 = jsonwebtoken::Algorithm::RS256;
    let r = register(&t, &signed(&leaf, &ca, rs256, &code_statement(uri, "c1"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json["response_types"], json!(["code"]));
    let id = r.json["client_id"].as_str().unwrap().to_owned();

    let code = code_flow(&t, &id, true, true).await.unwrap();
    let a = signed(&leaf, &ca, rs256, &assertion_claims(&id, "ca1", None));
    let tok = redeem(&t, &code, &a, Some(VERIFIER)).await;
    assert_eq!(tok.status, StatusCode::OK, "{}", tok.text());
    assert!(tok.json["access_token"].is_string());
    // STU2 by default: no state, or no PKCE, is refused
    let no_state = code_flow(&t, &id, true, false).await.unwrap_err();
    assert!(no_state.contains("error=invalid_request"), "{no_state}");
    let no_pkce = code_flow(&t, &id, false, true).await.unwrap_err();
    assert!(no_pkce.contains("error=invalid_request"), "{no_pkce}");
}

#[tokio::test]
async fn a_community_may_let_stu1_clients_skip_pkce_and_state() {
    let seed = TestApp::new().await;
    let ca_path = seed.dir.path().join("udap").join("community-ca.pem");
    let t = seed
        .reopen_with_config(&format!(
            "[[udap.communities]]\nname = \"urn:example:stu1\"\nanchors = [\"{}\"]\nstu1_without_pkce = true\n",
            ca_path.display()
        ))
        .await;
    let ca = demo_ca(&t);
    let uri = "https://b2b.example.org/apps/legacy";
    let leaf = pki::leaf(&ca.key, uri, "STU1 app", 30).unwrap();
    let rs256 = jsonwebtoken::Algorithm::RS256;
    let r = register(&t, &signed(&leaf, &ca, rs256, &code_statement(uri, "l1"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json["client_id"].as_str().unwrap().to_owned();
    let code = code_flow(&t, &id, false, false).await.unwrap();
    let a = signed(&leaf, &ca, rs256, &assertion_claims(&id, "la1", None));
    let tok = redeem(&t, &code, &a, None).await;
    assert_eq!(tok.status, StatusCode::OK, "{}", tok.text());
    // one that did send PKCE must still prove it
    let code = code_flow(&t, &id, true, true).await.unwrap();
    let a = signed(&leaf, &ca, rs256, &assertion_claims(&id, "la2", None));
    let tok = redeem(&t, &code, &a, None).await;
    error_of(&tok, 400, "invalid_grant");
}
