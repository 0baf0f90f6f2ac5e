//! The `fhirgate` command line: `serve` (the facade, seeding demo data on a
//! fresh data dir) and `seed` (write the deterministic population through
//! the configured upstream).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::{config::Config, demo, AppState};

/// fhirgate: SMART-on-FHIR app server and FHIR R4 facade.
#[derive(Debug, Parser)]
#[command(name = "fhirgate", version, about)]
pub struct Cli {
    /// Configuration file (default: ./fhirgate.toml when present).
    #[arg(long, global = true, env = "FHIRGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (seeds demo data and users on a fresh data dir in demo mode).
    Serve {
        /// Patients to seed on a fresh demo start (overrides `demo.seed_patients`).
        #[arg(long)]
        seed_patients: Option<u32>,
    },
    /// Write the deterministic synthetic population through the configured upstream.
    Seed {
        /// Number of patients.
        #[arg(long, default_value_t = 100)]
        patients: u32,
    },
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the server's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect and prove the tamper-evident audit ledger.
    #[command(subcommand)]
    Ledger(crate::audit::cli::LedgerCommand),
    /// Explain consent decisions.
    #[command(subcommand)]
    Consent(crate::consent::cli::ConsentCommand),
    /// Issue access tokens as an operator.
    #[command(subcommand)]
    Token(TokenCommand),
    /// UDAP: certificates from the demo trust community.
    #[command(subcommand)]
    Udap(UdapCommand),
    /// CRD: a demo EHR's signed hook JWT (demo mode).
    #[command(subcommand)]
    Crd(CrdCommand),
    /// Report the CMS-0057-F prior-authorization metrics.
    PaMetrics {
        /// Only requests received from this date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Only requests received up to this date (inclusive day, or RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `fhirgate crd …`.
#[derive(Debug, Subcommand)]
pub enum CrdCommand {
    /// Print the JWT the demo EHR (a trusted CDS client in demo mode)
    /// sends with a call to CDS service `--service` (valid five minutes).
    DemoJwt {
        /// The CDS service id (see `GET /cds-services`), e.g. `order-sign`'s.
        #[arg(long)]
        service: String,
    },
}

/// `fhirgate udap …`.
#[derive(Debug, Subcommand)]
pub enum UdapCommand {
    /// Issue a client certificate (SAN URI) from the demo community's CA.
    ClientCert(crate::udap::cli::ClientCertArgs),
    /// Link a Tiered OAuth identity provider's subject to a local user (or
    /// remove the link).
    LinkIdentity(crate::udap::cli::LinkIdentityArgs),
}

/// `fhirgate token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint an access token with the server's key (recorded, revocable) and
    /// print it.
    Issue(crate::oauth::issue::IssueArgs),
}

/// `fhirgate keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new signing key; the previous ones stay in the JWKS so
    /// tokens they signed keep validating. Running servers sign with the new
    /// key after a restart.
    Rotate,
    /// Print the public JWKS.
    Show,
}

