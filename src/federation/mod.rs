//! Federated sign-in: fhirgate as an OpenID Connect relying party of an
//! external provider (e.g. Microsoft Entra ID), through the `openidconnect`
//! crate. Protocol only; no HTTP framework here (the adapter is
//! `http::ui::federated`, which also stores the [`Pending`] request).
//!
//! Flow (OpenID Connect Core 1.0 §3.1, authorization code flow):
//! 1. [`Federation::begin`]: discover the provider (cached, see
//!    [`METADATA_TTL`]), build the authorization URL with PKCE S256 (RFC 7636),
//!    a random `state` and a random `nonce`; the caller keeps the [`Pending`].
//! 2. The provider signs the person in and redirects back with `code` + `state`.
//! 3. [`Federation::complete`]: exchange the code (client_secret_basic, the
//!    PKCE verifier), then verify the id_token (§3.1.3.7): signature by the
//!    provider's JWKS, `iss` exactly the configured issuer, `aud` our client
//!    id (and no untrusted other audience), `exp` against [`Clock`], `nonce`
//!    equal to ours. The verified claims name the local user
//!    (`federation.username_claims`) and, optionally, the organization they
//!    act for (`federation.organization_claim`). The provider's `acr`,
//!    `amr` and `auth_time` are kept as the sign-in's assurance (issue 11).
//!
//! More assurance can be asked for ([`Ask`]): `acr_values`, `prompt=login`
//! and `max_age` go into the authorization request; with `max_age`, the
//! id_token must carry an `auth_time` no older than that (Core §3.1.3.7
//! item 13, one minute of clock skew allowed). What acr comes back is the
//! provider's word: the assurance policy judges it, not this module.
//!
//! Every failure is a [`FederationError`]: what the person is told is
//! [`FederationError::public_message`]; what the log gets is its `Display`
//! (never a token, code or secret).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use openidconnect::{
    core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreProviderMetadata},
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use smart_launch::assurance::Assurance;
use tokio::sync::RwLock;
use url::Url;

use crate::config::FederationConfig;

pub mod client;

use client::OidcClient;

/// How long discovered metadata and keys are reused before discovery runs
/// again (so a provider's key rotation is picked up).
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The callback path on this server (the redirect URI registered at the provider).
pub const CALLBACK_PATH: &str = "/login/federated/callback";
/// Timeout for each call to the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The time id_tokens are checked against (injectable for tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What must survive the round trip through the provider (stored server-side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The `state` sent; the callback must return exactly this.
    pub state: String,
    /// The `nonce` sent; the id_token must carry exactly this.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge was sent.
    pub pkce_verifier: String,
    /// Where to go after signing in (a local path, already checked).
    pub next: String,
    /// The `max_age` asked for, seconds, if any.
    #[serde(default)]
    pub max_age: Option<i64>,
}

/// What to ask the provider for beyond a sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ask {
    /// `acr_values`, in order of preference.
    pub acr_values: Vec<String>,
    /// `prompt=login`: authenticate again even with a session at the provider.
    pub login: bool,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The local user name the claims map to.
    pub username: String,
    /// The provider's subject identifier (for the log).
    pub subject: String,
    /// The organization `federation.organization_claim` states, if set and
    /// present (`Organization/<id>`).
    pub organization: Option<String>,
    /// The provider's `acr`, `amr` and `auth_time`.
    pub assurance: Assurance,
}

/// Clock skew allowed on `auth_time` against `max_age`, seconds.
const AUTH_TIME_SKEW: i64 = 60;

/// Why federated sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// Discovery or a call to the provider failed at the transport level.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// No pending sign-in for this browser (no cookie, unknown or expired).
    #[error("no pending federated sign-in for this browser")]
    NoPending,
    /// The callback's `state` is not the one we sent.
    #[error("state mismatch")]
    BadState,
    /// The provider answered the authorization request with an error.
    #[error("provider returned error `{0}`")]
    ProviderRefused(String),
    /// The callback lacks a code.
    #[error("callback without a code")]
    MissingCode,
    /// The token endpoint refused the code (or answered nonsense).
    #[error("code exchange failed: {0}")]
    CodeExchange(String),
    /// The id_token is missing or failed verification.
    #[error("id_token rejected: {0}")]
    InvalidIdToken(String),
    /// The verified claims name no local user (or none of the configured claims is present).
    #[error("no local account for the federated identity")]
    NoLocalUser,
}

