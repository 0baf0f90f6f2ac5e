//! The anchor exporter's HTTP side: the Azure Confidential Ledger
//! data-plane calls (`CreateLedgerEntry`, `GetReceipt`) with an Entra ID
//! bearer token, what each answer means, and the retry loop with backoff.

use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};
use serde_json::{json, Value};

use super::{clip, Anchor, TRANSACTION_ID_HEADER};

/// Why one request failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// Worth another attempt now (network, 401 with a fresh token, 408, 429, 5xx).
    Retry(String, Option<Duration>),
    /// Not worth retrying in this pass (other 4xx, a malformed answer).
    Stop(String),
}

impl Failure {
    pub(super) fn text(&self) -> &str {
        match self {
            Self::Retry(s, _) | Self::Stop(s) => s,
        }
    }
}

impl Anchor {
    /// Calls `attempt` up to `tries` times, sleeping the backoff (or the
    /// server's `Retry-After`, capped at `max`) after a retryable failure or
    /// a "not yet" (`Ok(None)`: a receipt still Loading). `Ok(None)` when
    /// every attempt said "not yet".
    pub(super) async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<Option<T>, Failure>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, Failure>>,
    {
        let tries = self.backoff.tries.max(1);
        let mut last = None;
        for n in 0..tries {
            let wait = match attempt().await {
                Ok(Some(v)) => return Ok(Some(v)),
                Ok(None) => {
                    last = None;
                    self.backoff.delay(n)
                }
                Err(Failure::Retry(e, after)) => {
                    last = Some(e);
                    after.unwrap_or_else(|| self.backoff.delay(n))
                }
                Err(stop) => return Err(stop),
            };
            if n + 1 < tries {
                tokio::time::sleep(wait.min(self.backoff.max)).await;
            }
        }
        match last {
            Some(e) => Err(Failure::Retry(e, None)),
            None => Ok(None),
        }
    }

    /// The `Authorization` value (a cached Entra ID token).
    async fn bearer(&self) -> Result<header::HeaderValue, Failure> {
        self.token.header_at(Instant::now()).await.map_err(|e| {
            Failure::Retry(format!("token: {}", e.internal.unwrap_or(e.message)), None)
        })
    }

    /// What a non-200 answer means.
    async fn refused(&self, what: &str, r: reqwest::Response) -> Failure {
        let status = r.status();
        let after = r
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = r.text().await.unwrap_or_default();
        let text = format!("{what} answered {status}: {}", clip(&body));
        if status == StatusCode::UNAUTHORIZED {
            self.token.invalidate().await;
            Failure::Retry(text, Some(Duration::ZERO))
        } else if status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
        {
            Failure::Retry(text, after)
        } else {
            Failure::Stop(text)
        }
    }

    /// `POST /app/transactions`: the transaction id and collection id.
    pub(super) async fn post(
        &self,
        contents: &str,
    ) -> Result<Option<(String, Option<String>)>, Failure> {
        let mut url = self.transactions.clone();
        url.query_pairs_mut()
            .append_pair("api-version", &self.api_version);
        if let Some(c) = &self.collection_id {
            url.query_pairs_mut().append_pair("collectionId", c);
        }
        let r = self
            .http
            .post(url)
            .header(header::AUTHORIZATION, self.bearer().await?)
            .json(&json!({ "contents": contents }))
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("POST: {e}"), None))?;
        if r.status() != StatusCode::OK {
            return Err(self.refused("POST", r).await);
        }
        let id = r
            .headers()
            .get(TRANSACTION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Failure::Stop(format!("POST answered no {TRANSACTION_ID_HEADER}")))?;
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let collection = body["collectionId"].as_str().map(str::to_owned);
        Ok(Some((id, collection)))
    }

    /// `GET /app/transactions/{id}/receipt`: `None` while Loading.
    pub(super) async fn receipt(&self, transaction_id: &str) -> Result<Option<Value>, Failure> {
        let mut url = self.transactions.clone();
        url.path_segments_mut()
            .map_err(|_| Failure::Stop("ledger_url cannot take a path".into()))?
            .push(transaction_id)
            .push("receipt");
        url.query_pairs_mut()
            .append_pair("api-version", &self.api_version);
        let r = self
            .http
            .get(url)
            .header(header::AUTHORIZATION, self.bearer().await?)
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("receipt: {e}"), None))?;
        if r.status() != StatusCode::OK {
            return Err(self.refused("receipt", r).await);
        }
        let body: Value = r
            .json()
            .await
            .map_err(|e| Failure::Stop(format!("receipt is not JSON: {e}")))?;
        match body["state"].as_str() {
            Some("Ready") if body["receipt"].is_object() => Ok(Some(body["receipt"].clone())),
            Some("Loading") => Ok(None),
            _ => Err(Failure::Stop(format!(
                "receipt answer has no Ready receipt: {}",
                clip(&body.to_string())
            ))),
        }
    }
}
