//! OpenTelemetry traces over OTLP/HTTP (`observability::otel`), in
//! process: a local collector on 127.0.0.1 takes `POST /v1/traces` and
//! decodes the protobuf with `opentelemetry-proto`'s generated types (an
//! independent decoder of the wire format); a fake HTTP upstream records
//! the `traceparent` it is sent. The facade runs under the subscriber
//! `serve` installs (`http::logging::dispatch`), scoped to the test.
//!
//! Proves: one trace per request; the server span with the route template
//! and status; the stage spans (authenticate, authorize, consent, upstream,
//! filter, ledger.append) under it; the upstream client span whose context
//! reached the upstream as `traceparent`; an incoming `traceparent`
//! continued; no PHI anywhere in the exported bytes; nothing exported
//! without an endpoint; and `serve` flushing the queue on graceful
//! shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use common::TestApp;
use fhirgate::observability::otel::{self, Otel};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value, KeyValue},
    trace::v1::{span::SpanKind, Span},
};
use prost::Message;
use serde_json::json;

/// A patient id and a query value: PHI that must never be exported.
const PATIENT: &str = "phi-pat-4711";
const SECRET_QUERY: &str = "Secretname";
/// An incoming W3C trace context.
const INCOMING_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const INCOMING_PARENT: &str = "00f067aa0ba902b7";

/// One POST the collector received: content type and body.
type Post = (String, Vec<u8>);

/// What the local collector received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Post>>>);

impl Collector {
    fn bodies(&self) -> Vec<Post> {
        self.0.lock().unwrap().clone()
    }

    /// Every span received, decoded.
    fn spans(&self) -> Vec<Span> {
        let mut out = Vec::new();
        for (_, body) in self.bodies() {
            let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            for rs in req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|r| attr(&r.attributes, "service.name"));
                assert_eq!(service.as_deref(), Some("fhirgate"));
                for ss in rs.scope_spans {
                    out.extend(ss.spans);
                }
            }
        }
        out
    }
}

async fn collect(
    State(c): State<Collector>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    c.0.lock().unwrap().push((ct, body.to_vec()));
    // An empty ExportTraceServiceResponse.
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        Vec::<u8>::new(),
    )
        .into_response()
}

async fn collector() -> (Collector, SocketAddr) {
    let c = Collector::default();
    let app = Router::new()
        .route("/v1/traces", post(collect))
        .with_state(c.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (c, addr)
}

/// The `traceparent` headers the fake upstream was sent.
#[derive(Clone, Default)]
struct Upstream(Arc<Mutex<Vec<String>>>);

async fn answer(State(u): State<Upstream>, req: Request) -> Response {
    let tp = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_owned();
    u.0.lock().unwrap().push(tp);
    let path = req.uri().path().to_owned();
    let id = path.rsplit('/').next().unwrap_or_default().to_owned();
    let patient = json!({"resourceType": "Patient", "id": PATIENT, "meta": {"versionId": "1"}});
    let body = if id == "Patient" {
        json!({"resourceType": "Bundle", "type": "searchset", "total": 1,
               "entry": [{"resource": patient, "search": {"mode": "match"}}]})
    } else {
        patient
    };
    (
        StatusCode::OK,
        [("content-type", "application/fhir+json")],
        body.to_string(),
    )
        .into_response()
}

async fn fake_upstream() -> (Upstream, SocketAddr) {
    let u = Upstream::default();
    let app = Router::new().fallback(answer).with_state(u.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (u, addr)
}

/// The facade over the fake upstream, exporting to `collector` (or not).
async fn facade(upstream: SocketAddr, collector: Option<SocketAddr>, more: &str) -> TestApp {
    let otlp = collector
        .map(|c| format!("[observability]\notlp_endpoint = \"http://{c}\"\n"))
        .unwrap_or_default();
    TestApp::with_config(&format!(
        "[upstream]\nurl = \"http://{upstream}/fhir\"\ntimeout_secs = 5\n{otlp}{more}"
    ))
    .await
}

/// The subscriber `serve` installs (log lines to a sink), as a
/// dispatcher for this test's thread.
fn dispatch(t: &TestApp, otel: Option<&Otel>) -> tracing::Dispatch {
    fhirgate::http::logging::dispatch(&t.app.config.log, otel, std::io::sink).unwrap()
}

/// Log lines written by a subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Other tests' threads register call sites with no subscriber; a second
/// live dispatcher makes tracing-core consult every registered one when it
/// rebuilds the global max level (as tests/observability.rs does).
fn keep_levels() -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish(),
    )
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match v.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        any_value::Value::DoubleValue(d) => Some(d.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The spans of one trace, by trace id.
fn traces(spans: &[Span]) -> BTreeMap<String, Vec<Span>> {
    let mut by: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for s in spans {
        by.entry(hex(&s.trace_id)).or_default().push(s.clone());
    }
    by
}

fn server_span_of<'a>(spans: &'a [Span], request_id: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| {
            s.kind == SpanKind::Server as i32
                && attr(&s.attributes, "request_id").as_deref() == Some(request_id)
        })
        .unwrap_or_else(|| panic!("no server span for request {request_id}: {spans:#?}"))
}

