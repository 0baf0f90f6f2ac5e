//! The Azure Confidential Ledger anchor exporter against a local server that
//! speaks the data-plane wire protocol of `api-version=2022-05-13` (REST spec
//! `confidentialledger.json`: `CreateLedgerEntry`, `GetReceipt`) and the
//! Entra ID client-credentials token endpoint: every request's shape is
//! recorded and checked (path, query, bearer token, JSON body), the
//! transaction id comes back in `x-ms-ccf-transaction-id`, receipts are
//! polled through `Loading` to `Ready`, failures are retried, and nothing
//! but tree heads leaves the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Json, Router,
};
use common::TestApp;
use fhirgate::{
    audit::{
        anchor::{self, Anchor, Backoff, PassReport},
        Ledger, NewEntry,
    },
    config::AnchorConfig,
};
use serde_json::{json, Value};

const TOKEN: &str = "acl-access-token-1";
const SCOPE: &str = "https://confidential-ledger.azure.com/.default";

/// One request the fake ledger saw.
#[derive(Debug, Clone)]
struct Seen {
    method: &'static str,
    path: String,
    query: HashMap<String, String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Fake {
    seen: Vec<Seen>,
    token_forms: Vec<HashMap<String, String>>,
    /// Statuses to answer to the next POSTs before accepting one.
    post_failures: VecDeque<u16>,
    next_tx: u64,
    /// Receipt polls answered per transaction id.
    polls: HashMap<String, u32>,
    tokens_issued: u32,
}

type Shared = Arc<Mutex<Fake>>;

fn receipt_of(tx: &str) -> Value {
    // The shape of the spec's GetReceipt example (values are placeholders).
    json!({
        "leaf": format!("{:0>64}", tx.replace('.', "")),
        "nodeId": "682c161e1bc0aec694cac58a6ea456e1caa6c9c56d8dd873da9455c341947065",
        "proof": [{"left": "f847e5efe3965b0dacb5c15c666602807a11fdecd465d0976779eed27121ffa3"}],
        "root": "06fef62c80b6471c7005c1b114166fd1b0e077845f5ad544ad4eea4fb1d31f78",
        "signature": "MGQCMACklXqd0ge+gBS8WzewrwtwzRzSKy+bfrLZVx0YHmQvtsqs7dExYESsqrUrB8Zc"
    })
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn token(State(s): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Json<Value> {
    let mut f = s.lock().unwrap();
    f.token_forms.push(form);
    f.tokens_issued += 1;
    Json(json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}))
}

fn authorized(h: &HeaderMap) -> bool {
    header(h, "authorization").as_deref() == Some(&format!("Bearer {TOKEN}"))
}

async fn post_entry(
    State(s): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut f = s.lock().unwrap();
    f.seen.push(Seen {
        method: "POST",
        path: "/app/transactions".into(),
        query: query.clone(),
        authorization: header(&headers, "authorization"),
        content_type: header(&headers, "content-type"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    if let Some(status) = f.post_failures.pop_front() {
        let status = StatusCode::from_u16(status).unwrap();
        let err = json!({"error": {"code": "Failed", "message": "simulated"}});
        return (status, [("retry-after", "0")], Json(err)).into_response();
    }
    if !authorized(&headers) || query.get("api-version").map(String::as_str) != Some("2022-05-13") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    f.next_tx += 1;
    let tx = format!("2.{}", f.next_tx);
    let collection = query
        .get("collectionId")
        .cloned()
        .unwrap_or_else(|| "DEFAULT_SUBLEDGER".into());
    (
        StatusCode::OK,
        [("x-ms-ccf-transaction-id", tx)],
        Json(json!({ "collectionId": collection })),
    )
        .into_response()
}

async fn get_receipt(
    State(s): State<Shared>,
    Path(tx): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut f = s.lock().unwrap();
    f.seen.push(Seen {
        method: "GET",
        path: format!("/app/transactions/{tx}/receipt"),
        query,
        authorization: header(&headers, "authorization"),
        content_type: None,
        body: Value::Null,
    });
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let n = f.polls.entry(tx.clone()).or_default();
    *n += 1;
    if *n == 1 {
        return Json(json!({"state": "Loading", "transactionId": tx})).into_response();
    }
    Json(json!({"state": "Ready", "receipt": receipt_of(&tx), "transactionId": tx})).into_response()
}

/// Starts the fake ledger and token endpoint; returns its base URL.
async fn fake_ledger() -> (String, Shared) {
    let shared: Shared = Arc::default();
    let app = Router::new()
        .route("/tenant/oauth2/v2.0/token", post(token))
        .route("/app/transactions", post(post_entry))
        .route("/app/transactions/{tx}/receipt", get(get_receipt))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://127.0.0.1:{}", addr.port()), shared)
}

fn config(base: &str, poll_secs: u64) -> AnchorConfig {
    AnchorConfig {
        ledger_url: format!("{base}/").parse().unwrap(),
        collection_id: Some("fhirgate-checkpoints".into()),
        api_version: "2022-05-13".into(),
        token_url: format!("{base}/tenant/oauth2/v2.0/token").parse().unwrap(),
        client_id: "anchor-client".into(),
        client_secret: "anchor-secret".into(),
        scope: SCOPE.into(),
        poll_secs,
    }
}

fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        tries: 4,
    }
}

async fn append(ledger: &Ledger, n: usize, tag: &str) {
    let batch: Vec<NewEntry> = (0..n)
        .map(|i| NewEntry {
            request_id: Some(format!("req-{tag}-{i}")),
            entry: json!({"patient": format!("pseudonym-{tag}-{i}"), "type": "read"}),
        })
        .collect();
    ledger.append(&batch).await.unwrap();
}

#[tokio::test]
async fn checkpoints_are_posted_with_the_published_request_shape_and_receipts_kept() {
    let t = TestApp::new().await;
    let ledger = Ledger::new(t.app.state.clone());
    append(&ledger, 5, "a").await;
    let c5 = ledger.checkpoint(&t.app.keys).await.unwrap();
    append(&ledger, 4, "b").await;
    let c9 = ledger.checkpoint(&t.app.keys).await.unwrap();
    let (base, fake) = fake_ledger().await;
    fake.lock().unwrap().post_failures.push_back(503);

    let exporter = Anchor::new(&config(&base, 1), ledger.clone())
        .unwrap()
        .with_backoff(fast());
    let report = exporter.run_once().await.unwrap();
    assert_eq!(
        report,
        PassReport {
            posted: 2,
            receipts: 2,
            failed: 0
        }
    );

    {
        let f = fake.lock().unwrap();
        // One client-credentials token request, cached for every call after it.
        assert_eq!(f.token_forms.len(), 1);
        let form = &f.token_forms[0];
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_id"], "anchor-client");
        assert_eq!(form["client_secret"], "anchor-secret");
        assert_eq!(form["scope"], SCOPE);

        let posts: Vec<&Seen> = f.seen.iter().filter(|s| s.method == "POST").collect();
        assert_eq!(posts.len(), 3, "one 503, retried, then two accepted");
        let mut previous: Option<(i64, String)> = None;
        for (i, p) in posts.iter().enumerate() {
            assert_eq!(p.path, "/app/transactions");
            assert_eq!(p.query.len(), 2, "{:?}", p.query);
            assert_eq!(p.query["api-version"], "2022-05-13");
            assert_eq!(p.query["collectionId"], "fhirgate-checkpoints");
            assert_eq!(
                p.authorization.as_deref(),
                Some(&*format!("Bearer {TOKEN}"))
            );
            assert!(p
                .content_type
                .as_deref()
                .unwrap()
                .starts_with("application/json"));
            let body = p.body.as_object().unwrap();
            assert_eq!(
                body.keys().collect::<Vec<_>>(),
                ["contents"],
                "LedgerEntry has only `contents`"
            );
            let contents = body["contents"].as_str().unwrap();
            let head: Value = serde_json::from_str(contents).unwrap();
            let keys: Vec<&String> = head.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                [
                    "previous_root_hash",
                    "previous_tree_size",
                    "root_hash",
                    "time",
                    "tree_size"
                ],
                "canonical (sorted keys) and nothing else"
            );
            assert!(
                !contents.contains(' ')
                    && !contents.contains("req-")
                    && !contents.contains("pseudonym")
            );
            let expected = if i < 2 { &c5 } else { &c9 };
            assert_eq!(head["tree_size"], expected.tree_size);
            assert_eq!(head["root_hash"], expected.root_hash.as_str());
            assert_eq!(head["time"], expected.created_at);
            if i == 2 {
                let (size, root) = previous.clone().unwrap();
                assert_eq!(head["previous_tree_size"], size);
                assert_eq!(head["previous_root_hash"], root.as_str());
            } else {
                assert!(
                    head["previous_tree_size"].is_null() && head["previous_root_hash"].is_null()
                );
            }
            previous = Some((expected.tree_size, expected.root_hash.clone()));
        }

        let gets: Vec<&Seen> = f.seen.iter().filter(|s| s.method == "GET").collect();
        let paths: Vec<&str> = gets.iter().map(|g| g.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/app/transactions/2.1/receipt",
                "/app/transactions/2.1/receipt",
                "/app/transactions/2.2/receipt",
                "/app/transactions/2.2/receipt"
            ],
            "each receipt polled through Loading to Ready"
        );
        for g in &gets {
            assert_eq!(g.query.len(), 1);
            assert_eq!(g.query["api-version"], "2022-05-13");
            assert_eq!(
                g.authorization.as_deref(),
                Some(&*format!("Bearer {TOKEN}"))
            );
        }
    }

