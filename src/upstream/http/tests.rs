//! `HttpUpstream` over real sockets: small axum servers on port 0 playing a
//! broken upstream (garbage, 500, too slow), a recorder that shows what goes
//! on the wire, and an OAuth2 client-credentials token endpoint speaking the
//! RFC 6749 §4.4 shape Entra ID uses. (The full FHIR behavior is exercised
//! against a real engine, Medplum, in `conformance-tests/`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{Form, State},
    http::{HeaderMap, StatusCode, Uri},
    response::IntoResponse,
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};
use url::Url;

use super::{auth::Auth, HttpUpstream};
use crate::{
    config::{EntraConfig, UpstreamAuthKind, UpstreamConfig},
    fhir::{FhirRequest, Interaction, Prefer},
    upstream::{RequestContext, Upstream},
};

const FACADE: &str = "http://gw.test/fhir";

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn config(addr: SocketAddr) -> UpstreamConfig {
    UpstreamConfig {
        url: Some(Url::parse(&format!("http://{addr}/fhir/R4")).unwrap()),
        timeout_secs: 1,
        connect_timeout_secs: 1,
        pool_max_idle_per_host: 4,
        ..UpstreamConfig::default()
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        base: FACADE.into(),
        request_id: "req-1".into(),
        default_page_size: 50,
        max_page_size: 1000,
    }
}

fn read(id: &str) -> FhirRequest {
    let mut r = FhirRequest::new(Interaction::Read);
    r.resource_type = Some("Patient".into());
    r.id = Some(id.into());
    r
}

#[tokio::test]
async fn garbage_500_and_slow_upstreams_are_502_502_504() {
    let app = Router::new()
        .route(
            "/fhir/R4/Patient/garbage",
            get(|| async { "this is not json" }),
        )
        .route(
            "/fhir/R4/Patient/boom",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "java.lang.NullPointerException at 10.0.0.7",
                )
            }),
        )
        .route(
            "/fhir/R4/Patient/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Json(json!({"resourceType": "Patient", "id": "slow"}))
            }),
        );
    let addr = spawn(app).await;
    let up = HttpUpstream::new(&config(addr)).unwrap();
    for (id, want) in [("garbage", 502), ("boom", 502), ("slow", 504)] {
        let e = up.execute(&read(id), &ctx()).await.unwrap_err();
        assert_eq!(e.status.as_u16(), want, "{id}: {e}");
        let shown = e.outcome(Some("req-1")).to_string();
        assert!(
            !shown.contains(&addr.to_string()) && !shown.contains("10.0.0.7"),
            "{shown}"
        );
    }
    // Nobody listening: connection refused is 502.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let up = HttpUpstream::new(&config(closed)).unwrap();
    let e = up.execute(&read("x"), &ctx()).await.unwrap_err();
    assert_eq!(e.status.as_u16(), 502, "{e}");
}

/// What the recorder saw: method, path?query, headers.
type Seen = Arc<Mutex<Vec<(String, String, HeaderMap)>>>;

