//! fhirgate: a SMART-on-FHIR app server and FHIR R4 facade.
//!
//! Module map (a request flows top to bottom):
//! - [`config`]: the one typed `Config` (`fhirgate.toml` + `FHIRGATE_*`).
//! - [`http`]: router assembly, request ids, logging; thin handlers that turn
//!   HTTP into a [`fhir::FhirRequest`] and a [`fhir::FhirResponse`] back into HTTP.
//! - [`pipeline`]: the FHIR pipeline stages, in the order written down there.
//! - [`fhir`]: our seam over FHIR content (types, references, requests, responses).
//! - [`upstream`]: the `Upstream` trait; the embedded SQLite store and the HTTP upstream.
//! - [`search`]: the search-parameter table the store indexes and the
//!   CapabilityStatement advertises.
//! - [`state`]: the facade's own state store (SQLite or PostgreSQL).
//! - [`observability`]: `/metrics` (Prometheus), `/readyz`, route templates.
//! - [`federation`]: sign-in through an external OpenID Provider (relying party).
//! - [`seed`], [`demo`]: the deterministic demo population and demo users.
//! - [`error`]: the one error type and its OperationOutcome face.
//! - [`cli`]: the `fhirgate` command line (`serve`, `seed`).
//! - [`shutdown`]: `serve`'s graceful stop (drain, checkpoint, close stores).
//! - [`tls`]: TLS termination (rustls, reloaded certificate) and the plain-HTTP rule.

use std::sync::Arc;

/// mimalloc as the allocator of every binary linking fhirgate: it hands
/// freed pages back to the system, where glibc's per-thread arenas kept
/// them, so resident memory follows the live heap (bulk export benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod aead;
pub mod assurance;
pub mod audit;
pub mod bulk;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod consent;
pub mod crd;
pub mod deid;
pub mod demo;
pub mod dtr;
pub mod error;
pub mod federation;
pub mod fhir;
pub mod http;
pub mod mfa;
pub mod net;
pub mod oauth;
pub mod observability;
pub mod payer;
pub mod pipeline;
pub mod prior_auth;
pub mod search;
pub mod seed;
pub mod shutdown;
pub mod state;
pub mod stdout;
pub mod subscriptions;
pub mod throttle;
pub mod tls;
pub mod udap;
pub mod upstream;
pub mod validation;

pub use http::app;

use config::Config;
use state::StateStore;
use upstream::{embedded::EmbeddedStore, Upstream};

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Configuration, fixed for the process lifetime.
    pub config: Arc<Config>,
    /// The FHIR server behind the facade (embedded or HTTP).
    pub upstream: Arc<dyn Upstream>,
    /// The facade's own state.
    pub state: StateStore,
    /// The server's signing keys (access and id tokens), published as JWKS.
    pub keys: Arc<smart_launch::keys::KeySet>,
    /// The federated sign-in provider, when `[federation]` is configured.
    pub federation: Option<Arc<federation::Federation>>,
    /// The audit trail: every request's events, durable before the response.
    pub audit: Arc<audit::Auditor>,
    /// The consent engine: policy, decision index, caches.
    pub consent: Arc<consent::engine::ConsentEngine>,
    /// Bulk Data `$export`: the file store and the worker's wake-up.
    pub bulk: Arc<bulk::Bulk>,
    /// UDAP trust (signing identity, communities), unless `[udap]` is off.
    pub udap: Option<Arc<udap::Udap>>,
    /// Per-client token buckets of the FHIR API (`[limits] rate_per_second`).
    pub rate: Arc<pipeline::ratelimit::RateLimiter>,
    /// Seals the step-up factors' TOTP secrets (`keys/mfa-secrets.key`).
    pub mfa_secrets: Arc<mfa::store::SecretBox>,
}

impl AppState {
    /// The organization `caller` acts for: the token's (a signed-in user's,
    /// fixed at issuance), else the one `[payer] provider_clients` maps its
    /// client to. A consent decision input and the owner of prior
    /// authorizations.
    pub fn organization_of(&self, caller: &smart_launch::context::AccessContext) -> Option<String> {
        caller.organization.clone().or_else(|| {
            self.config
                .payer
                .provider_org(&caller.client_id)
                .map(str::to_owned)
        })
    }

    /// Opens the state store and the configured upstream (creating the data dir).
    pub async fn open(config: Config) -> anyhow::Result<(Self, Option<EmbeddedStore>)> {
        // the payer rules must parse before anything starts
        prior_auth::rules::Rules::load(&config.prior_auth)?;
        config.prior_auth.check().map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create data_dir {}: {e}", config.data_dir.display())
        })?;
        let state = StateStore::open(config.database_url.as_deref(), &config.data_dir).await?;
        let keys = smart_launch::keys::KeySet::load_or_create(&config.data_dir.join("keys"))
            .map_err(|e| {
                anyhow::anyhow!(
                    "signing keys in {}: {e}",
                    config.data_dir.join("keys").display()
                )
            })?;
        let audit = audit::Auditor::open(&config, state.clone())?;
        let mfa_secrets = mfa::store::SecretBox::load_or_create(&config.data_dir.join("keys"))?;
        let federation = match &config.federation {
            Some(f) => Some(Arc::new(federation::Federation::new(
                f,
                &config.public_url,
            )?)),
            None => None,
        };
        let (upstream, embedded): (Arc<dyn Upstream>, Option<EmbeddedStore>) =
            match &config.upstream.url {
                Some(_) => (
                    Arc::new(upstream::deletion_log::Logged::new(
                        Arc::new(upstream::http::HttpUpstream::new(&config.upstream)?),
                        state.clone(),
                    )),
                    None,
                ),
                None => {
                    let store = EmbeddedStore::open(&config.data_dir.join("fhir.db")).await?;
                    (Arc::new(store.clone()), Some(store))
                }
            };
        let upstream: Arc<dyn Upstream> = Arc::new(observability::Timed::new(upstream));
        let consent = consent::engine::ConsentEngine::open(
            config.consent.policy(),
            state.clone(),
            config.consent.exempt_clients.clone(),
        )
        .await?;
        let bulk = bulk::Bulk::open(&config)?;
        let udap =
            udap::Udap::open(&config.udap, &config.data_dir, &config.fhir_base())?.map(Arc::new);
        Ok((
            Self {
                bulk: Arc::new(bulk),
                rate: Arc::new(pipeline::ratelimit::RateLimiter::new(&config.limits)),
                audit: Arc::new(audit),
                consent: Arc::new(consent),
                config: Arc::new(config),
                upstream,
                state,
                keys: Arc::new(keys),
                federation,
                udap,
                mfa_secrets: Arc::new(mfa_secrets),
            },
            embedded,
        ))
    }

    /// The context upstreams need for one request.
    pub fn request_context(&self, request_id: &str) -> upstream::RequestContext {
        upstream::RequestContext {
            base: self.config.fhir_base(),
            request_id: request_id.to_owned(),
            default_page_size: self.config.limits.default_page_size,
            max_page_size: self.config.limits.max_page_size,
        }
    }
}