    // Stored: the transaction ids and receipts, beside their checkpoints.
    let rows = anchor::records(&ledger).await.unwrap();
    assert_eq!(rows.len(), 2);
    for (row, (tx, cp)) in rows.iter().zip([("2.1", &c5), ("2.2", &c9)]) {
        assert_eq!(row.tree_size, cp.tree_size);
        assert_eq!(row.root_hash, cp.root_hash);
        assert_eq!(row.transaction_id.as_deref(), Some(tx));
        assert_eq!(row.collection_id.as_deref(), Some("fhirgate-checkpoints"));
        let receipt: Value = serde_json::from_str(row.receipt.as_deref().unwrap()).unwrap();
        assert_eq!(receipt, receipt_of(tx));
        assert_eq!(row.last_error, None);
    }

    // A second pass has nothing to do.
    let before = fake.lock().unwrap().seen.len();
    assert_eq!(exporter.run_once().await.unwrap(), PassReport::default());
    assert_eq!(fake.lock().unwrap().seen.len(), before);

    // The admin API shows each checkpoint's anchor.
    let token = t.token_for("system/AuditEvent.rs", None, None, None).await;
    let r = t
        .request_raw(
            axum::http::Method::GET,
            "/admin/api/ledger/checkpoints",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = r.json["checkpoints"].as_array().unwrap();
    assert_eq!(list[0]["anchor"]["transaction_id"], "2.1");
    assert_eq!(list[1]["anchor"]["transaction_id"], "2.2");
    assert_eq!(list[1]["anchor"]["receipt"], receipt_of("2.2"));
}

#[tokio::test]
async fn failures_are_recorded_backed_off_and_retried_on_a_later_pass() {
    let t = TestApp::new().await;
    let ledger = Ledger::new(t.app.state.clone());
    append(&ledger, 3, "x").await;
    ledger.checkpoint(&t.app.keys).await.unwrap();
    let (base, fake) = fake_ledger().await;
    let exporter = Anchor::new(&config(&base, 1), ledger.clone())
        .unwrap()
        .with_backoff(fast());

    // A refusal that retrying cannot fix: given up for this pass, recorded.
    fake.lock().unwrap().post_failures.push_back(403);
    let report = exporter.run_once().await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(report.posted, 0);
    let row = &anchor::records(&ledger).await.unwrap()[0];
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error.as_deref().unwrap().contains("403"),
        "{row:?}"
    );
    assert_eq!(row.transaction_id, None);
    assert_eq!(
        fake.lock().unwrap().seen.len(),
        1,
        "a 403 is not retried within the pass"
    );