#[tokio::test]
async fn wire_requests_are_allowlisted_and_paging_links_round_trip() {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .fallback(|State(seen): State<Seen>, method: axum::http::Method, uri: Uri, headers: HeaderMap| async move {
            let pq = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
            let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
            seen.lock().unwrap().push((method.to_string(), pq, headers));
            let up = format!("http://{host}/fhir/R4");
            (
                [("content-type", "application/fhir+json"), ("content-location", "Patient?name=x")],
                Json(json!({
                    "resourceType": "Bundle", "type": "searchset", "total": 30,
                    "link": [
                        {"relation": "self", "url": format!("{up}/Patient?name=J%C3%B6rg&_count=10")},
                        {"relation": "next", "url": format!("{up}/Patient?name=J%C3%B6rg&_count=10&_offset=10")}
                    ],
                    "entry": [{"fullUrl": format!("{up}/Patient/1"),
                               "resource": {"resourceType": "Patient", "id": "1"}}]
                })),
            )
        })
        .with_state(seen.clone());
    let addr = spawn(app).await;
    let up = HttpUpstream::new(&config(addr)).unwrap();

    let mut search = FhirRequest::new(Interaction::SearchType);
    search.resource_type = Some("Patient".into());
    search.params = vec![
        ("name".into(), "Jörg".into()),
        ("_count".into(), "10".into()),
    ];
    search.prefer = Prefer::parse(["handling=lenient"]);
    let r = up.execute(&search, &ctx()).await.unwrap();
    let body = r.body.unwrap();
    let next = body["link"][1]["url"].as_str().unwrap().to_owned();
    assert_eq!(
        next,
        format!("{FACADE}/Patient?name=J%C3%B6rg&_count=10&_offset=10")
    );
    assert_eq!(body["entry"][0]["fullUrl"], format!("{FACADE}/Patient/1"));
    assert_eq!(
        r.content_location.as_deref(),
        Some("http://gw.test/fhir/Patient?name=x")
    );
    assert!(!body.to_string().contains(&addr.to_string()));

    // A client follows `next` through the facade: the same query reaches the upstream.
    let next = Url::parse(&next).unwrap();
    let mut follow = FhirRequest::new(Interaction::SearchType);
    follow.resource_type = Some("Patient".into());
    follow.params = next
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    up.execute(&follow, &ctx()).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "GET");
    assert_eq!(seen[0].1, "/fhir/R4/Patient?name=J%C3%B6rg&_count=10");
    assert_eq!(
        seen[1].1,
        "/fhir/R4/Patient?name=J%C3%B6rg&_count=10&_offset=10"
    );
    let h = &seen[0].2;
    assert_eq!(h["accept"], "application/fhir+json");
    assert_eq!(h["prefer"], "return=representation, handling=lenient");
    assert_eq!(h["x-request-id"], "req-1");
    assert!(h.get("authorization").is_none());
}

/// Token endpoint state: calls made and the last form seen.
#[derive(Default)]
struct TokenEndpoint {
    calls: AtomicUsize,
    last_form: Mutex<HashMap<String, String>>,
    last_content_type: Mutex<String>,
}

async fn token(
    State(s): State<Arc<TokenEndpoint>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
    *s.last_form.lock().unwrap() = form.clone();
    *s.last_content_type.lock().unwrap() = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // Widen the window in which concurrent callers could stampede.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body_creds = form.get("client_id").map(String::as_str) == Some("app-1")
        && form.get("client_secret").map(String::as_str) == Some("s3cret");
    let basic = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes().starts_with(b"Basic "));
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if !(body_creds || basic) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

