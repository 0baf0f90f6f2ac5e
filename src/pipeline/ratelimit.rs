//! Per-client rate limit of the FHIR API (pipeline stage "limits", right
//! after authentication): a token bucket per OAuth `client_id` of the
//! access token, refilled at `[limits] rate_per_second` up to
//! `rate_burst`. A request finding the bucket empty is answered 429
//! `throttled` with `Retry-After` (the same answer shape as the payer
//! match throttle, [`crate::payer::throttle::too_many`] style).
//!
//! The buckets live in this process: with several replicas behind a load
//! balancer a client may make `replicas × rate` requests per second. (The
//! payer throttle is shared through the state store because it counts rare
//! failed matches; a store round trip on every FHIR request is not worth
//! it for this limit.) Time is a parameter of [`RateLimiter::take`].

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Instant,
};

use axum::http::StatusCode;

use crate::{
    config::Limits,
    error::{FhirError, FhirResult, IssueType},
};

/// Buckets kept before full (idle) ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// One client's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Requests the client may make now (fractional while refilling).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

/// The per-client token buckets of one process.
#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens added per second; 0 means no limit.
    rate: f64,
    /// Bucket size.
    burst: f64,
    /// Client ids never limited.
    exempt: HashSet<String>,
    /// Buckets by client id; never held across an await.
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// The limiter `[limits]` describes.
    pub fn new(limits: &Limits) -> Self {
        Self {
            rate: limits.rate_per_second,
            burst: f64::from(limits.rate_burst.max(1)),
            exempt: limits.rate_exempt_clients.iter().cloned().collect(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a limit is configured.
    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes one token of `client` at `now`; when there is none, the whole
    /// seconds until there is one.
    pub fn take(&self, client: &str, now: Instant) -> Result<(), u64> {
        if !self.enabled() || self.exempt.contains(client) {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + elapsed(b.at, now) * rate < burst);
        }
        let bucket = buckets.entry(client.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + elapsed(bucket.at, now) * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let secs = ((1.0 - bucket.tokens) / self.rate).ceil();
            Err((secs as u64).max(1))
        }
    }

    /// The stage: Ok, or 429 with `Retry-After` for `client`.
    pub fn check(&self, client: &str) -> FhirResult<()> {
        self.take(client, Instant::now()).map_err(too_many)
    }
}

fn elapsed(since: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(since).as_secs_f64()
}

/// The 429 answer, with `Retry-After` (also in the OperationOutcome text).
pub fn too_many(secs: u64) -> FhirError {
    FhirError::new(
        StatusCode::TOO_MANY_REQUESTS,
        IssueType::Throttled,
        format!("too many requests from this client; retry after {secs} seconds"),
    )
    .retry_after(secs)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(rate: f64, burst: u32, exempt: &[&str]) -> RateLimiter {
        RateLimiter::new(&Limits {
            rate_per_second: rate,
            rate_burst: burst,
            rate_exempt_clients: exempt.iter().map(|s| s.to_string()).collect(),
            ..Limits::default()
        })
    }

    #[test]
    fn a_burst_then_the_sustained_rate_per_client() {
        let l = limiter(2.0, 3, &[]);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take("a", t0), Ok(()));
        }
        assert_eq!(l.take("a", t0), Err(1));
        assert_eq!(l.take("b", t0), Ok(()), "another client has its own bucket");
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.take("a", t1), Ok(()), "one token back after 1/rate");
        assert_eq!(l.take("a", t1), Err(1));
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.take("a", t2), Ok(()), "refilled up to the burst only");
        }
        assert!(l.take("a", t2).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_until_the_next_token() {
        let l = limiter(0.1, 1, &[]);
        let t0 = Instant::now();
        assert_eq!(l.take("a", t0), Ok(()));
        assert_eq!(l.take("a", t0), Err(10));
        assert_eq!(l.take("a", t0 + Duration::from_secs(4)), Err(6));
        let e = too_many(6);
        assert_eq!((e.status.as_u16(), e.retry_after), (429, Some(6)));
    }

    #[test]
    fn off_by_default_and_exempt_clients_pass() {
        let off = RateLimiter::new(&Limits::default());
        let t0 = Instant::now();
        assert!(!off.enabled());
        assert!((0..1000).all(|_| off.take("a", t0).is_ok()));
        let l = limiter(1.0, 1, &["pipeline"]);
        assert!((0..100).all(|_| l.take("pipeline", t0).is_ok()));
        assert!(l.take("a", t0).is_ok() && l.take("a", t0).is_err());
    }
}
