//! Test harness: the whole app over a fresh temporary data dir, driven with
//! `oneshot` (no socket), as axum's testing example does. In replica mode
//! (`FHIRGATE_TEST_REPLICAS=2`, see [`replicas_wanted`]) it is two apps on
//! one fresh PostgreSQL database and one data dir, each request going to
//! the other one than the last; a suite that cannot run so opts out with
//! [`TestApp::single_replica`], saying why.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod forms;
pub mod ledger;
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
    /// Replica A's router (the only one outside replica mode).
    pub router: Router,
    /// Replica A's state: its state store, ledger and keys are every
    /// replica's (one PostgreSQL database, one data dir).
    pub app: AppState,
    pub dir: tempfile::TempDir,
    /// A `system/*.cruds` access token every helper request carries.
    pub token: String,
    /// Every replica, A first: more than one in replica mode
    /// ([`replicas_wanted`]), where each request goes to the next one.
    pub replicas: Vec<(Router, AppState)>,
    next: std::sync::atomic::AtomicUsize,
    /// Replica mode's fresh PostgreSQL database, dropped last.
    db: Option<std::sync::Arc<PgDb>>,
}

/// Replica mode: with `FHIRGATE_TEST_REPLICAS=N` (N >= 2) and
/// `FHIRGATE_TEST_DATABASE_URL` (the PostgreSQL scripts/test.sh starts),
/// every [`TestApp`] is N app instances (routers and `AppState`s) over one
/// fresh PostgreSQL database and one data dir (signing keys, the embedded
/// FHIR store's SQLite file, bulk files, as on a shared volume), and the
/// harness sends each request to the next replica (round-robin), so a flow
/// started on one finishes on another. `None`: one replica on SQLite.
pub fn replicas_wanted() -> Option<(usize, String)> {
    let n: usize = match std::env::var("FHIRGATE_TEST_REPLICAS") {
        Ok(n) => n
            .trim()
            .parse()
            .expect("FHIRGATE_TEST_REPLICAS is a number"),
        Err(_) => return None,
    };
    if n < 2 {
        return None;
    }
    let url = std::env::var("FHIRGATE_TEST_DATABASE_URL").expect(
        "FHIRGATE_TEST_REPLICAS needs FHIRGATE_TEST_DATABASE_URL (a PostgreSQL whose user may create databases)",
    );
    Some((n, url))
}

/// A database created for one [`TestApp`] on the PostgreSQL of
/// `FHIRGATE_TEST_DATABASE_URL`, dropped (even while in use) with it.
pub struct PgDb {
    admin: String,
    name: String,
    /// Its URL (what replicas get as `FHIRGATE_DATABASE_URL`).
    pub url: String,
}