    // Backed off: the next pass right away leaves it alone.
    assert_eq!(exporter.run_once().await.unwrap(), PassReport::default());
    assert_eq!(fake.lock().unwrap().seen.len(), 1);

    // After the backoff (poll_secs = 1), a 401 makes it fetch a new token
    // and try again at once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fake.lock().unwrap().post_failures.push_back(401);
    let report = exporter.run_once().await.unwrap();
    assert_eq!((report.posted, report.receipts, report.failed), (1, 1, 0));
    assert_eq!(fake.lock().unwrap().tokens_issued, 2);
    let row = &anchor::records(&ledger).await.unwrap()[0];
    assert_eq!(row.transaction_id.as_deref(), Some("2.1"));
    assert!(row.receipt.is_some() && row.last_error.is_none());
}

#[tokio::test]
async fn an_unreachable_ledger_fails_the_pass_quietly() {
    let t = TestApp::new().await;
    let ledger = Ledger::new(t.app.state.clone());
    append(&ledger, 2, "y").await;
    ledger.checkpoint(&t.app.keys).await.unwrap();
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = Anchor::new(
        &config(&format!("http://127.0.0.1:{port}"), 1),
        ledger.clone(),
    )
    .unwrap()
    .with_backoff(fast());
    let report = exporter.run_once().await.unwrap();
    assert_eq!((report.posted, report.failed), (0, 1));
    let row = &anchor::records(&ledger).await.unwrap()[0];
    assert!(
        row.last_error.as_deref().unwrap().contains("token"),
        "{row:?}"
    );
    // The ledger itself is untouched and still verifies.
    assert!(ledger.verify(&t.app.keys).await.unwrap().ok());
}

