//! The upstream's address, credentials and HTTP client for `$export`, and
//! reading its answers (error text, `Retry-After`).

use super::*;

/// The upstream's address, credentials and an HTTP client for `$export`.
pub(super) struct Upstream {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    pub(super) rewrite: UpstreamBase,
    pub(super) auth: Auth,
}

impl Upstream {
    pub(super) fn new(app: &AppState) -> anyhow::Result<Self> {
        let cfg = &app.config.upstream;
        let base = cfg
            .url
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no HTTP upstream is configured"))?;
        // No overall timeout (files can be large); a stalled read still ends.
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs.max(1)))
            .read_timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fhirgate/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let auth = Auth::from_config(cfg, &http)?;
        Ok(Self {
            http,
            rewrite: UpstreamBase::new(&base),
            base,
            auth,
        })
    }

    /// Whether `url` is on the upstream's origin (scheme, host, port).
    pub(super) fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// A request to the upstream's origin with fhirgate's upstream token.
    pub(super) async fn request(
        &self,
        method: reqwest::Method,
        url: Url,
    ) -> Result<reqwest::RequestBuilder, String> {
        let mut b = self.http.request(method, url);
        if let Some(h) = self
            .auth
            .header()
            .await
            .map_err(|e| format!("upstream credentials: {}", e.message))?
        {
            b = b.header(header::AUTHORIZATION, h);
        }
        Ok(b)
    }
}

/// The body of a failed upstream answer, shortened (an OperationOutcome's
/// diagnostics when there is one).
pub(super) async fn outcome_text(answer: reqwest::Response) -> String {
    let bytes = answer.bytes().await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let text = v["issue"][0]["diagnostics"]
        .as_str()
        .or_else(|| v["issue"][0]["details"]["text"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned());
    text.chars().take(300).collect()
}

/// `Retry-After` in seconds, 1–60 (default 2).
pub(super) fn retry_after(h: &header::HeaderMap) -> u64 {
    h.get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(2)
        .clamp(1, 60)
}
