//! TLS termination and the plain-HTTP rule (`src/tls/`): the real serve
//! path (`shutdown::serve`) on a free loopback port, self-signed
//! certificates from rcgen in a temp dir, reqwest and a bare rustls client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use common::TestApp;
use fhirgate::{config::Config, tls::Transport};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A self-signed certificate for `localhost` and `127.0.0.1`.
struct Pem {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn self_signed() -> Pem {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Pem {
        cert: c.cert.pem(),
        key: c.signing_key.serialize_pem(),
        der: c.cert.der().to_vec(),
    }
}

/// A fhirgate serving on 127.0.0.1 through `shutdown::serve`.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _t: TestApp,
}

impl Running {
    async fn start(toml: &str) -> Self {
        let t = TestApp::with_config(toml).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(fhirgate::shutdown::serve(
            t.app.clone(),
            None,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
            _t: t,
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(task) = self.task.take() {
            let done = tokio::time::timeout(Duration::from_secs(10), task).await;
            done.expect("serve stops").unwrap().unwrap();
        }
    }
}

/// Writes the pair and returns the `[tls]` section naming it.
fn tls_section(dir: &Path, pem: &Pem, extra: &str) -> String {
    let (cert, key) = files(dir);
    std::fs::write(&cert, &pem.cert).unwrap();
    std::fs::write(&key, &pem.key).unwrap();
    format!(
        "[tls]\ncertificate = {:?}\nkey = {:?}\n{extra}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

fn files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("server.pem"), dir.join("server.key"))
}

fn client(roots: &[&Pem], max_tls12: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .tls_info(true);
    for r in roots {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(r.cert.as_bytes()).unwrap());
    }
    if max_tls12 {
        b = b.max_tls_version(reqwest::tls::Version::TLS_1_2);
    }
    b.build().unwrap()
}

/// A fresh rustls connection (ring, TLS 1.2 and 1.3, ALPN h2 and
/// http/1.1): the negotiated version, ALPN protocol and the server's
/// certificate.
async fn handshake(addr: SocketAddr, roots: &[&Pem]) -> (String, Option<Vec<u8>>, Vec<u8>) {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store
            .add(rustls::pki_types::CertificateDer::from(r.der.clone()))
            .unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let conn = tls.get_ref().1;
    (
        format!("{:?}", conn.protocol_version().unwrap()),
        conn.alpn_protocol().map(<[u8]>::to_vec),
        conn.peer_certificates().unwrap()[0].to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_3_serves_metadata_and_refuses_a_tls_1_2_client() {
    let dir = tempfile::tempdir().unwrap();
    let pem = self_signed();
    let s = Running::start(&tls_section(dir.path(), &pem, "")).await;
    let url = format!("https://127.0.0.1:{}/fhir/metadata", s.addr.port());

    let r = client(&[&pem], false).get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let info = r.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    assert_eq!(info.peer_certificate(), Some(pem.der.as_slice()));

    let (version, alpn, _) = handshake(s.addr, &[&pem]).await;
    assert_eq!(version, "TLSv1_3");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "ALPN prefers h2");

    let refused = client(&[&pem], true).get(&url).send().await;
    assert!(refused.is_err(), "a TLS 1.2 client must not get through");

    // plain HTTP on the TLS port is not answered
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/fhir/metadata", s.addr.port()))
        .send()
        .await;
    assert!(plain.is_err());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_only_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let pem = self_signed();
    let s = Running::start(&tls_section(dir.path(), &pem, "min_version = \"1.2\"")).await;
    let url = format!("https://127.0.0.1:{}/fhir/metadata", s.addr.port());
    let r = client(&[&pem], true).get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_certificate_is_served_without_restart_and_garbage_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed();
    let s = Running::start(&tls_section(dir.path(), &first, "reload_seconds = 1")).await;
    let (_, _, served) = handshake(s.addr, &[&first]).await;
    assert_eq!(served, first.der);

    // replace both files: new connections get the new certificate
    let second = self_signed();
    let (cert, key) = files(dir.path());
    std::fs::write(&key, &second.key).unwrap();
    std::fs::write(&cert, &second.cert).unwrap();
    let mut seen = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        seen = handshake(s.addr, &[&first, &second]).await.2;
        if seen == second.der {
            break;
        }
    }
    assert_eq!(
        seen, second.der,
        "the new certificate is served after reload"
    );
    let url = format!("https://127.0.0.1:{}/fhir/metadata", s.addr.port());
    let r = client(&[&second], false).get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // a garbage certificate file keeps the previous certificate
    std::fs::write(&cert, "-----BEGIN GARBAGE-----\nnot a certificate\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(handshake(s.addr, &[&first, &second]).await.2, second.der);
    // so does a key that does not fit the certificate
    std::fs::write(&cert, &second.cert).unwrap();
    std::fs::write(&key, &first.key).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(handshake(s.addr, &[&first, &second]).await.2, second.der);
    s.stop().await;

    // at start, a bad file stops `serve` with the key named
    let e = fhirgate::tls::TlsServer::load(&fhirgate::config::TlsConfig {
        certificate: cert.clone(),
        key: key.clone(),
        min_version: Default::default(),
        reload_seconds: 0,
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("tls.key"), "{e}");
    std::fs::write(&cert, "garbage").unwrap();
    let e = fhirgate::tls::TlsServer::load(&fhirgate::config::TlsConfig {
        certificate: cert,
        key,
        min_version: Default::default(),
        reload_seconds: 0,
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("tls.certificate"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_on_ui_pages_over_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let pem = self_signed();
    let s = Running::start(&tls_section(dir.path(), &pem, "")).await;
    let r = client(&[&pem], false)
        .get(format!("https://127.0.0.1:{}/login", s.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers();
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    s.stop().await;

    // plain HTTP on loopback: no HSTS, even if a client claims https
    let s = Running::start("").await;
    let url = format!("http://127.0.0.1:{}/login", s.addr.port());
    let http = reqwest::Client::new();
    let r = http
        .get(&url)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("strict-transport-security").is_none());
    assert!(r.headers().contains_key("content-security-policy"));
    s.stop().await;

    // behind a trusted proxy that terminated TLS: HSTS
    let s = Running::start("[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let url = format!("http://127.0.0.1:{}/login", s.addr.port());
    let r = http
        .get(&url)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let r = http.get(&url).send().await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
    // FHIR responses are not UI pages
    let r = http
        .get(format!("http://127.0.0.1:{}/fhir/metadata", s.addr.port()))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    s.stop().await;
}

fn config(text: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    Config::from_parts(text, Path::new("fhirgate.toml"), &env).map_err(|e| e.to_string())
}

#[test]
fn plain_http_on_a_public_address_is_refused_at_start() {
    let c = config("listen = \"0.0.0.0:8080\"\n", &[]).unwrap();
    let e = fhirgate::tls::check_plain_http(&c).unwrap_err().to_string();
    for needle in [
        "0.0.0.0:8080",
        "[tls]",
        "trusted_proxies",
        "FHIRGATE_TRUSTED_PROXIES",
        "allow_plain_http",
    ] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
    // what may start
    for (text, env) in [
        ("", vec![]),
        ("listen = \"[::1]:8080\"\n", vec![]),
        (
            "listen = \"0.0.0.0:8080\"\n[tls]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n",
            vec![],
        ),
        (
            "listen = \"0.0.0.0:8080\"\n",
            vec![("FHIRGATE_TRUSTED_PROXIES", "10.0.0.0/8, 100.64.0.0/10")],
        ),
        (
            "listen = \"0.0.0.0:8080\"\n",
            vec![("FHIRGATE_ALLOW_PLAIN_HTTP", "true")],
        ),
        (
            "listen = \"0.0.0.0:8080\"\n[http]\ntrusted_proxies = [\"10.1.2.3\"]\n",
            vec![],
        ),
    ] {
        let c = config(text, &env).unwrap();
        fhirgate::tls::check_plain_http(&c).unwrap();
    }
    // the TLS section's defaults and its env overrides
    let c = config(
        "",
        &[
            ("FHIRGATE_TLS_CERTIFICATE", "/etc/fhirgate/tls.pem"),
            ("FHIRGATE_TLS_KEY", "/etc/fhirgate/tls.key"),
        ],
    )
    .unwrap();
    let t = c.tls.unwrap();
    assert_eq!(t.certificate, PathBuf::from("/etc/fhirgate/tls.pem"));
    assert_eq!(t.min_version, fhirgate::config::TlsVersion::Tls13);
    assert_eq!(t.reload_seconds, 60);
    // bad values name their key
    for (text, env, key) in [
        (
            "[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            vec![],
            "http.trusted_proxies",
        ),
        (
            "",
            vec![("FHIRGATE_TRUSTED_PROXIES", "proxy.internal")],
            "http.trusted_proxies",
        ),
        (
            "[tls]\ncertificate = \"c\"\nkey = \"k\"\nmin_version = \"1.1\"\n",
            vec![],
            "tls.min_version",
        ),
        ("[tls]\ncertificate = \"c\"\n", vec![], "tls"),
    ] {
        let e = config(text, &env).unwrap_err();
        assert!(e.contains(key), "{text}: {e}");
    }
}

#[test]
fn only_trusted_proxies_and_loopback_may_speak_plain_http() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let headers = |proto: Option<&str>| {
        let mut h = axum::http::HeaderMap::new();
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", p.parse().unwrap());
        }
        h
    };
    let c = config(
        "listen = \"0.0.0.0:8080\"\n[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\"]\n",
        &[],
    )
    .unwrap();
    let t = Transport::new(&c, false);
    for (peer, admitted) in [
        ("10.1.2.3", true),
        ("::ffff:10.1.2.3", true),
        ("fd12::1", true),
        ("127.0.0.1", true),
        ("::1", true),
        ("192.0.2.7", false),
        ("11.0.0.1", false),
        ("2001:db8::1", false),
    ] {
        assert_eq!(t.admits(ip(peer)), admitted, "{peer}");
    }
    assert!(t.secure(Some(ip("10.1.2.3")), &headers(Some("https"))));
    assert!(t.secure(Some(ip("10.1.2.3")), &headers(Some("HTTPS, http"))));
    assert!(!t.secure(Some(ip("10.1.2.3")), &headers(Some("http"))));
    assert!(!t.secure(Some(ip("10.1.2.3")), &headers(None)));
    // only a trusted proxy is believed
    assert!(!t.secure(Some(ip("192.0.2.7")), &headers(Some("https"))));
    assert!(!t.secure(Some(ip("127.0.0.1")), &headers(Some("https"))));

    // allow_plain_http: anyone; TLS: anyone, always secure
    let c = config(
        "listen = \"0.0.0.0:8080\"\n[http]\nallow_plain_http = true\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        &[],
    )
    .unwrap();
    assert!(Transport::new(&c, false).admits(ip("192.0.2.7")));
    let t = Transport::new(&c, true);
    assert!(t.admits(ip("192.0.2.7")));
    assert!(t.secure(Some(ip("192.0.2.7")), &headers(None)));
    // no proxies configured (loopback or allow_plain_http): no gate, no HSTS
    let t = Transport::new(&config("", &[]).unwrap(), false);
    assert!(t.admits(ip("192.0.2.7")));
    assert!(!t.secure(Some(ip("127.0.0.1")), &headers(Some("https"))));
}
