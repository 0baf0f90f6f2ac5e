//! How the HTTP upstream authenticates itself to the FHIR server: no auth, a
//! static bearer token, or Microsoft Entra ID client credentials (RFC 6749
//! §4.4, as Azure Health Data Services expects) via the `oauth2` crate.
//!
//! The Entra token is cached until shortly before it expires (the margin is
//! 10 % of its lifetime, at most 5 minutes) and refreshed under one async
//! mutex, so a burst of requests with an expired token makes one token call,
//! not one each. Time is a parameter ([`EntraToken::header_at`]) so expiry is
//! testable without sleeping. Tokens are never logged. The audit ledger's
//! anchor exporter (`audit::anchor`) uses the same [`EntraToken`] towards
//! Azure Confidential Ledger.

use std::time::{Duration, Instant};

use oauth2::{
    basic::BasicClient, AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, Scope,
    TokenResponse, TokenUrl,
};
use reqwest::header::HeaderValue;
use tokio::sync::Mutex;

use crate::{
    config::{EntraConfig, UpstreamAuthKind, UpstreamConfig},
    error::{FhirError, FhirResult},
};

/// Largest margin before expiry at which a cached token is refreshed.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Lifetime assumed when the token endpoint gives no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// A `BasicClient` whose token endpoint is set.
type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The configured way to authenticate to the upstream.
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// A fixed `Authorization: Bearer …` value (marked sensitive).
    Bearer(HeaderValue),
    /// Entra ID client credentials with a cached token.
    Entra(Box<EntraToken>),
}

impl Auth {
    /// Builds the auth mode from config; `http` is the upstream's pooled client
    /// (no redirects, timeouts set), reused for the token endpoint.
    pub fn from_config(cfg: &UpstreamConfig, http: &reqwest::Client) -> anyhow::Result<Self> {
        match cfg.auth {
            UpstreamAuthKind::None => Ok(Self::None),
            UpstreamAuthKind::Bearer => {
                let token = cfg
                    .bearer_token
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!("upstream.bearer_token is required for auth = \"bearer\"")
                    })?;
                Ok(Self::Bearer(bearer(token).map_err(|_| {
                    anyhow::anyhow!(
                        "upstream.bearer_token contains characters not allowed in a header"
                    )
                })?))
            }
            UpstreamAuthKind::Entra => {
                let e = cfg.entra.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("upstream.entra is required for auth = \"entra\"")
                })?;
                Ok(Self::Entra(Box::new(EntraToken::new(e, http))))
            }
        }
    }

    /// The `Authorization` value for the next upstream call, if any.
    pub async fn header(&self) -> FhirResult<Option<HeaderValue>> {
        match self {
            Self::None => Ok(None),
            Self::Bearer(h) => Ok(Some(h.clone())),
            Self::Entra(t) => t.header_at(Instant::now()).await.map(Some),
        }
    }

    /// Forgets a cached token (after the upstream answered 401 to it).
    pub async fn invalidate(&self) {
        if let Self::Entra(t) = self {
            t.invalidate().await;
        }
    }
}

/// `Bearer {token}` as a sensitive header value.
fn bearer(token: &str) -> Result<HeaderValue, reqwest::header::InvalidHeaderValue> {
    let mut h = HeaderValue::from_str(&format!("Bearer {token}"))?;
    h.set_sensitive(true);
    Ok(h)
}

/// A cached access token.
struct Cached {
    /// `Authorization` value.
    header: HeaderValue,
    /// When to fetch a new one (before the real expiry).
    refresh_at: Instant,
}

/// Entra ID client-credentials token source with its cache.
pub struct EntraToken {
    /// OAuth2 client with the token endpoint, id and secret.
    client: TokenClient,
    /// `{fhir service}/.default`.
    scope: Scope,
    /// HTTP client for the token endpoint (no redirects: RFC 6749 §10 SSRF advice).
    http: reqwest::Client,
    /// The current token; the mutex is held across a refresh so callers queue
    /// behind one token request instead of each making their own.
    cache: Mutex<Option<Cached>>,
}

impl EntraToken {
    /// A token source for `cfg`; `http` (no redirects, timeouts set) also
    /// calls the token endpoint. Used by the upstream and the ledger anchor.
    pub fn new(cfg: &EntraConfig, http: &reqwest::Client) -> Self {
        let client = BasicClient::new(ClientId::new(cfg.client_id.clone()))
            .set_client_secret(ClientSecret::new(cfg.client_secret.clone()))
            .set_token_uri(TokenUrl::from_url(cfg.token_url.clone()))
            // Entra's documented shape: client_id and client_secret in the form body.
            .set_auth_type(AuthType::RequestBody);
        Self {
            client,
            scope: Scope::new(cfg.scope.clone()),
            http: http.clone(),
            cache: Mutex::new(None),
        }
    }

    /// Forgets the cached token (after a server answered 401 to it).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// The `Authorization` value valid at `now`, fetching a new token if needed.
    pub async fn header_at(&self, now: Instant) -> FhirResult<HeaderValue> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if now < c.refresh_at {
                return Ok(c.header.clone());
            }
        }
        let token = self
            .client
            .exchange_client_credentials()
            .add_scope(self.scope.clone())
            .request_async(&self.http)
            .await
            .map_err(|e| FhirError::bad_gateway(format!("Entra token request failed: {e}")))?;
        let lifetime = token.expires_in().unwrap_or(DEFAULT_LIFETIME);
        let header = bearer(token.access_token().secret())
            .map_err(|_| FhirError::bad_gateway("Entra token is not a valid header value"))?;
        *cache = Some(Cached {
            header: header.clone(),
            refresh_at: now + lifetime.saturating_sub(refresh_margin(lifetime)),
        });
        tracing::debug!(
            lifetime_secs = lifetime.as_secs(),
            "upstream token refreshed"
        );
        Ok(header)
    }
}

/// How long before expiry a token is refreshed: 10 % of its lifetime, at most 5 minutes.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_REFRESH_MARGIN)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn refresh_margin_is_ten_percent_capped_at_five_minutes() {
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(refresh_margin(Duration::from_secs(0)), Duration::ZERO);
    }

    #[test]
    fn bearer_values_are_sensitive_and_reject_newlines() {
        assert!(bearer("abc").unwrap().is_sensitive());
        assert!(bearer("a\r\nX-Evil: 1").is_err());
    }
}