impl FederationError {
    /// The message shown on the error page (no internal detail).
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => {
                "The identity provider could not be reached. Please try again later."
            }
            Self::NoPending => {
                "This sign-in attempt is unknown or has expired. Please start signing in again."
            }
            Self::BadState => {
                "The answer from the identity provider does not belong to this sign-in attempt. \
                 Please start signing in again."
            }
            Self::ProviderRefused(_) | Self::MissingCode => {
                "The identity provider did not sign you in."
            }
            Self::CodeExchange(_) | Self::InvalidIdToken(_) => {
                "The identity provider's answer could not be verified, so you are not signed in."
            }
            Self::NoLocalUser => {
                "You signed in with the identity provider, but there is no account for you here. \
                 Ask an administrator to create one."
            }
        }
    }
}

/// The relying party for one configured provider. Shared by all requests.
pub struct Federation {
    /// The `[federation]` section.
    config: FederationConfig,
    /// `{public_url}/login/federated/callback`.
    redirect_uri: RedirectUrl,
    /// HTTP client for discovery, JWKS and token calls (no redirects followed).
    http: reqwest::Client,
    /// The discovered client and when discovery ran.
    cached: RwLock<Option<(Arc<OidcClient>, Instant)>>,
    /// Now, for id_token expiry.
    clock: Clock,
}

