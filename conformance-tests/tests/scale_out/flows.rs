//! Cases 1–3 of the scale-out suite: OAuth clients and tokens, the SMART
//! authorization-code flow through a browser behind the balancer, and the
//! EHR launch (see `scale_out.rs` for what each checks).

use conformance_tests::{
    browser::{query, Form},
    cases::{ensure, short},
    process::Process,
};
use reqwest::Url;
use serde_json::{json, Value};

use crate::{
    lb::{Body, Browser, Lb, Reply},
    pairs,
    support::{claims, pkce, KeyClient},
    want, A, B,
};

/// The app's redirect and launch URLs (never fetched).
const REDIRECT: &str = "https://app.example.org/callback";
const LAUNCH_URL: &str = "https://app.example.org/launch";
/// What the app registers for, and asks for in each flow.
const APP_SCOPE: &str =
    "openid fhirUser launch launch/patient offline_access patient/*.cruds user/*.rs";
const PATIENT_SCOPE: &str = "openid fhirUser launch/patient offline_access patient/*.cruds";
const EHR_SCOPE: &str = "launch openid fhirUser patient/*.rs";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The Backend Services client of case 1.
pub struct Backend {
    key: KeyClient,
    client_id: String,
}

impl Backend {
    fn token_endpoint(lb: &Lb) -> String {
        format!("{}/auth/token", lb.public)
    }

    /// `client_credentials` with `assertion` on `at`.
    fn token_with(&self, lb: &Lb, at: usize, assertion: &str) -> Result<Reply, String> {
        let form = pairs(&[
            ("grant_type", "client_credentials"),
            ("scope", "system/*.cruds"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ]);
        lb.post(Some(at), "/auth/token", Body::Form(form))
    }

    /// A fresh access token from `at`.
    pub fn token(&self, lb: &Lb, at: usize) -> Result<String, String> {
        let assertion = self
            .key
            .assertion(&self.client_id, &Self::token_endpoint(lb))?;
        let r = self.token_with(lb, at, &assertion)?;
        want(&r, &[200], "client_credentials")?;
        r.json["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no access_token: {}", short(&r.body)))
    }
}

/// Case 1. Returns the backend client and a live system token.
pub fn clients_and_tokens(lb: &Lb, a: &Process) -> Result<(Backend, String), String> {
    let key = KeyClient::new().map_err(|e| e.to_string())?;
    let meta = json!({"client_name": "scale-out backend", "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"], "scope": "system/*.cruds", "jwks": key.jwks});
    let r = lb.post(Some(A), "/auth/register", Body::Json(meta))?;
    want(&r, &[201], "RFC 7591 registration on A")?;
    let client_id = r.json["client_id"]
        .as_str()
        .ok_or("no client_id")?
        .to_owned();
    let backend = Backend { key, client_id };
    let listed = a.cli(&["client", "list"]).map_err(|e| e.to_string())?;
    ensure(
        String::from_utf8_lossy(&listed.stdout).contains(&backend.client_id),
        || "`fhirgate client list` on the shared database does not list the client".into(),
    )?;
    // B knows the client A registered; the assertion's jti is spent everywhere
    let assertion = backend
        .key
        .assertion(&backend.client_id, &Backend::token_endpoint(lb))?;
    let r = backend.token_with(lb, B, &assertion)?;
    want(
        &r,
        &[200],
        "client_credentials on B for a client registered on A",
    )?;
    let live = r.json["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned();
    let replay = backend.token_with(lb, A, &assertion)?;
    want(
        &replay,
        &[400, 401],
        "the same client assertion replayed on A",
    )?;
    ensure(replay.json["error"] == "invalid_client", || {
        format!("replayed assertion: {}", replay.describe())
    })?;
    // a token from A is good on B until B revokes it, then on neither
    let t = backend.token(lb, A)?;
    let r = lb.get(Some(B), "/fhir/Patient?_count=5", &t)?;
    want(&r, &[200], "B reads with A's token")?;
    let assertion = backend
        .key
        .assertion(&backend.client_id, &Backend::token_endpoint(lb))?;
    let form = pairs(&[
        ("token", t.as_str()),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ]);
    let r = lb.post(Some(B), "/auth/revoke", Body::Form(form))?;
    want(&r, &[200], "revocation on B")?;
    let r = lb.get(Some(A), "/fhir/Patient?_count=1", &t)?;
    want(&r, &[401], "A after B revoked the token")?;
    let r = lb.get(Some(B), "/fhir/Patient?_count=1", &t)?;
    want(&r, &[401], "B after it revoked the token")?;
    let r = lb.get(None, "/fhir/Patient?_count=1", &live)?;
    want(&r, &[200], "the other token still reads")?;
    Ok((backend, live))
}