#[test]
fn bad_anchor_settings_name_their_key() {
    let mut c = config("https://ledger.example", 10);
    assert!(c.validate().is_ok());
    c.ledger_url = "http://ledger.example".parse().unwrap();
    assert_eq!(c.validate().unwrap_err().0, "audit.anchor.ledger_url");
    c = config("https://ledger.example", 10);
    c.client_secret = " ".into();
    assert_eq!(c.validate().unwrap_err().0, "audit.anchor.client_secret");
    c = config("https://ledger.example", 0);
    assert_eq!(c.validate().unwrap_err().0, "audit.anchor.poll_secs");
}

#[test]
fn the_anchor_section_reads_from_toml_with_the_secret_from_the_environment() {
    use fhirgate::config::Config;
    let toml = r#"
[audit.anchor]
ledger_url = "https://myledger.confidential-ledger.azure.com"
collection_id = "fhirgate"
token_url = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
client_id = "app-id"
"#;
    let env = vec![(
        "FHIRGATE_ANCHOR_CLIENT_SECRET".to_owned(),
        "s3cret".to_owned(),
    )];
    let c = Config::from_parts(toml, std::path::Path::new("fhirgate.toml"), &env).unwrap();
    let a = c.audit.anchor.unwrap();
    assert_eq!(a.client_secret, "s3cret");
    assert_eq!(a.api_version, "2022-05-13");
    assert_eq!(a.scope, SCOPE);
    assert_eq!(a.poll_secs, 10);
    assert!(Config::from_parts("", std::path::Path::new("x"), &[])
        .unwrap()
        .audit
        .anchor
        .is_none());
    // No default secret: a missing one stops start-up naming the key.
    let e = Config::from_parts(toml, std::path::Path::new("fhirgate.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("client_secret"), "{e}");
    let e = Config::from_parts(
        &toml.replace("https://myledger", "http://myledger"),
        std::path::Path::new("fhirgate.toml"),
        &env,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("audit.anchor.ledger_url"), "{e}");
}

/// The same exporter on PostgreSQL (the test command's database, a fresh
/// schema), with two exporters racing as two replicas would: each
/// checkpoint is posted once.
#[tokio::test]
async fn replicas_on_postgres_post_each_checkpoint_once() {
    let Ok(url) = std::env::var("FHIRGATE_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("FHIRGATE_REQUIRE_POSTGRES").is_err(),
            "FHIRGATE_REQUIRE_POSTGRES is set but FHIRGATE_TEST_DATABASE_URL is not"
        );
        eprintln!("skipped: FHIRGATE_TEST_DATABASE_URL not set");
        return;
    };
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let schema = format!("anchor_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = fhirgate::state::StateStore::open(Some(&scoped), std::path::Path::new("."))
        .await
        .unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = smart_launch::keys::KeySet::load_or_create(keys_dir.path()).unwrap();
    let ledger = Ledger::new(store);
    for n in [3, 4, 5] {
        append(&ledger, n, &n.to_string()).await;
        ledger.checkpoint(&keys).await.unwrap();
    }
    let (base, fake) = fake_ledger().await;
    let one = Anchor::new(&config(&base, 1), ledger.clone())
        .unwrap()
        .with_backoff(fast());
    let two = Anchor::new(&config(&base, 1), ledger.clone())
        .unwrap()
        .with_backoff(fast());
    let (r1, r2) = tokio::join!(one.run_once(), two.run_once());
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.posted + r2.posted, 3, "{r1:?} {r2:?}");
    assert_eq!(r1.receipts + r2.receipts, 3);
    let posts = fake
        .lock()
        .unwrap()
        .seen
        .iter()
        .filter(|s| s.method == "POST")
        .count();
    assert_eq!(posts, 3, "no checkpoint posted twice");
    let rows = anchor::records(&ledger).await.unwrap();
    let sizes: Vec<i64> = rows.iter().map(|r| r.tree_size).collect();
    assert_eq!(sizes, [3, 7, 12]);
    assert_eq!(rows[2].previous_tree_size, Some(7));
    assert!(rows
        .iter()
        .all(|r| r.transaction_id.is_some() && r.receipt.is_some()));
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
}

/// `fhirgate serve` with `[audit.anchor]` posts the checkpoints its own
/// requests produce, in the background, to the configured ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_anchors_its_checkpoints() {
    let (base, fake) = fake_ledger().await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("fhirgate.toml");
    std::fs::write(
        &config,
        format!(
            "[audit]\ncheckpoint_seconds = 1\n\n[audit.anchor]\nledger_url = \"{base}\"\n\
             token_url = \"{base}/tenant/oauth2/v2.0/token\"\nclient_id = \"anchor-client\"\n\
             poll_secs = 1\n"
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fhirgate"))
        .arg("serve")
        .env_clear()
        .env("FHIRGATE_CONFIG", &config)
        .env("FHIRGATE_DATA_DIR", dir.path().join("data"))
        .env("FHIRGATE_DEMO", "0")
        .env("FHIRGATE_LOG_LEVEL", "warn")
        .env("FHIRGATE_ANCHOR_CLIENT_SECRET", "anchor-secret")
        .env("FHIRGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("FHIRGATE_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/fhir/Patient");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut posted = None;
    while std::time::Instant::now() < deadline && posted.is_none() {
        // Any request is audited (this one is refused: no token).
        let _ = http.get(&url).send().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let f = fake.lock().unwrap();
        posted = f
            .seen
            .iter()
            .find(|s| s.method == "POST")
            .map(|s| s.body["contents"].as_str().unwrap().to_owned());
    }
    let _ = child.kill();
    let _ = child.wait();
    let contents = posted.expect("serve posted a checkpoint to the ledger");
    let head: Value = serde_json::from_str(&contents).unwrap();
    assert!(head["tree_size"].as_u64().unwrap() >= 1, "{head}");
    assert_eq!(head["root_hash"].as_str().unwrap().len(), 64);
    assert_eq!(
        fake.lock().unwrap().token_forms[0]["client_secret"],
        "anchor-secret"
    );
}
