//! The pieces `tests/federation.rs` plays with: the real OpenID Provider
//! (a node child process), a fhirgate configured for it (in process, on a
//! real socket, its log captured), and a minimal cookie-keeping browser.
#![allow(dead_code)]

use std::{
    io::Write,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

pub use crate::browser::{Browser, Page};
use fhirgate::{config::Config, federation::Federation, state::users::User, AppState};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The client fhirgate is registered as at the provider.
pub const CLIENT_ID: &str = "fhirgate-test";
/// The provider account's password.
const PASSWORD: &str = "op-password-for-tests";

/// How the provider behaves (`MODE` of `server.mjs`).
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Normal,
    BadNonce,
    WrongIssuer,
}

/// fhirgate's clock for id_token expiry.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Real,
    AheadSecs(i64),
}

/// The running provider; killed on drop.
pub struct Provider {
    _child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Provider {
    async fn start(mode: Mode, redirect_uri: &str, secret: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance-tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "{}/node_modules is missing: run `npm ci` in conformance-tests/oidc \
             (scripts/test.sh does) before these tests",
            dir.display()
        );
        let mode = match mode {
            Mode::Normal => "normal",
            Mode::BadNonce => "bad-nonce",
            Mode::WrongIssuer => "wrong-issuer",
        };
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("MODE", mode)
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", secret)
            .env("REDIRECT_URI", redirect_uri)
            .env("ACCOUNT_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("`node` must be installed to run the federation tests");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(p) = line.strip_prefix("LISTENING ") {
                    return p.trim().to_owned();
                }
            }
            panic!("the OpenID Provider exited before listening");
        })
        .await
        .expect("the OpenID Provider did not start within 30 s");
        // Keep draining its output so it never blocks (or dies) on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// Log lines captured from fhirgate during one test.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A running fhirgate configured for the provider.
pub struct Gate {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub app: AppState,
    log: Capture,
    _log_guard: tracing::subscriber::DefaultGuard,
    _dir: tempfile::TempDir,
}

impl Gate {
    /// Everything fhirgate logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.0.lock().unwrap()).into_owned()
    }

    /// The log holds no authorization code and no JWT.
    pub fn assert_clean_log(&self, callback: &str) {
        let log = self.log();
        let url = url::Url::parse(callback).unwrap();
        if let Some((_, code)) = url.query_pairs().find(|(k, _)| k == "code") {
            assert!(!log.contains(code.as_ref()), "the code was logged");
        }
        assert!(!log.contains("eyJ"), "a JWT was logged: {log}");
        assert!(!log.contains(PASSWORD));
    }
}

/// Sends this thread's log (the test's runtime is single-threaded, so
/// fhirgate's tasks log here too) to a buffer, until the guard drops.
fn capture_log() -> (Capture, tracing::subscriber::DefaultGuard) {
    let log = Capture::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}

/// Starts a provider in `mode` and a fhirgate for it; `with_user` creates
/// the local account `dr.lee` the provider's account maps to.
pub async fn start(mode: Mode, clock: Clock, with_user: bool) -> (Gate, Provider) {
    start_with(mode, clock, with_user, "").await
}