/// `fhirgate client …`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client (same rules as RFC 7591 registration); prints the
    /// registration as JSON, with the client secret for client_secret_basic.
    Add {
        /// Display name.
        #[arg(long)]
        name: String,
        /// `none` (public), `client_secret_basic` or `private_key_jwt`.
        #[arg(long, default_value = "none")]
        auth: String,
        /// Redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Grant type (repeatable; default authorization_code).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// Most scopes the client may be granted.
        #[arg(long)]
        scope: Option<String>,
        /// File with the client's JWKS (private_key_jwt).
        #[arg(long)]
        jwks_file: Option<PathBuf>,
        /// URL of the client's JWKS (private_key_jwt).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Where the EHR launcher opens the app.
        #[arg(long)]
        launch_url: Option<String>,
    },
    /// List registered clients.
    List,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    // Traces are exported by `serve` only (it flushes them on shutdown).
    let otel = match cli.command {
        Command::Serve { .. } => crate::observability::otel::Otel::start(&config.observability)?,
        _ => None,
    };
    crate::http::logging::init(&config.log, otel.as_ref())?;
    if let Some(otel) = otel {
        crate::observability::otel::install(otel);
    }
    if config.demo_enabled() {
        // the demo's provider client mapping, for the server and for
        // `consent explain` alike
        demo::configure(&mut config)?;
    }
    match cli.command {
        Command::Serve { seed_patients } => {
            if let Some(n) = seed_patients {
                config.demo.seed_patients = n;
            }
            serve(config).await
        }
        Command::Client(cmd) => client(config, cmd).await,
        Command::Keys(cmd) => keys(&config, cmd),
        Command::Ledger(cmd) => crate::audit::cli::run(&config, cmd).await,
        Command::Consent(cmd) => crate::consent::cli::run(config, cmd).await,
        Command::Token(TokenCommand::Issue(args)) => crate::oauth::issue::run(config, args).await,
        Command::Udap(UdapCommand::ClientCert(args)) => {
            crate::udap::cli::client_cert(&config, &args)
        }
        Command::Udap(UdapCommand::LinkIdentity(args)) => {
            crate::udap::cli::link_identity(&config, &args).await
        }
        Command::Crd(CrdCommand::DemoJwt { service }) => {
            if !config.demo_enabled() {
                anyhow::bail!(
                    "the demo EHR exists in demo mode only; configure [crd] clients otherwise"
                );
            }
            crate::stdout::line(crate::crd::demo::demo_jwt(&config, &service)?)?;
            Ok(())
        }
        Command::PaMetrics { from, to, json } => {
            crate::prior_auth::metrics::cli(config, from, to, json).await
        }
        Command::Seed { patients } => {
            let (app, embedded) = AppState::open(config).await?;
            let report = demo::seed_population(&app, patients).await?;
            if let Some(store) = embedded {
                store.optimize().await?;
            }
            crate::stdout::line(format_args!(
                "seeded {} resources for {} patients in {:.1}s",
                report.resources,
                patients,
                report.elapsed.as_secs_f64()
            ))?;
            Ok(())
        }
    }
}

fn keys(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let dir = config.data_dir.join("keys");
    let mut set = smart_launch::keys::KeySet::load_or_create(&dir)
        .map_err(|e| anyhow::anyhow!("signing keys in {}: {e}", dir.display()))?;
    if let KeysCommand::Rotate = cmd {
        set.rotate(&dir)
            .map_err(|e| anyhow::anyhow!("rotating keys in {}: {e}", dir.display()))?;
        crate::stdout::note(format_args!(
            "new signing key {}; restart running servers to sign with it",
            set.current_kid()
        ));
    }
    crate::stdout::json(&set.jwks())?;
    Ok(())
}