impl PgDb {
    async fn create(admin: &str) -> Self {
        use sqlx::Connection;
        let name = format!("fhirgate_it_{}", uuid::Uuid::new_v4().simple());
        let (main, query) = match admin.split_once('?') {
            Some((m, q)) => (m, format!("?{q}")),
            None => (admin, String::new()),
        };
        let (prefix, _) = main.rsplit_once('/').expect("a database URL with a path");
        let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        Self {
            admin: admin.to_owned(),
            url: format!("{prefix}/{name}{query}"),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Dropped inside a test's runtime: the statement runs on a thread
        // of its own with its own runtime.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await?;
                c.close().await
            })
        })
        .join();
    }
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
        let db = match replicas_wanted() {
            Some((_, admin)) => Some(std::sync::Arc::new(PgDb::create(&admin).await)),
            None => None,
        };
        Self::open_in(dir, toml, db).await
    }

    /// An app over a fresh database of the test command's PostgreSQL
    /// (`FHIRGATE_TEST_DATABASE_URL`), for a suite's own PostgreSQL case.
    /// `None` (the test returns) when none is configured, unless
    /// `FHIRGATE_REQUIRE_POSTGRES` is set, which fails instead.
    pub async fn on_postgres(toml: &str) -> Option<Self> {
        let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("FHIRGATE_REQUIRE_POSTGRES").is_err(),
                "FHIRGATE_REQUIRE_POSTGRES is set but FHIRGATE_TEST_DATABASE_URL is not"
            );
            eprintln!("skipped: FHIRGATE_TEST_DATABASE_URL not set");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        copy_shared_keys(&dir.path().join("keys"));
        let db = std::sync::Arc::new(PgDb::create(&url).await);
        Some(Self::open_in(dir, toml, Some(db)).await)
    }

    /// One app on SQLite even in replica mode, for a suite that cannot run
    /// as replicas on PostgreSQL; `reason` (one line) says why.
    pub async fn single_replica(reason: &str, toml: &str) -> Self {
        if replicas_wanted().is_some() {
            eprintln!("single replica on SQLite: {reason}");
        }
        let dir = tempfile::tempdir().unwrap();
        copy_shared_keys(&dir.path().join("keys"));
        Self::open_in(dir, toml, None).await
    }

    /// Whether this app is several replicas (replica mode).
    pub fn is_replicated(&self) -> bool {
        self.replicas.len() > 1
    }

    /// The `FHIRGATE_*` variables a `fhirgate` command run on this app's
    /// data needs besides `FHIRGATE_DATA_DIR`: in replica mode, the
    /// PostgreSQL database (`FHIRGATE_DATABASE_URL`).
    pub fn cli_env(&self) -> Vec<(&'static str, String)> {
        self.db
            .iter()
            .map(|db| ("FHIRGATE_DATABASE_URL", db.url.clone()))
            .collect()
    }

    /// The same data (state store, keys) under another configuration, as an
    /// operator restarting with an edited config file.
    #[allow(dead_code)]
    pub async fn reopen_with_config(self, toml: &str) -> Self {
        let Self {
            dir,
            app,
            replicas,
            router,
            db,
            ..
        } = self;
        drop((app, router, replicas));
        Self::open_in(dir, toml, db).await
    }

    async fn open_in(dir: tempfile::TempDir, toml: &str, db: Option<std::sync::Arc<PgDb>>) -> Self {
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
        if let Some(db) = &db {
            env.push(("FHIRGATE_DATABASE_URL".to_owned(), db.url.clone()));
        }
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
        let n = match (&db, replicas_wanted()) {
            (Some(_), Some((n, _))) => n,
            _ => 1,
        };
        let mut replicas = Vec::with_capacity(n);
        for _ in 0..n {
            let (app, _) = AppState::open(config.clone()).await.unwrap();
            replicas.push((fhirgate::app(app.clone()), app));
        }
        let (router, app) = replicas[0].clone();
        let mut t = Self {
            router,
            app,
            dir,
            token: String::new(),
            replicas,
            next: std::sync::atomic::AtomicUsize::new(0),
            db,
        };
        t.token = t.token_for("system/*.cruds", None, None, None).await;
        t
    }

    /// Mints and records a user's access token carrying assurance
    /// (`amr`, and `auth_time` as `stepped_up_secs_ago` before now).
    pub async fn token_with_assurance(
        &self,
        scope: &str,
        fhir_user: &str,
        role: &str,
        amr: &[&str],
        stepped_up_secs_ago: i64,
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
            client_id: "app".into(),
            scope: scope.into(),
            patient: None,
            encounter: None,
            fhir_user: Some(fhir_user.into()),
            role: Some(role.into()),
            purpose_of_use: None,
            organization: None,
            acr: None,
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            auth_time: Some(now - stepped_up_secs_ago),
        };
        self.mint(&claims).await
    }

    /// Records `claims`' `jti` (so the token is live) and signs them.
    async fn mint(&self, claims: &smart_launch::token::AccessClaims) -> String {
        self.app
            .state
            .access_put(&claims.jti, &claims.client_id, None, claims.exp)
            .await
            .unwrap();
        smart_launch::token::mint_access(&self.app.keys, claims).unwrap()
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
            acr: None,
            amr: Vec::new(),
            auth_time: None,
        };
        self.mint(&claims).await
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
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.replicas.len();
        let res = self.replicas[i].0.clone().oneshot(req).await.unwrap();
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

    /// Stores `resources` with one transaction Bundle of PUTs (each at its
    /// `Type/id`) as the test client; anything but 200 fails the test.
    pub async fn load(&self, resources: Vec<Value>) {
        let entries: Vec<Value> = resources
            .into_iter()
            .map(|r| {
                let url = format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                );
                serde_json::json!({"resource": r, "request": {"method": "PUT", "url": url}})
            })
            .collect();
        let bundle =
            serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let r = self.post("/fhir", &bundle).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
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