/// [`start`], with more `[federation]` keys (TOML lines).
pub async fn start_with(
    mode: Mode,
    clock: Clock,
    with_user: bool,
    federation_extra: &str,
) -> (Gate, Provider) {
    let (log, log_guard) = capture_log();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let provider =
        Provider::start(mode, &format!("{base}/login/federated/callback"), &secret).await;

    let dir = tempfile::tempdir().unwrap();
    copy_shared_keys(&dir.path().join("keys"));
    let toml = format!(
        "[federation]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{secret}\"\n\
         display_name = \"Sign in with Test OP\"\n{federation_extra}",
        provider.base
    );
    let env = vec![
        (
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("FHIRGATE_PUBLIC_URL".to_owned(), base.clone()),
        ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
    ];
    let config = Config::from_parts(&toml, Path::new("fhirgate.toml"), &env).unwrap();
    let federation_config = config.federation.clone().unwrap();
    let public_url = config.public_url.clone();
    let (mut app, _) = AppState::open(config).await.unwrap();
    if let Clock::AheadSecs(secs) = clock {
        let ahead = chrono::Duration::seconds(secs);
        let f = Federation::new(&federation_config, &public_url)
            .unwrap()
            .with_clock(Arc::new(move || chrono::Utc::now() + ahead));
        app.federation = Some(Arc::new(f));
    }
    if with_user {
        let user = User {
            username: "dr.lee".into(),
            role: "clinician".into(),
            fhir_user: "Practitioner/dr-lee".into(),
            display_name: "Dr Lee (local)".into(),
            organization: None,
        };
        app.state
            .upsert_user(&user, "local-password")
            .await
            .unwrap();
    }
    let router = fhirgate::app(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let gate = Gate {
        base,
        app,
        log,
        _log_guard: log_guard,
        _dir: dir,
    };
    (gate, provider)
}

/// A fhirgate with no `[federation]` section.
pub async fn start_without_federation() -> Gate {
    let (log, log_guard) = capture_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let dir = tempfile::tempdir().unwrap();
    copy_shared_keys(&dir.path().join("keys"));
    let env = vec![
        (
            "FHIRGATE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("FHIRGATE_PUBLIC_URL".to_owned(), base.clone()),
        ("FHIRGATE_DEMO".to_owned(), "0".to_owned()),
    ];
    let config = Config::from_parts("", Path::new("fhirgate.toml"), &env).unwrap();
    let (app, _) = AppState::open(config).await.unwrap();
    assert!(app.federation.is_none());
    let router = fhirgate::app(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Gate {
        base,
        app,
        log,
        _log_guard: log_guard,
        _dir: dir,
    }
}

/// Who signs in at the provider's form, and the assurance the provider
/// asserts for that sign-in.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    pub login: &'a str,
    /// The `acr` the sign-in reaches (an IAL URI).
    pub acr: &'a str,
    /// The `amr` values, comma-separated.
    pub amr: &'a str,
}

pub const IAL1: &str = "http://idmanagement.gov/ns/assurance/ial/1";
pub const IAL2: &str = "http://idmanagement.gov/ns/assurance/ial/2";
pub const MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

/// `dr.lee`, IAL1, password only.
pub const DR_LEE: SignIn<'static> = SignIn {
    login: "dr.lee",
    acr: IAL1,
    amr: "pwd",
};

/// Follows redirects from `start`, signing in at the provider's form,
/// until the provider sends the browser to fhirgate's callback; returns
/// that URL (not yet opened).
pub async fn until_callback(
    b: &mut Browser,
    start: &str,
    gate: &Gate,
    provider: &Provider,
) -> String {
    until_callback_as(b, start, gate, provider, DR_LEE).await.0
}

/// [`until_callback`] signing in as `who`; also returns what the provider's
/// form says the relying party asked for (`acr_values=…;prompt=…;max_age=…`).
pub async fn until_callback_as(
    b: &mut Browser,
    start: &str,
    gate: &Gate,
    provider: &Provider,
    who: SignIn<'_>,
) -> (String, String) {
    let mut asked = String::new();
    let callback = format!("{}/login/federated/callback", gate.base);
    let mut url = start.to_owned();
    for _ in 0..20 {
        if url.starts_with(&callback) {
            return (url, asked);
        }
        let mut page = b.get(&url).await;
        if page.status == 200 && page.body.contains(r#"action="/interaction/"#) {
            let at = page.body.find(r#"action=""#).unwrap() + r#"action=""#.len();
            let action = &page.body[at..];
            let action = format!("{}{}", provider.base, &action[..action.find('"').unwrap()]);
            if let Some(at) = page.body.find(r#"<p id="asked">"#) {
                let rest = &page.body[at + r#"<p id="asked">"#.len()..];
                asked = rest[..rest.find("</p>").unwrap()].replace("&#59;", ";");
            }
            page = b
                .post_form(
                    &action,
                    &[
                        ("login", who.login),
                        ("password", PASSWORD),
                        ("acr", who.acr),
                        ("amr", who.amr),
                    ],
                )
                .await;
        }
        let Some(next) = page.location.as_deref().filter(|_| page.status / 100 == 3) else {
            panic!("stuck at {url}: {} {}", page.status, page.body);
        };
        url = url::Url::parse(&url)
            .unwrap()
            .join(next)
            .unwrap()
            .to_string();
    }
    panic!("no callback after 20 steps");
}

/// The failed callback `res` set no session, and fhirgate sees none.
pub async fn assert_no_session(b: &mut Browser, gate: &Gate, res: &Page) {
    assert!(
        !res.set_cookies
            .iter()
            .any(|c| c.starts_with("fhirgate_session=")),
        "a session cookie was set: {:?}",
        res.set_cookies
    );
    let launcher = b.get(&format!("{}/launcher", gate.base)).await;
    assert_eq!(launcher.status, 303, "no session expected");
    assert!(launcher
        .location
        .as_deref()
        .is_some_and(|l| l.starts_with("/login")));
}

/// RSA key generation is slow in debug builds: one key set per test binary.
fn copy_shared_keys(into: &Path) {
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