#[tokio::test]
async fn entra_tokens_are_cached_shared_and_refreshed_before_expiry() {
    let endpoint = Arc::new(TokenEndpoint::default());
    let auths: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .route(
            "/tenant/oauth2/v2.0/token",
            post(token).with_state(endpoint.clone()),
        )
        .route(
            "/fhir/R4/Patient/{id}",
            get(
                |State(a): State<Arc<Mutex<Vec<String>>>>, h: HeaderMap| async move {
                    let v = h
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    a.lock().unwrap().push(v);
                    Json(json!({"resourceType": "Patient", "id": "1"}))
                },
            )
            .with_state(auths.clone()),
        );
    let addr = spawn(app).await;
    let entra = |secret: &str| UpstreamConfig {
        auth: UpstreamAuthKind::Entra,
        entra: Some(EntraConfig {
            token_url: Url::parse(&format!("http://{addr}/tenant/oauth2/v2.0/token")).unwrap(),
            client_id: "app-1".into(),
            client_secret: secret.into(),
            scope: "https://ws-fhir.fhir.azurehealthcareapis.com/.default".into(),
        }),
        ..config(addr)
    };
    let up = Arc::new(HttpUpstream::new(&entra("s3cret")).unwrap());

    // Eight concurrent first requests share one token request.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let up = up.clone();
            tokio::spawn(async move { up.execute(&read("1"), &ctx()).await.map(|r| r.status) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), StatusCode::OK);
    }
    up.execute(&read("1"), &ctx()).await.unwrap();
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
    assert!(auths.lock().unwrap().iter().all(|a| a == "Bearer tok-1"));

    // The wire shape of RFC 6749 §4.4 as Entra documents it.
    let form = endpoint.last_form.lock().unwrap().clone();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(
        form["scope"],
        "https://ws-fhir.fhir.azurehealthcareapis.com/.default"
    );
    assert_eq!(
        (form["client_id"].as_str(), form["client_secret"].as_str()),
        ("app-1", "s3cret")
    );
    assert!(endpoint
        .last_content_type
        .lock()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));

    // Still cached 50 minutes in; refreshed once within 5 minutes of expiry.
    let Auth::Entra(t) = &up.auth else {
        unreachable!("entra auth configured")
    };
    let now = Instant::now();
    assert_eq!(
        t.header_at(now + Duration::from_secs(3000)).await.unwrap(),
        "Bearer tok-1"
    );
    assert_eq!(
        t.header_at(now + Duration::from_secs(3400)).await.unwrap(),
        "Bearer tok-2"
    );
    assert_eq!(
        t.header_at(now + Duration::from_secs(3401)).await.unwrap(),
        "Bearer tok-2"
    );
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 2);
    // After the upstream rejects a token, the next request fetches a new one.
    up.auth.invalidate().await;
    up.execute(&read("1"), &ctx()).await.unwrap();
    assert_eq!(
        auths.lock().unwrap().last().map(String::as_str),
        Some("Bearer tok-3")
    );

    // A refused client secret is the facade's problem: 502, no secret in the answer.
    let bad = HttpUpstream::new(&entra("wrong")).unwrap();
    let e = bad.execute(&read("1"), &ctx()).await.unwrap_err();
    assert_eq!(e.status.as_u16(), 502);
    assert!(!e.outcome(None).to_string().contains("wrong"));
}

#[tokio::test]
async fn static_bearer_is_sent_and_client_errors_pass_through() {
    let app = Router::new().fallback(|h: HeaderMap| async move {
        let ok = h.get("authorization").is_some_and(|v| v == "Bearer static-1");
        let status = if ok { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::UNAUTHORIZED };
        let oo: Value = json!({"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invariant", "diagnostics": "name is required"}]});
        (status, Json(oo))
    });
    let addr = spawn(app).await;
    let cfg = UpstreamConfig {
        auth: UpstreamAuthKind::Bearer,
        bearer_token: Some("static-1".into()),
        ..config(addr)
    };
    let up = HttpUpstream::new(&cfg).unwrap();
    let e = up.execute(&read("1"), &ctx()).await.unwrap_err();
    assert_eq!(
        (e.status.as_u16(), e.message.as_str()),
        (422, "name is required")
    );
    let noauth = HttpUpstream::new(&config(addr)).unwrap();
    assert_eq!(
        noauth
            .execute(&read("1"), &ctx())
            .await
            .unwrap_err()
            .status
            .as_u16(),
        502
    );
}

#[test]
fn a_bundle_is_retried_only_when_every_entry_is_a_read() {
    let bundle = |entries: Value| {
        let mut r = FhirRequest::new(Interaction::BatchOrTransaction);
        r.body = Some(json!({"resourceType": "Bundle", "type": "batch", "entry": entries}));
        r
    };
    let get = |url: &str| json!({"request": {"method": "GET", "url": url}});
    assert!(super::idempotent(&bundle(json!([
        get("Patient/p1"),
        get("Observation?patient=p1"),
        {"request": {"method": "HEAD", "url": "Patient/p2"}}
    ]))));
    // a write among them, a GET that runs an operation, a malformed entry
    let post = json!({"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient"}});
    assert!(!super::idempotent(&bundle(json!([
        get("Patient/p1"),
        post
    ]))));
    assert!(!super::idempotent(&bundle(json!([
        get("Patient/p1"),
        get("$export")
    ]))));
    assert!(!super::idempotent(&bundle(
        json!([{"request": {"url": "Patient/p1"}}])
    )));
    assert!(!super::idempotent(&FhirRequest::new(
        Interaction::BatchOrTransaction
    )));
}
