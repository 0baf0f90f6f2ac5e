//! The server-rendered pages, driven with `oneshot`: sign-in, CSRF, the
//! patient picker, the app authorization page and the EHR launcher.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::StatusCode;
use common::{
    forms::{csrf_of, get_with, post_form, sign_in_with},
    TestApp, TestResponse,
};
use fhirgate::{
    oauth::authorize::Pending,
    state::{oauth::ClientRecord, users::User},
};
use serde_json::json;

const REDIRECT: &str = "https://app.example/cb";

/// `name=value` of the `Set-Cookie` for `name`.
fn set_cookie(r: &TestResponse, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn add_user(t: &TestApp, username: &str, role: &str, fhir_user: &str) {
    let u = User {
        username: username.into(),
        role: role.into(),
        fhir_user: fhir_user.into(),
        display_name: format!("Name of {username}"),
        organization: None,
    };
    t.app.state.upsert_user(&u, "pw").await.unwrap();
}

/// Signs in through the form; returns the `fhirgate_session=…` cookie pair.
async fn sign_in(t: &TestApp, username: &str) -> String {
    sign_in_with(t, username, "pw").await
}

async fn add_patient(t: &TestApp, family: &str, given: &str) -> String {
    t.create(
        json!({"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
        "birthDate": "1970-01-02", "gender": "female"}),
    )
    .await
}

async fn add_pending(t: &TestApp, id: &str, scope: &str, needs_patient: bool) {
    let p = Pending {
        id: id.into(),
        client_id: "app1".into(),
        client_name: "Growth Chart".into(),
        redirect_uri: REDIRECT.into(),
        state: Some("st8".into()),
        scope: scope.into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        nonce: None,
        launch_patient: None,
        launch_encounter: None,
        launch_user: None,
        needs_patient,
        acr_values: Vec::new(),
        max_age: None,
        reauth_asked: false,
    };
    let exp = fhirgate::oauth::now() + 600;
    t.app
        .state
        .pending_put(id, &serde_json::to_value(&p).unwrap(), exp)
        .await
        .unwrap();
}

async fn add_client(t: &TestApp, id: &str, name: &str, launch_url: Option<&str>) {
    let mut meta =
        json!({"redirect_uris": [REDIRECT], "scope": "launch openid fhirUser patient/*.rs"});
    if let Some(u) = launch_url {
        meta["launch_url"] = json!(u);
    }
    let c = ClientRecord {
        client_id: id.into(),
        client_name: name.into(),
        client_type: "public".into(),
        secret_hash: None,
        metadata: meta,
        created_at: 0,
    };
    t.app.state.client_insert(&c).await.unwrap();
}

#[tokio::test]
async fn login_form_has_the_contract_labels_and_security_headers() {
    let t = TestApp::new().await;
    let r = t.get("/login?next=/launcher").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains(r#"<label for="username">Username</label>"#));
    assert!(html.contains(r#"<label for="password">Password</label>"#));
    assert!(html.contains(r#"<button type="submit">Sign in</button>"#));
    assert!(html.contains(r#"name="next" value="/launcher""#));
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && csp.contains("form-action 'self'")
    );
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let pre = set_cookie(&r, "fhirgate_csrf").unwrap();
    assert!(pre.contains("HttpOnly") && pre.contains("SameSite=Lax"));
}

#[tokio::test]
async fn sign_in_starts_a_session_and_follows_local_next_only() {
    let t = TestApp::new().await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    for (next, expected) in [
        ("/launcher?patient=1", "/launcher?patient=1"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ] {
        let form = t.get("/login").await;
        let pre = pair(&set_cookie(&form, "fhirgate_csrf").unwrap());
        let csrf = csrf_of(&form.text());
        let r = post_form(
            &t,
            "/login",
            &pre,
            &[
                ("csrf", &csrf),
                ("username", "dr.a"),
                ("password", "pw"),
                ("next", next),
            ],
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(
            r.header("location").as_deref(),
            Some(expected),
            "next={next}"
        );
        let c = set_cookie(&r, "fhirgate_session").unwrap();
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=28800"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(!c.contains("Secure"), "public URL is http");
    }
    // The session works: the landing page greets the user.
    let cookie = sign_in(&t, "dr.a").await;
    assert!(get_with(&t, "/", &cookie)
        .await
        .text()
        .contains("Signed in as Name of dr.a"));
}

#[tokio::test]
async fn wrong_credentials_get_401_without_telling_which() {
    let t = TestApp::new().await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    let mut pages = Vec::new();
    for (user, pw) in [("dr.a", "wrong"), ("nobody", "pw")] {
        let form = t.get("/login").await;
        let pre = pair(&set_cookie(&form, "fhirgate_csrf").unwrap());
        let csrf = csrf_of(&form.text());
        let r = post_form(
            &t,
            "/login",
            &pre,
            &[("csrf", &csrf), ("username", user), ("password", pw)],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(set_cookie(&r, "fhirgate_session").is_none());
        let html = r.text();
        assert!(html.contains("Invalid username or password"));
        assert!(html.contains("Username") && html.contains("Sign in"));
        pages.push(html.replace(user, "USER").replace(&csrf, "TOKEN"));
    }
    assert_eq!(
        pages[0], pages[1],
        "unknown user and wrong password look the same"
    );
}

#[tokio::test]
async fn posts_without_a_valid_form_token_are_refused() {
    let t = TestApp::new().await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    // Sign-in: no cookie, no token, and a token for another cookie.
    let form = t.get("/login").await;
    let pre = pair(&set_cookie(&form, "fhirgate_csrf").unwrap());
    let csrf = csrf_of(&form.text());
    let other = t.get("/login").await;
    let other_pre = pair(&set_cookie(&other, "fhirgate_csrf").unwrap());
    for (cookie, token) in [
        ("", csrf.as_str()),
        (pre.as_str(), ""),
        (other_pre.as_str(), csrf.as_str()),
    ] {
        let r = post_form(
            &t,
            "/login",
            cookie,
            &[("csrf", token), ("username", "dr.a"), ("password", "pw")],
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.text().contains("Form expired"), "{}", r.text());
        assert!(set_cookie(&r, "fhirgate_session").is_none());
    }
    // Signed in: approval, launcher and sign-out need the session's token.
    let cookie = sign_in(&t, "dr.a").await;
    add_pending(&t, "req1", "openid", false).await;
    for (path, pairs) in [
        (
            "/auth/continue",
            vec![("req", "req1"), ("decision", "allow"), ("csrf", "00")],
        ),
        ("/launcher", vec![("patient", "x"), ("client_id", "app1")]),
        ("/logout", vec![("csrf", "bad")]),
    ] {
        let r = post_form(&t, path, &cookie, &pairs).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.text().contains("Form expired"));
    }
    // The pending request is untouched and sign-out with the token works.
    let page = get_with(&t, "/auth/continue?req=req1", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    let out = post_form(&t, "/logout", &cookie, &[("csrf", &csrf_of(&page.text()))]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let gone = get_with(&t, "/auth/continue?req=req1", &cookie).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "session ended");
}

#[tokio::test]
async fn continue_sends_strangers_to_sign_in_and_explains_expired_requests() {
    let t = TestApp::new().await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    let r = t.get("/auth/continue?req=abc").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location").as_deref(),
        Some("/login?next=%2Fauth%2Fcontinue%3Freq%3Dabc")
    );
    let cookie = sign_in(&t, "dr.a").await;
    let r = get_with(&t, "/auth/continue?req=abc", &cookie).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.text().contains("unknown or has expired"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
}

#[tokio::test]
async fn the_picker_lists_patients_with_select() {
    let t = TestApp::new().await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    let ids = [
        add_patient(&t, "Zeta", "Ann").await,
        add_patient(&t, "Alpha", "Bob").await,
        add_patient(&t, "Mid", "Cy").await,
    ];
    add_pending(
        &t,
        "req1",
        "launch/patient openid fhirUser patient/Observation.rs",
        true,
    )
    .await;
    let cookie = sign_in(&t, "dr.a").await;
    let html = get_with(&t, "/auth/continue?req=req1", &cookie)
        .await
        .text();
    assert_eq!(
        html.matches(r#"<button type="submit">Select</button>"#)
            .count(),
        3
    );
    for id in &ids {
        assert!(html.contains(&format!(r#"name="patient" value="{id}""#)));
    }
    let (a, m, z) = (
        html.find("Alpha, Bob").unwrap(),
        html.find("Mid, Cy").unwrap(),
        html.find("Zeta, Ann").unwrap(),
    );
    assert!(a < m && m < z, "sorted by family name");
    assert!(html.contains("1970-01-02") && html.contains("female"));
    assert!(
        !html.contains(">Allow<"),
        "no approval before a patient is picked"
    );
    // Name filter.
    let filtered = get_with(&t, "/auth/continue?req=req1&q=Alpha", &cookie)
        .await
        .text();
    assert_eq!(filtered.matches(">Select<").count(), 1);
    // Picking shows the approval page for that patient.
    let page = get_with(
        &t,
        &format!("/auth/continue?req=req1&patient={}", ids[1]),
        &cookie,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("Alpha, Bob") && html.contains(">Allow<"));
    assert!(
        html.contains("Read and search this patient&#39;s observations")
            || html.contains("Read and search this patient&#x27;s observations"),
        "{html}"
    );
}

#[tokio::test]
async fn a_patient_user_never_sees_the_picker() {
    let t = TestApp::new().await;
    let me = add_patient(&t, "Jones", "Pat").await;
    add_patient(&t, "Other", "Olga").await;
    add_user(&t, "pat", "patient", &format!("Patient/{me}")).await;
    add_pending(&t, "req1", "launch/patient patient/Observation.rs", true).await;
    let cookie = sign_in(&t, "pat").await;
    let r = get_with(&t, "/auth/continue?req=req1", &cookie).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(!html.contains(">Select<"));
    assert!(html.contains("Jones, Pat") && !html.contains("Other, Olga"));
    assert!(html.contains(&format!(r#"name="patient" value="{me}""#)));
    assert!(html.contains("Read and search your observations (labs, vitals…)"));
    // Allowing uses their own record whatever the form says.
    let csrf = csrf_of(&html);
    let r = post_form(
        &t,
        "/auth/continue",
        &cookie,
        &[
            ("csrf", &csrf),
            ("req", "req1"),
            ("patient", "someone-else"),
            ("item", "0"),
            ("item", "1"),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.header("location").unwrap();
    assert!(
        to.starts_with(&format!("{REDIRECT}?code=")) && to.ends_with("&state=st8"),
        "{to}"
    );
}

#[tokio::test]
async fn the_approval_page_explains_each_scope_and_answers_the_app() {
    let t = TestApp::new().await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    let pid = add_patient(&t, "Alpha", "Bob").await;
    let scope =
        "launch/patient openid fhirUser patient/Observation.rs patient/Condition.rs offline_access";
    add_pending(&t, "req1", scope, true).await;
    add_pending(&t, "req2", scope, true).await;
    let cookie = sign_in(&t, "dr.a").await;
    let r = get_with(
        &t,
        &format!("/auth/continue?req=req1&patient={pid}"),
        &cookie,
    )
    .await;
    let html = r.text();
    for words in [
        "Know who you are",
        "observations (labs, vitals…)",
        "conditions (problems, diagnoses)",
        "Stay connected when you are not using the app",
        "Only laboratory results",
        "Only vital signs",
        "Only the problem list",
        "Only encounter diagnoses",
        "Growth Chart",
        r#"<button type="submit" name="decision" value="allow">Allow</button>"#,
        r#"<button type="submit" name="decision" value="deny" class="secondary">Deny</button>"#,
    ] {
        assert!(html.contains(words), "missing {words}");
    }
    assert_eq!(
        html.matches(r#"type="checkbox""#).count(),
        5,
        "openid+fhirUser share one line"
    );
    assert_eq!(
        html.lines()
            .filter(|l| l.contains(r#"type="checkbox""#) && l.ends_with(" checked>"))
            .count(),
        5,
        "every line ticked by default"
    );
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example"),
        "{csp}"
    );
    // Allow with offline_access unticked and Observation narrowed.
    let csrf = csrf_of(&html);
    let pid_s = pid.as_str();
    let r = post_form(
        &t,
        "/auth/continue",
        &cookie,
        &[
            ("csrf", &csrf),
            ("req", "req1"),
            ("patient", pid_s),
            ("item", "0"),
            ("item", "1"),
            ("item", "2"),
            ("narrow-2", "laboratory"),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(r
        .header("location")
        .unwrap()
        .starts_with(&format!("{REDIRECT}?code=")));
    // The answered request cannot be answered again.
    let again = post_form(
        &t,
        "/auth/continue",
        &cookie,
        &[
            ("csrf", &csrf),
            ("req", "req1"),
            ("patient", pid_s),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(again.status, StatusCode::GONE);
    // A tampered narrowing is refused; Deny answers access_denied.
    let bad = post_form(
        &t,
        "/auth/continue",
        &cookie,
        &[
            ("csrf", &csrf),
            ("req", "req2"),
            ("patient", pid_s),
            ("item", "2"),
            ("narrow-2", "problem-list-item"),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let deny = post_form(
        &t,
        "/auth/continue",
        &cookie,
        &[("csrf", &csrf), ("req", "req2"), ("decision", "deny")],
    )
    .await;
    assert_eq!(deny.status, StatusCode::SEE_OTHER);
    let to = deny.header("location").unwrap();
    assert!(
        to.starts_with(&format!("{REDIRECT}?error=access_denied")) && to.contains("state=st8"),
        "{to}"
    );
}

#[tokio::test]
async fn the_launcher_is_for_clinicians_and_launches_apps_with_a_launch_url() {
    let t = TestApp::new().await;
    let pid = add_patient(&t, "Alpha", "Bob").await;
    add_user(&t, "pat", "patient", &format!("Patient/{pid}")).await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    add_client(
        &t,
        "app1",
        "Growth Chart",
        Some("https://app.example/launch"),
    )
    .await;
    add_client(&t, "app2", "Hidden Service", None).await;
    let enc = t.create(json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
        "subject": {"reference": format!("Patient/{pid}")}, "period": {"start": "2024-03-04T09:00:00Z"},
        "type": [{"text": "Office visit"}]})).await;
    // Strangers sign in first; patients are refused with a page.
    let r = t.get("/launcher").await;
    assert_eq!(
        r.header("location").as_deref(),
        Some("/login?next=%2Flauncher")
    );
    let pat = sign_in(&t, "pat").await;
    let r = get_with(&t, "/launcher", &pat).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text().contains("for clinicians"));
    // Clinician: picker, then encounter + app.
    let dr = sign_in(&t, "dr.a").await;
    let list = get_with(&t, "/launcher", &dr).await.text();
    assert!(list.contains("Alpha, Bob") && list.contains(">Select<"));
    let r = get_with(&t, &format!("/launcher?patient={pid}"), &dr).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains(r#"<label for="app">App</label>"#));
    assert!(html.contains(r#"<option value="app1">Growth Chart</option>"#));
    assert!(!html.contains("Hidden Service"));
    assert!(html.contains("2024-03-04 · Office visit"));
    assert!(html.contains(r#"<button type="submit">Launch</button>"#));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("https://app.example"));
    let csrf = csrf_of(&html);
    let r = post_form(
        &t,
        "/launcher",
        &dr,
        &[
            ("csrf", &csrf),
            ("patient", &pid),
            ("encounter", &enc),
            ("client_id", "app1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = r.header("location").unwrap();
    assert!(
        to.starts_with("https://app.example/launch?iss=http%3A%2F%2Ffhirgate.test%2Ffhir&launch="),
        "{to}"
    );
    // Apps without a launch URL, and foreign encounters, are refused.
    let r = post_form(
        &t,
        "/launcher",
        &dr,
        &[("csrf", &csrf), ("patient", &pid), ("client_id", "app2")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let other = add_patient(&t, "Other", "Olga").await;
    let r = post_form(
        &t,
        "/launcher",
        &dr,
        &[
            ("csrf", &csrf),
            ("patient", &other),
            ("encounter", &enc),
            ("client_id", "app1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A patient user posting directly is refused too.
    let r = post_form(
        &t,
        "/launcher",
        &pat,
        &[("patient", &pid), ("client_id", "app1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn landing_and_stylesheet_are_public() {
    let t = TestApp::new().await;
    let r = t.get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    for link in [
        "/launcher",
        "/login",
        "/fhir/metadata",
        "/fhir/.well-known/smart-configuration",
        "http://fhirgate.test/fhir",
    ] {
        assert!(html.contains(link), "{link}");
    }
    let css = t.get("/ui/static/fhirgate.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(
        css.header("content-type").as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        css.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[tokio::test]
async fn authorize_then_launcher_round_trip_through_the_oauth_endpoints() {
    let t = TestApp::new().await;
    let pid = add_patient(&t, "Alpha", "Bob").await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    add_client(
        &t,
        "app1",
        "Growth Chart",
        Some("https://app.example/launch"),
    )
    .await;
    let dr = sign_in(&t, "dr.a").await;
    // EHR launch from the launcher, then the app's authorize request.
    let page = get_with(&t, &format!("/launcher?patient={pid}"), &dr).await;
    let csrf = csrf_of(&page.text());
    let r = post_form(
        &t,
        "/launcher",
        &dr,
        &[("csrf", &csrf), ("patient", &pid), ("client_id", "app1")],
    )
    .await;
    let to = url::Url::parse(&r.header("location").unwrap()).unwrap();
    let launch = to
        .query_pairs()
        .find(|(k, _)| k == "launch")
        .unwrap()
        .1
        .into_owned();
    let authorize = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", "app1"),
            ("redirect_uri", REDIRECT),
            ("scope", "launch openid fhirUser patient/Observation.rs"),
            ("state", "s1"),
            ("aud", "http://fhirgate.test/fhir"),
            ("launch", &launch),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let r = get_with(&t, &format!("/auth/authorize?{authorize}"), &dr).await;
    let next = r.header("location").unwrap_or_default();
    assert!(
        next.starts_with("/auth/continue?req="),
        "{} {next}",
        r.status
    );
    // No picker: the launch carries the patient, shown on the approval page.
    let html = get_with(&t, &next, &dr).await.text();
    assert!(!html.contains(">Select<") && html.contains("Alpha, Bob") && html.contains(">Allow<"));
    let req = next.trim_start_matches("/auth/continue?req=");
    let r = post_form(
        &t,
        "/auth/continue",
        &dr,
        &[
            ("csrf", &csrf_of(&html)),
            ("req", req),
            ("item", "0"),
            ("item", "1"),
            ("item", "2"),
            ("narrow-2", "vital-signs"),
            ("decision", "allow"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(r
        .header("location")
        .unwrap()
        .starts_with(&format!("{REDIRECT}?code=")));
}

/// One password sign-in attempt through the form.
async fn try_sign_in(t: &TestApp, username: &str, password: &str) -> TestResponse {
    let form = t.get("/login").await;
    let pre = pair(&set_cookie(&form, "fhirgate_csrf").unwrap());
    let csrf = csrf_of(&form.text());
    post_form(
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
    .await
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_user_name_and_alerted() {
    let t = TestApp::with_config(
        "[limits]\nsignin_failure_limit = 3\nsignin_failure_window_seconds = 2\n",
    )
    .await;
    add_user(&t, "dr.a", "clinician", "Practitioner/p1").await;
    add_user(&t, "dr.b", "clinician", "Practitioner/p2").await;
    // a success clears earlier failures
    for _ in 0..2 {
        assert_eq!(
            try_sign_in(&t, "dr.a", "nope").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        try_sign_in(&t, "dr.a", "pw").await.status,
        StatusCode::SEE_OTHER
    );
    for _ in 0..3 {
        assert_eq!(
            try_sign_in(&t, "dr.a", "nope").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // the right password waits too, and so does the name in other case
    for name in ["dr.a", "DR.A"] {
        let r = try_sign_in(&t, name, "pw").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&wait), "Retry-After {wait}");
        assert!(
            r.text().contains("Too many failed sign-ins"),
            "{}",
            r.text()
        );
        assert!(set_cookie(&r, "fhirgate_session").is_none());
    }
    // another user is not affected
    assert_eq!(
        try_sign_in(&t, "dr.b", "pw").await.status,
        StatusCode::SEE_OTHER
    );
    // a name with no account is throttled the same way (no account oracle)
    for _ in 0..3 {
        assert_eq!(
            try_sign_in(&t, "nobody", "x").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        try_sign_in(&t, "nobody", "x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // each name reaching the limit is one alert on the ledger, without the name
    let r = t.get("/fhir/AuditEvent?_count=200").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let alerts = common::ledger::with_subtype(&r.json, "POST signin-brute-force");
    assert_eq!(alerts.len(), 2, "{}", r.text());
    assert!(!r.text().contains("dr.a") && !r.text().contains("nobody"));
    // once the window has passed, the right password works again
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        try_sign_in(&t, "dr.a", "pw").await.status,
        StatusCode::SEE_OTHER
    );
}