impl Federation {
    /// A relying party for `config`, answering at `public_url`. Discovery
    /// happens on first use, so a provider outage does not stop start-up.
    pub fn new(config: &FederationConfig, public_url: &Url) -> anyhow::Result<Self> {
        let redirect = format!(
            "{}{CALLBACK_PATH}",
            public_url.as_str().trim_end_matches('/')
        );
        let redirect = RedirectUrl::new(redirect)
            .map_err(|e| anyhow::anyhow!("federation redirect URI: {e}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("federation HTTP client: {e}"))?;
        Ok(Self {
            config: config.clone(),
            redirect_uri: redirect,
            http,
            cached: RwLock::new(None),
            clock: Arc::new(Utc::now),
        })
    }

    /// Replaces the clock id_token expiry is checked against.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The sign-in button text.
    pub fn display_name(&self) -> &str {
        &self.config.display_name
    }

    /// The redirect URI to register at the provider.
    pub fn redirect_uri(&self) -> &str {
        self.redirect_uri.as_str()
    }

    /// The discovered client (cached for [`METADATA_TTL`]; failures are not cached).
    async fn client(&self) -> Result<Arc<OidcClient>, FederationError> {
        if let Some((c, at)) = self.cached.read().await.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(c.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| FederationError::Unavailable(format!("issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| FederationError::Unavailable(format!("discovery: {}", chain(&e))))?;
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_uri.clone());
        let client = Arc::new(client);
        *self.cached.write().await = Some((client.clone(), Instant::now()));
        tracing::info!(issuer = %self.config.issuer, "federation: provider discovered");
        Ok(client)
    }

    /// Forgets the discovered metadata (after a signature failure: the
    /// provider may have rotated its keys).
    async fn forget(&self) {
        *self.cached.write().await = None;
    }

    /// Starts a sign-in: the provider URL to send the browser to and what
    /// the caller must keep until the callback.
    pub async fn begin(&self, next: &str, ask: &Ask) -> Result<(Url, Pending), FederationError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        for acr in &ask.acr_values {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        if ask.login {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        if let Some(m) = ask.max_age {
            request = request.set_max_age(Duration::from_secs(m.max(0).unsigned_abs()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next: next.to_owned(),
            max_age: ask.max_age,
        };
        Ok((url, pending))
    }

    /// Finishes a sign-in whose `state` the caller has already matched:
    /// exchanges `code` and verifies the id_token.
    pub async fn complete(
        &self,
        pending: &Pending,
        code: &str,
    ) -> Result<Identity, FederationError> {
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| FederationError::CodeExchange(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(e) => {
                    FederationError::Unavailable(format!("token endpoint: {}", chain(&e)))
                }
                other => FederationError::CodeExchange(describe_token_error(&other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| FederationError::InvalidIdToken("no id_token in the response".into()))?;
        let clock = self.clock.clone();
        let verifier = client.id_token_verifier().set_time_fn(move || clock());
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = match id_token.claims(&verifier, &nonce) {
            Ok(c) => c,
            Err(e) => {
                if matches!(
                    e,
                    openidconnect::ClaimsVerificationError::SignatureVerification(_)
                ) {
                    self.forget().await;
                }
                return Err(FederationError::InvalidIdToken(e.to_string()));
            }
        };
        let username = client::username(claims, &self.config.username_claims)
            .ok_or(FederationError::NoLocalUser)?;
        let organization = self
            .config
            .organization_claim
            .as_deref()
            .and_then(|name| client::organization(claims, name));
        let auth_time = claims.auth_time().map(|t| t.timestamp());
        if let Some(max_age) = pending.max_age {
            let now = (self.clock)().timestamp();
            match auth_time {
                Some(t) if now - t <= max_age + AUTH_TIME_SKEW => {}
                Some(_) => {
                    return Err(FederationError::InvalidIdToken(format!(
                        "auth_time is older than the max_age of {max_age} s asked for"
                    )))
                }
                None => {
                    return Err(FederationError::InvalidIdToken(
                        "no auth_time, although max_age was asked for".into(),
                    ))
                }
            }
        }
        let assurance = assurance_of(claims);
        Ok(Identity {
            username,
            subject: claims.subject().as_str().to_owned(),
            organization,
            assurance,
        })
    }
}

/// The `acr`, `amr` and `auth_time` a verified id_token asserts (also
/// read from a UDAP Tiered OAuth identity provider's, `udap::tiered`).
pub fn assurance_of<AC, GC>(claims: &openidconnect::IdTokenClaims<AC, GC>) -> Assurance
where
    AC: openidconnect::AdditionalClaims,
    GC: openidconnect::GenderClaim,
{
    Assurance {
        acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
        amr: claims
            .auth_method_refs()
            .map(|v| v.iter().map(|m| m.as_str().to_owned()).collect())
            .unwrap_or_default(),
        auth_time: claims.auth_time().map(|t| t.timestamp()),
    }
}

/// A token-endpoint failure, described without the response body (which
/// could hold tokens).
fn describe_token_error<RE: std::error::Error + 'static>(
    e: &RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error_description() {
            Some(d) => format!("provider error `{}`: {d}", r.error().as_ref()),
            None => format!("provider error `{}`", r.error().as_ref()),
        },
        RequestTokenError::Request(e) => format!("transport: {}", chain(e)),
        RequestTokenError::Parse(e, _) => format!("unreadable token response at `{}`", e.path()),
        RequestTokenError::Other(m) => m.clone(),
    }
}

/// An error with its sources, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_messages_hold_no_detail() {
        let cases = [
            FederationError::Unavailable("dns for secret.internal".into()),
            FederationError::CodeExchange("invalid_grant: code abc".into()),
            FederationError::InvalidIdToken("Invalid nonce: nonce mismatch".into()),
            FederationError::ProviderRefused("access_denied".into()),
        ];
        for e in cases {
            let m = e.public_message();
            assert!(
                !m.contains("secret") && !m.contains("abc") && !m.contains("nonce"),
                "{m}"
            );
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn redirect_uri_is_built_on_the_public_url() {
        let cfg = FederationConfig {
            issuer: "https://op.example".into(),
            client_id: "c".into(),
            client_secret: "s".into(),
            display_name: "Sign in".into(),
            scopes: vec!["openid".into()],
            username_claims: vec!["sub".into()],
            organization_claim: None,
        };
        let f = Federation::new(&cfg, &Url::parse("https://gw.example/").unwrap()).unwrap();
        assert_eq!(
            f.redirect_uri(),
            "https://gw.example/login/federated/callback"
        );
    }
}
