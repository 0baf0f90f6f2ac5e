//! Test harness: the whole app over a fresh temporary data dir, driven with
//! `oneshot` (no socket), as axum's testing example does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod forms;
pub mod logs;
pub mod tokens;

use axum::{
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
    Router,
};
use fhirgate::{config::Config, AppState};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Base every URL in answers is built on.
pub const BASE: &str = "http://fhirgate.test/fhir";

pub struct TestApp {
    pub router: Router,
    pub app: AppState,
    pub dir: tempfile::TempDir,
    /// A `system/*.cruds` access token every helper request carries.
    pub token: String,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub json: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl TestApp {
    /// A fresh app on the embedded store with no data.
    pub async fn new() -> Self {
        Self::with_config("").await
    }

    /// A fresh app with extra TOML configuration.
    pub async fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_shared_keys(&dir.path().join("keys"));
        Self::open_in(dir, toml).await
    }

    /// The same data (state store, keys) under another configuration, as an
    /// operator restarting with an edited config file.
    #[allow(dead_code)]
    pub async fn reopen_with_config(self, toml: &str) -> Self {
        let Self { dir, app, .. } = self;
        drop(app);
        Self::open_in(dir, toml).await
    }

    async fn open_in(dir: tempfile::TempDir, toml: &str) -> Self {
        let env = vec![
            (
                "FHIRGATE_DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            (
                "FHIRGATE_PUBLIC_URL".to_owned(),
                "http://fhirgate.test".to_owned(),
            ),
        ];
        let mut env = env;
        if !toml.contains("[demo]") {
            env.push(("FHIRGATE_DEMO".to_owned(), "0".to_owned()));
        }
        // Suites about FHIR semantics and scopes run their clients exempt
        // from consent (as trusted pipelines); consent suites configure
        // `[consent]` themselves.
        let toml = if toml.contains("[consent]") {
            toml.to_owned()
        } else {
            format!("{toml}\n[consent]\nexempt_clients = [\"test-client\", \"app\"]\n")
        };
        let config =
            Config::from_parts(&toml, std::path::Path::new("fhirgate.toml"), &env).unwrap();
        let (app, _) = AppState::open(config).await.unwrap();
        let mut t = Self {
            router: fhirgate::app(app.clone()),
            app,
            dir,
            token: String::new(),
        };
        t.token = t.token_for("system/*.cruds", None, None, None).await;
        t
    }

    /// Mints and records an access token for a named client, with an
    /// optional purpose of use.
    pub async fn token_as(
        &self,
        client_id: &str,
        scope: &str,
        patient: Option<&str>,
        fhir_user: Option<&str>,
        role: Option<&str>,
        purpose: Option<&str>,
    ) -> String {
        let base = self.app.config.fhir_base();
        let now = fhirgate::oauth::now();
        let jti = smart_launch::token::random_token(16);
        let claims = smart_launch::token::AccessClaims {
            iss: base.clone(),
            sub: "test".into(),
            aud: base,
            exp: now + 3600,
            iat: now,
            jti: jti.clone(),
            client_id: client_id.into(),
            scope: scope.into(),
            patient: patient.map(str::to_owned),
            encounter: None,
            fhir_user: fhir_user.map(str::to_owned),
            role: role.map(str::to_owned),
            purpose_of_use: purpose.map(str::to_owned),
            organization: None,
        };
        self.app
            .state
            .access_put(&jti, client_id, None, now + 3600)
            .await
            .unwrap();
        smart_launch::token::mint_access(&self.app.keys, &claims).unwrap()
    }

    /// A request with a given bearer token and extra headers.
    pub async fn request_with(
        &self,
        token: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> TestResponse {
        let bearer = format!("Bearer {token}");
        let mut all: Vec<(&str, &str)> = vec![("authorization", bearer.as_str())];
        if body.is_some() {
            all.push(("content-type", "application/fhir+json"));
        }
        all.extend_from_slice(headers);
        self.request_raw(
            method,
            path,
            &all,
            body.map(|b| serde_json::to_vec(b).unwrap()),
        )
        .await
    }

    /// Mints and records an access token as the token endpoint would.
    pub async fn token_for(
        &self,
        scope: &str,
        patient: Option<&str>,
        fhir_user: Option<&str>,
        role: Option<&str>,
    ) -> String {
        self.token_as("test-client", scope, patient, fhir_user, role, None)
            .await
    }

    /// A request carrying the test token (unless `headers` has its own Authorization).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> TestResponse {
        let bearer = format!("Bearer {}", self.token);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            all.push(("authorization", bearer.as_str()));
        }
        self.request_raw(method, path, &all, body).await
    }

    /// A request exactly as given (no token added).
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> TestResponse {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            json,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, &[], None).await
    }

    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut h = vec![("content-type", "application/fhir+json")];
        h.extend_from_slice(headers);
        self.request(method, path, &h, Some(serde_json::to_vec(body).unwrap()))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.send_json(Method::POST, path, body, &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> TestResponse {
        self.send_json(Method::PUT, path, body, &[]).await
    }

    pub async fn delete(&self, path: &str) -> TestResponse {
        self.request(Method::DELETE, path, &[], None).await
    }

    /// Creates a resource and returns its id.
    pub async fn create(&self, body: Value) -> String {
        let t = body["resourceType"].as_str().unwrap().to_owned();
        let r = self.post(&format!("/fhir/{t}"), &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json["id"].as_str().unwrap().to_owned()
    }
}

/// RSA key generation is slow in debug builds: generate one key set per test
/// binary and copy it into each fresh data dir.
fn copy_shared_keys(into: &std::path::Path) {
    static SHARED: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let src = SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        smart_launch::keys::KeySet::load_or_create(&dir).unwrap();
        dir
    });
    std::fs::create_dir_all(into).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), into.join(entry.file_name())).unwrap();
    }
}

/// Ids of the `match` entries of a searchset Bundle, in order.
pub fn match_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["search"]["mode"] != "outcome" && e["search"]["mode"] != "include")
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