async fn client(config: Config, cmd: ClientCommand) -> anyhow::Result<()> {
    let (app, _) = AppState::open(config).await?;
    match cmd {
        ClientCommand::Add {
            name,
            auth,
            redirect_uris,
            grants,
            scope,
            jwks_file,
            jwks_uri,
            launch_url,
        } => {
            let mut meta = serde_json::json!({
                "client_name": name,
                "token_endpoint_auth_method": auth,
                "redirect_uris": redirect_uris,
            });
            if !grants.is_empty() {
                meta["grant_types"] = serde_json::json!(grants);
            }
            if let Some(s) = scope {
                meta["scope"] = serde_json::json!(s);
            }
            if let Some(f) = jwks_file {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
                meta["jwks"] = serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", f.display()))?;
            }
            if let Some(u) = jwks_uri {
                meta["jwks_uri"] = serde_json::json!(u);
            }
            if let Some(u) = launch_url {
                meta["launch_url"] = serde_json::json!(u);
            }
            let (_, response) = crate::oauth::clients::register(&app, &meta)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::stdout::json(&response)?;
        }
        ClientCommand::List => {
            for c in app.state.client_list().await? {
                crate::stdout::line(format_args!(
                    "{}\t{}\t{}",
                    c.client_id, c.client_type, c.client_name
                ))?;
            }
        }
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    // Transport first: no data is opened for a server that may not start.
    crate::tls::check_plain_http(&config)?;
    let tls = config
        .tls
        .as_ref()
        .map(crate::tls::TlsServer::load)
        .transpose()?;
    if tls.is_some() && config.public_url.scheme() != "https" {
        tracing::warn!(
            public_url = %config.public_url,
            "[tls] is on but public_url is not https: the URLs fhirgate emits will be wrong"
        );
    }
    let demo_mode = config.demo_enabled();
    let patients = config.demo.seed_patients;
    let (app, embedded) = AppState::open(config).await?;
    // Background: signs a ledger checkpoint every N entries or T seconds.
    crate::audit::checkpoint::spawn(&app);
    // Background: runs (and resumes) Bulk Data export jobs.
    crate::bulk::worker::spawn(app.clone());
    crate::prior_auth::retention::spawn(&app);
    if let Some(anchor) = &app.config.audit.anchor {
        // Background: posts each checkpoint to Azure Confidential Ledger.
        let ledger = crate::audit::Ledger::new(app.state.clone());
        crate::audit::anchor::Anchor::new(anchor, ledger)?.spawn();
    }
    let demo_info = if demo_mode {
        tracing::warn!(
            "demo mode is on: demo users with known passwords exist; configure an upstream or database, or set demo.enabled = false, for production"
        );
        Some(demo::ensure(&app, embedded.as_ref(), patients).await?)
    } else {
        None
    };
    // The consent index learns Consents written elsewhere (or seeded) from
    // the upstream: once now, then every poll interval.
    let ctx = app.request_context("consent-sync");
    let synced = app
        .consent
        .index
        .sync(app.upstream.as_ref(), &ctx)
        .await
        .map_err(|e| anyhow::anyhow!("consent index sync: {e}"))?;
    tracing::info!(consents = synced, "consent index synced");
    if let Some(every) = app.config.consent.poll_interval() {
        app.consent
            .index
            .clone()
            .spawn_poller(app.upstream.clone(), ctx, every);
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, tls = tls.is_some(), upstream = app.upstream.name(), state = app.state.backend(), "fhirgate listening");
    print_banner(&app, demo_info.as_ref());
    // Drains on SIGTERM/SIGINT, then checkpoints the ledger and closes the stores.
    crate::shutdown::serve_with(app, embedded, listener, tls, shutdown_signal()).await
}

/// The start-up banner on stdout (written at once; a failure is ignored).
fn print_banner(app: &AppState, demo: Option<&demo::DemoInfo>) {
    use std::fmt::Write as _;
    let base = app.config.fhir_base();
    let mut out = String::with_capacity(1024);
    let _ = writeln!(out, "fhirgate is running");
    let _ = writeln!(out, "  FHIR base:          {base}");
    let _ = writeln!(out, "  CapabilityStatement {base}/metadata");
    let _ = writeln!(
        out,
        "  SMART discovery:    {base}/.well-known/smart-configuration"
    );
    let _ = writeln!(out, "  upstream:           {}", app.upstream.name());
    if let Some(d) = demo {
        let _ = writeln!(out, "  demo mode:          {} patients seeded", d.patients);
        let _ = writeln!(
            out,
            "  demo users:         dr.lee / demo  (clinician, {}, {})",
            d.dr_lee,
            crate::seed::DR_LEE_ORGANIZATION
        );
        let _ = writeln!(
            out,
            "                      pat.jones / demo  (patient, {})",
            d.pat_jones
        );
        let _ = writeln!(
            out,
            "                      {} / demo  (admin, {}; OAuth clients at {}/admin)",
            demo::ADMIN_USERNAME,
            demo::ADMIN_FHIR_USER,
            app.config.public_url.as_str().trim_end_matches('/')
        );
        let _ = writeln!(
            out,
            "  demo provider:      Backend Services client {} acts for {}",
            demo::DEMO_PROVIDER_CLIENT,
            crate::seed::HOSPITAL_ORGANIZATION
        );
        let public = app.config.public_url.as_str().trim_end_matches('/');
        let _ = writeln!(out, "  try:                {public}/launcher  (EHR launcher: sign in as dr.lee, launch a registered app)");
    }
    // A stdout that cannot be written (closed, full) must not stop the server.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