/// The app's authorize URL (path and query) for `scope`.
fn authorize_url(
    lb: &Lb,
    client_id: &str,
    scope: &str,
    state: &str,
    challenge: &str,
    launch: Option<&str>,
) -> String {
    let aud = lb.fhir_base();
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("aud", aud.as_str()),
    ];
    if let Some(l) = launch {
        q.push(("launch", l));
    }
    let u = Url::parse_with_params(&format!("{}/auth/authorize", lb.public), q)
        .map_or_else(|_| String::new(), String::from);
    u.strip_prefix(&lb.public).unwrap_or_default().to_owned()
}

/// From the answer to `GET /auth/authorize` on to the code: follows the
/// browser (signing in as `user` if asked), approves everything, checks the
/// redirect to the app; returns the code.
fn approve(b: &Browser, first: Reply, user: &str, state: &str) -> Result<String, String> {
    want(&first, &[302, 303], "authorize")?;
    let page = b.follow(first, user)?;
    let form = Form::find(&page.body, "/auth/continue").ok_or_else(|| {
        format!(
            "no approval form: {}\n    trail:\n    {}",
            page.describe(),
            b.trail()
        )
    })?;
    let mut fields = form.fields;
    fields.push(("decision".into(), "allow".into()));
    let r = b.step(None, "POST", "/auth/continue", Some(fields))?;
    let to = r.header("location").unwrap_or_default().to_owned();
    ensure(r.status == 303 && to.starts_with(REDIRECT), || {
        format!("approval: {}\n    trail:\n    {}", r.describe(), b.trail())
    })?;
    let q = query(&to)?;
    ensure(q.get("state").map(String::as_str) == Some(state), || {
        format!("state not echoed: {to}")
    })?;
    q.get("code")
        .cloned()
        .ok_or_else(|| format!("no code: {to}"))
}

/// The code redeemed at `at` (public client, PKCE).
fn redeem(
    lb: &Lb,
    at: Option<usize>,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> Result<Value, String> {
    let form = Body::Form(pairs(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id),
        ("code_verifier", verifier),
    ]));
    let r = lb.post(at, "/auth/token", form)?;
    want(&r, &[200], "code redemption")?;
    Ok(r.json)
}

/// What case 2 leaves for the others.
pub struct PatientLogin {
    pub app: String,
    /// `pat.jones`'s access token (from the refresh).
    pub token: String,
    /// `pat.jones`'s Patient id.
    pub patient: String,
}

