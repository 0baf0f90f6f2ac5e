//! CDS client authentication (CDS Hooks 2.0 "Trusting CDS Clients"): every
//! service call carries `Authorization: Bearer <JWT>` signed by the CDS
//! client with ES384 or RS384. The header names the key (`kid`) and may
//! name the client's JWK Set (`jku`); `iss` and `jku` must be allow-listed
//! in `[crd] clients`; `aud` must be the exact service URL called; `exp`
//! at most `max_jwt_lifetime_seconds` ahead; `iat` and `jti` present; a
//! `jti` seen before is a replay (the replay cache is in the state store).
//! JWK Sets fetched from `jku` are cached for `jwks_cache_seconds`, and
//! fetched again once when the `kid` is not in the cached set (rotation).
//! Every refusal is a [`Refusal`] (401 with a JSON body).

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::config::{CdsClientConfig, CrdConfig};
use crate::state::StateStore;

/// Longest JWT looked at, bytes (a guard, not a protocol limit).
const MAX_JWT_BYTES: usize = 16 * 1024;

/// Clock-skew allowance, seconds.
const LEEWAY_SECS: i64 = 60;

/// A CDS client whose JWT passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdsClient {
    /// The JWT `iss` (the allow-listed client).
    pub iss: String,
    /// The JWT `sub` (the client id), when given.
    pub sub: Option<String>,
}

/// Why a call was refused (answered 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

fn refuse(why: impl Into<String>) -> Refusal {
    Refusal(why.into())
}

/// Authenticates the CDS client of a call to `service_url`.
pub async fn authenticate(
    authorization: Option<&str>,
    service_url: &str,
    config: &CrdConfig,
    store: &StateStore,
    now: i64,
) -> Result<CdsClient, Refusal> {
    let jwt = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| refuse("a CDS client JWT (Authorization: Bearer) is required"))?;
    if jwt.len() > MAX_JWT_BYTES {
        return Err(refuse("the JWT is too large"));
    }
    let header =
        jsonwebtoken::decode_header(jwt).map_err(|_| refuse("the JWT is not well-formed"))?;
    let alg = match header.alg {
        Algorithm::ES384 | Algorithm::RS384 => header.alg,
        _ => return Err(refuse("the JWT alg must be ES384 or RS384")),
    };
    let kid = header
        .kid
        .as_deref()
        .ok_or_else(|| refuse("the JWT header has no kid"))?;
    let iss = peek_iss(jwt)?;
    let client = config
        .clients
        .iter()
        .find(|c| c.iss == iss)
        .ok_or_else(|| refuse("the JWT iss is not a trusted CDS client"))?;
    let key = client_key(client, header.jku.as_deref(), kid, config).await?;
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS.unsigned_abs();
    validation.set_audience(&[service_url]);
    validation.set_issuer(&[iss.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|e| refuse(describe(&e)))?
        .claims;
    if !claims["iat"].is_number() {
        return Err(refuse("the JWT has no iat"));
    }
    let exp = claims["exp"].as_i64().unwrap_or(i64::MAX);
    if exp > now + config.max_jwt_lifetime_seconds + LEEWAY_SECS {
        return Err(refuse(format!(
            "the JWT exp is more than {} seconds ahead",
            config.max_jwt_lifetime_seconds
        )));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refuse("the JWT has no usable jti"))?;
    let fresh = super::store::jti_first_use(store, &iss, jti, exp, now)
        .await
        .map_err(|_| refuse("the JWT replay cache is unavailable"))?;
    if !fresh {
        return Err(refuse("the JWT jti was already used (replay)"));
    }
    Ok(CdsClient {
        iss,
        sub: claims["sub"].as_str().map(str::to_owned),
    })
}

/// What a jsonwebtoken failure means to the caller.
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => "the JWT signature is invalid".into(),
        K::ExpiredSignature => "the JWT has expired".into(),
        K::InvalidAudience => "the JWT aud is not the service URL called".into(),
        K::InvalidIssuer => "the JWT iss does not match".into(),
        K::ImmatureSignature => "the JWT is not valid yet".into(),
        K::MissingRequiredClaim(c) => format!("the JWT has no {c}"),
        K::InvalidAlgorithm => "the key does not fit the JWT alg".into(),
        _ => "the JWT could not be verified".into(),
    }
}

/// The JWT's `iss`, unverified: only to find the client's keys.
fn peek_iss(jwt: &str) -> Result<String, Refusal> {
    let payload = jwt
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .ok_or_else(|| refuse("the JWT is not well-formed"))?;
    payload["iss"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| refuse("the JWT has no iss"))
}

/// The verification key `kid` of `client`, from the allow-listed `jku`
/// (or the client's configured JWKS).
async fn client_key(
    client: &CdsClientConfig,
    jku: Option<&str>,
    kid: &str,
    config: &CrdConfig,
) -> Result<DecodingKey, Refusal> {
    let url = match jku {
        Some(u) if client.jku.iter().any(|a| a == u) => Some(u.to_owned()),
        Some(_) => return Err(refuse("the JWT jku is not allow-listed for this client")),
        None => match (&client.jwks, client.jku.first()) {
            (Some(jwks), _) => return key_in(jwks, kid),
            (None, Some(u)) => Some(u.clone()),
            (None, None) => None,
        },
    };
    let url = url.ok_or_else(|| refuse("no JWK Set is configured for this client"))?;
    let ttl = Duration::from_secs(config.jwks_cache_seconds);
    if let Some(jwks) = cached(&url, ttl) {
        if let Ok(key) = key_in(&jwks, kid) {
            return Ok(key);
        }
    }
    let jwks = fetch(&url).await?;
    remember(&url, &jwks);
    key_in(&jwks, kid)
}

/// The key `kid` of a JWK Set.
fn key_in(jwks: &Value, kid: &str) -> Result<DecodingKey, Refusal> {
    let set: JwkSet = serde_json::from_value(jwks.clone())
        .map_err(|_| refuse("the client's JWK Set is not valid"))?;
    let jwk = set
        .find(kid)
        .ok_or_else(|| refuse("no key in the client's JWK Set has the JWT's kid"))?;
    DecodingKey::from_jwk(jwk).map_err(|_| refuse("the client's key is not usable"))
}

type Cache = Mutex<HashMap<String, (Instant, Value)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cached(url: &str, ttl: Duration) -> Option<Value> {
    let map = cache().lock().ok()?;
    map.get(url)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn remember(url: &str, jwks: &Value) {
    if let Ok(mut map) = cache().lock() {
        map.insert(url.to_owned(), (Instant::now(), jwks.clone()));
    }
}

async fn fetch(url: &str) -> Result<Value, Refusal> {
    let get = async {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json::<Value>()
            .await
    };
    get.await
        .map_err(|_| refuse("the client's JWK Set could not be fetched from jku"))
}