/// Whether `span` descends from `ancestor` within `trace`.
fn descends(trace: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..32 {
        if parent == ancestor.span_id {
            return true;
        }
        match trace.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

fn names(trace: &[Span]) -> BTreeSet<String> {
    trace.iter().map(|s| s.name.clone()).collect()
}

#[tokio::test]
async fn requests_become_traces_with_stage_and_upstream_spans_and_no_phi() {
    let (collector, caddr) = collector().await;
    let (upstream, uaddr) = fake_upstream().await;
    let t = facade(uaddr, Some(caddr), "").await;
    let otel = Otel::start(&t.app.config.observability).unwrap().unwrap();
    let _levels = keep_levels();
    let logs = Captured::default();
    let writer = logs.clone();
    let guard = tracing::dispatcher::set_default(
        &fhirgate::http::logging::dispatch(&t.app.config.log, Some(&otel), move || writer.clone())
            .unwrap(),
    );

    // an exempt client (scopes, upstream, post-filter) reads and searches
    let read = t.get(&format!("/fhir/Patient/{PATIENT}")).await;
    assert_eq!(read.status, 200, "{}", read.text());
    let search = t
        .get(&format!("/fhir/Patient?_id={PATIENT}&name={SECRET_QUERY}"))
        .await;
    assert_eq!(search.status, 200, "{}", search.text());
    // a client judged by consent, continuing the caller's trace
    let token = t
        .token_as("consent-app", "system/Patient.rs", None, None, None, None)
        .await;
    let traceparent = format!("00-{INCOMING_TRACE}-{INCOMING_PARENT}-01");
    let judged = t
        .request_with(
            &token,
            Method::GET,
            &format!("/fhir/Patient/{PATIENT}"),
            &[("traceparent", traceparent.as_str())],
            None,
        )
        .await;
    // a request that never reaches the pipeline (no token)
    let refused = t
        .request_raw(Method::GET, &format!("/fhir/Patient/{PATIENT}"), &[], None)
        .await;
    assert_eq!(refused.status, 401);

    otel.flush().await;
    drop(guard);
    otel.shutdown().await;

    // the log lines are as without traces: the request span with the
    // request id, none of the trace spans or their fields
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let rid = read.header("x-request-id").unwrap();
    let access: serde_json::Value = logs
        .lines()
        .filter(|l| l.contains(&rid))
        .find(|l| l.contains("\"route\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no access line for {rid}:\n{logs}"));
    assert_eq!(access["span"]["name"], "request");
    assert_eq!(access["span"]["request_id"], rid.as_str());
    for hidden in ["http.server", "otel.kind", "fhirgate.stage", "http.route"] {
        assert!(!logs.contains(hidden), "{hidden} in the logs:\n{logs}");
    }

    let bodies = collector.bodies();
    assert!(!bodies.is_empty(), "nothing exported");
    for (ct, body) in &bodies {
        assert_eq!(ct, "application/x-protobuf");
        // no PHI anywhere in the exported bytes: ids, query, token
        for phi in [PATIENT, SECRET_QUERY, t.token.as_str(), token.as_str()] {
            assert!(
                !body.windows(phi.len()).any(|w| w == phi.as_bytes()),
                "{phi} exported"
            );
        }
        assert!(!String::from_utf8_lossy(body).contains("_id="));
    }
    let spans = collector.spans();
    let by_trace = traces(&spans);
    // one trace per request: four requests, four traces, one server span each
    assert_eq!(by_trace.len(), 4, "{:#?}", by_trace.keys());
    for trace in by_trace.values() {
        let servers = trace
            .iter()
            .filter(|s| s.kind == SpanKind::Server as i32)
            .count();
        assert_eq!(servers, 1, "{trace:#?}");
    }
    let sent: Vec<String> = upstream.0.lock().unwrap().clone();

    // the read: server span, stages, client span, traceparent to the upstream
    let rid = read.header("x-request-id").unwrap();
    let server = server_span_of(&spans, &rid);
    assert_eq!(server.name, "GET /fhir/{type}/{id}");
    assert_eq!(
        attr(&server.attributes, "http.route").unwrap(),
        "/fhir/{type}/{id}"
    );
    assert_eq!(
        attr(&server.attributes, "http.request.method").unwrap(),
        "GET"
    );
    assert_eq!(
        attr(&server.attributes, "http.response.status_code").unwrap(),
        "200"
    );
    assert!(server.parent_span_id.is_empty(), "a new trace is a root");
    let trace = &by_trace[&hex(&server.trace_id)];
    let got = names(trace);
    for stage in [
        "authenticate",
        "authorize",
        "upstream",
        "filter",
        "ledger.append",
        "GET",
    ] {
        assert!(got.contains(stage), "no {stage} span in {got:?}");
    }
    for s in trace.iter().filter(|s| s.span_id != server.span_id) {
        assert!(
            descends(trace, s, server),
            "{} is not under the server span",
            s.name
        );
    }
    let client = trace
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .expect("client span");
    assert_eq!(client.name, "GET");
    assert_eq!(
        attr(&client.attributes, "http.response.status_code").unwrap(),
        "200"
    );
    assert_eq!(
        attr(&client.attributes, "fhir.interaction").unwrap(),
        "read"
    );
    assert_eq!(
        attr(&client.attributes, "server.address").unwrap(),
        "127.0.0.1"
    );
    let stage_upstream = trace.iter().find(|s| s.name == "upstream").unwrap();
    assert_eq!(client.parent_span_id, stage_upstream.span_id);
    let want = format!("00-{}-{}-01", hex(&client.trace_id), hex(&client.span_id));
    assert!(sent.contains(&want), "upstream got {sent:?}, want {want}");

    // the search: its own trace, its template, no query anywhere
    let sid = search.header("x-request-id").unwrap();
    let server = server_span_of(&spans, &sid);
    assert_eq!(server.name, "GET /fhir/{type}");
    let trace = &by_trace[&hex(&server.trace_id)];
    let client = trace
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    assert_eq!(
        attr(&client.attributes, "fhir.interaction").unwrap(),
        "search-type"
    );

    // the consent-judged read continued the incoming trace
    let jid = judged.header("x-request-id").unwrap();
    let server = server_span_of(&spans, &jid);
    assert_eq!(hex(&server.trace_id), INCOMING_TRACE);
    assert_eq!(hex(&server.parent_span_id), INCOMING_PARENT);
    let trace = &by_trace[INCOMING_TRACE];
    let got = names(trace);
    for stage in [
        "authenticate",
        "authorize",
        "consent",
        "upstream",
        "GET",
        "ledger.append",
    ] {
        assert!(got.contains(stage), "no {stage} span in {got:?}");
    }
    let client = trace
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    let want = format!("00-{INCOMING_TRACE}-{}-01", hex(&client.span_id));
    assert!(sent.contains(&want), "upstream got {sent:?}, want {want}");
    let consent = trace.iter().find(|s| s.name == "consent").unwrap();
    assert!(
        descends(trace, client, consent),
        "the upstream call runs in the consent stage"
    );

    // the refused request: server span 401, authenticate failed, no upstream
    let fid = refused.header("x-request-id").unwrap();
    let server = server_span_of(&spans, &fid);
    assert_eq!(
        attr(&server.attributes, "http.response.status_code").unwrap(),
        "401"
    );
    let got = names(&by_trace[&hex(&server.trace_id)]);
    assert!(
        got.contains("authenticate") && !got.contains("upstream"),
        "{got:?}"
    );
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_spans_are_off() {
    let (collector, _caddr) = collector().await;
    let (upstream, uaddr) = fake_upstream().await;
    let t = facade(uaddr, None, "").await;
    assert!(t.app.config.observability.otlp_endpoint().is_none());
    assert!(Otel::start(&t.app.config.observability).unwrap().is_none());
    let _levels = keep_levels();
    let _guard = tracing::dispatcher::set_default(&dispatch(&t, None));
    // the trace spans are disabled at their call sites
    assert!(otel::server_span("GET", "r").is_disabled());
    assert!(otel::stage("authenticate").is_disabled());
    let r = t
        .request(
            Method::GET,
            &format!("/fhir/Patient/{PATIENT}"),
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(collector.bodies().is_empty());
    // no trace context is made up or forwarded to the upstream
    assert_eq!(upstream.0.lock().unwrap().as_slice(), ["(none)"]);
}

#[test]
fn the_endpoint_comes_from_the_environment_and_is_checked() {
    use fhirgate::config::Config;
    let path = std::path::Path::new("fhirgate.toml");
    let env = |v: &str| {
        vec![
            ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
            ("FHIRGATE_OTLP_ENDPOINT".to_owned(), v.to_owned()),
        ]
    };
    let c = Config::from_parts("", path, &env("http://otel:4318")).unwrap();
    assert_eq!(c.observability.otlp_endpoint(), Some("http://otel:4318"));
    let c = Config::from_parts("", path, &env("")).unwrap();
    assert_eq!(c.observability.otlp_endpoint(), None);
    let e = Config::from_parts("", path, &env("otel:4318"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("observability.otlp_endpoint"), "{e}");
    let e = Config::from_parts(
        "[observability]\notlp_sample_ratio = 1.5\n",
        path,
        &env("http://otel:4318"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("otlp_sample_ratio"), "{e}");
    let c = Config::from_parts("", path, &[("FHIRGATE_DEMO".to_owned(), "0".to_owned())]).unwrap();
    assert_eq!(c.observability.otlp_endpoint(), None, "off by default");
}

/// `serve`'s graceful shutdown exports what is still queued: the batch
/// delay (5 s) has not passed when the server has stopped.
#[tokio::test]
async fn graceful_shutdown_flushes_the_spans() {
    let (collector, caddr) = collector().await;
    let (_upstream, uaddr) = fake_upstream().await;
    let t = facade(uaddr, Some(caddr), "").await;
    let started = Instant::now();
    let otel = Otel::start(&t.app.config.observability).unwrap().unwrap();
    otel::install(otel.clone());
    let _levels = keep_levels();
    let _guard = tracing::dispatcher::set_default(&dispatch(&t, Some(&otel)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fhirgate::shutdown::serve(
        t.app.clone(),
        None,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Before the batch delay (5 s from the exporter's start) only the
    // shutdown flush can have exported (on a machine slow enough to miss
    // that, the span must still have arrived).
    let proves_flush = started.elapsed() < Duration::from_millis(4500);
    let spans = collector.spans();
    let server = server_span_of(&spans, &rid);
    assert_eq!(server.name, "GET /healthz");
    if !proves_flush {
        eprintln!("slow run: the batch delay may have exported before the shutdown flush");
    }
}