/// Case 2.
pub fn authorization_code(lb: &Lb) -> Result<PatientLogin, String> {
    let meta = json!({"client_name": "scale-out app", "redirect_uris": [REDIRECT],
        "launch_url": LAUNCH_URL, "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "scope": APP_SCOPE});
    let r = lb.post(None, "/auth/register", Body::Json(meta))?;
    want(&r, &[201], "app registration")?;
    let app = r.json["client_id"]
        .as_str()
        .ok_or("no client_id")?
        .to_owned();
    let b = Browser::new(lb);
    let (verifier, challenge) = pkce();
    let state = format!("st-{}", rand::random::<u64>());
    let url = authorize_url(lb, &app, PATIENT_SCOPE, &state, &challenge, None);
    let first = b.step(Some(A), "GET", &url, None)?;
    let code = approve(&b, first, "pat.jones", &state)?;
    let tokens = redeem(lb, Some(B), &app, &code, &verifier)?;
    let patient = tokens["patient"]
        .as_str()
        .ok_or_else(|| format!("no patient in the token answer: {tokens}"))?
        .to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .ok_or_else(|| format!("no refresh_token (offline_access): {tokens}"))?
        .to_owned();
    let access = tokens["access_token"].as_str().ok_or("no access_token")?;
    let r = lb.get(None, &format!("/fhir/Patient/{patient}"), access)?;
    want(&r, &[200], "pat.jones reads their record")?;
    // the refresh token on A; spent, it is refused on B
    let form = pairs(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", app.as_str()),
    ]);
    let r = lb.post(Some(A), "/auth/token", Body::Form(form.clone()))?;
    want(&r, &[200], "refresh on A")?;
    let token = r.json["access_token"]
        .as_str()
        .ok_or("no access_token from the refresh")?
        .to_owned();
    let again = lb.post(Some(B), "/auth/token", Body::Form(form))?;
    want(&again, &[400], "the spent refresh token on B")?;
    ensure(again.json["error"] == "invalid_grant", || {
        format!("spent refresh token: {}", again.describe())
    })?;
    let r = lb.get(Some(B), &format!("/fhir/Patient/{patient}"), &token)?;
    want(&r, &[200], "B reads with the refreshed token")?;
    Ok(PatientLogin {
        app,
        token,
        patient,
    })
}

/// Case 3: `dr.lee` launches the app for `patient`; returns the app's
/// access token (dr.lee's, for that patient).
pub fn ehr_launch(lb: &Lb, app: &str, patient: &str) -> Result<String, String> {
    let b = Browser::new(lb);
    let first = b.step(None, "GET", &format!("/launcher?patient={patient}"), None)?;
    let page = b.follow(first, "dr.lee")?;
    let form = Form::find(&page.body, "/launcher").ok_or_else(|| {
        format!(
            "no launcher form: {}\n    trail:\n    {}",
            page.describe(),
            b.trail()
        )
    })?;
    let mut fields = form.fields;
    fields.push(("client_id".into(), app.to_owned()));
    let r = b.step(Some(A), "POST", "/launcher", Some(fields))?;
    let to = r.header("location").unwrap_or_default().to_owned();
    ensure(r.status == 303 && to.starts_with(LAUNCH_URL), || {
        format!(
            "launch on A: {}\n    trail:\n    {}",
            r.describe(),
            b.trail()
        )
    })?;
    let q = query(&to)?;
    ensure(q.get("iss") == Some(&lb.fhir_base()), || {
        format!("iss is not the public FHIR base: {to}")
    })?;
    let launch = q.get("launch").ok_or("no launch parameter")?.clone();
    let (verifier, challenge) = pkce();
    let state = format!("st-{}", rand::random::<u64>());
    let url = authorize_url(lb, app, EHR_SCOPE, &state, &challenge, Some(&launch));
    let first = b.step(Some(B), "GET", &url, None)?;
    let code = approve(&b, first, "dr.lee", &state)?;
    let tokens = redeem(lb, None, app, &code, &verifier)?;
    ensure(tokens["patient"] == patient, || {
        format!("the token's patient is not the launched {patient}: {tokens}")
    })?;
    let c = claims(tokens["access_token"].as_str().unwrap_or_default());
    ensure(
        c["fhirUser"]
            .as_str()
            .is_some_and(|f| f.contains("Practitioner/")),
        || format!("the token is not dr.lee's: {c}"),
    )?;
    // the launch is single use on every replica
    let (_, challenge) = pkce();
    let url = authorize_url(lb, app, EHR_SCOPE, &state, &challenge, Some(&launch));
    let r = b.step(Some(A), "GET", &url, None)?;
    let to = r.header("location").unwrap_or_default();
    let q = query(to).unwrap_or_default();
    ensure(
        q.get("error").map(String::as_str) == Some("invalid_request"),
        || format!("a second use of the launch on A: {}", r.describe()),
    )?;
    tokens["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no access_token".into())
}
