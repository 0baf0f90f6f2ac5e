//! The server's rotatable RS256 signing keys: access tokens (RFC 9068) and
//! id tokens (OpenID Connect Core §2, which SMART App Launch 2.2 requires to
//! be RS256) are signed with the current key and verified against every key
//! still kept. The public halves are published as a JWKS (RFC 7517 §5) at
//! the server's `jwks_uri`; each `kid` is the key's RFC 7638 JWK thumbprint,
//! so it is stable across restarts and identical on every replica that
//! shares the key directory.
//!
//! Rotation keeps the previous [`PREVIOUS_KEYS_KEPT`] keys for verification,
//! so tokens minted shortly before a rotation keep working until they expire.
//!
//! Time is a parameter ([`VerifyOptions::now`]); storage is [`store`].
//!
//! A token whose signature verified once is remembered (bounded, by SHA-256
//! of the token and the verifying `kid`, see [`cache`]): the FHIR endpoint
//! checks the same bearer token on every request, and the RSA computation
//! is then skipped. The header and claims checks run every time.

mod cache;
mod jwt;
mod store;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub(crate) use jwt::{audience_contains, numeric_date, typ_matches, Unverified};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How many keys older than the current one stay valid for verification.
pub const PREVIOUS_KEYS_KEPT: usize = 2;

/// Why a key operation or a token verification failed. The verification
/// variants' messages are safe to show a client: they never echo the token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key directory or a key file could not be read or written.
    #[error("key storage {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file named like a key is not a usable RSA PKCS#8 key (fail closed:
    /// we never silently replace it).
    #[error("key file {path} is not a usable RSA PKCS#8 private key: {reason}")]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// RSA key generation failed.
    #[error("RSA key generation failed: {0}")]
    Generate(#[source] rsa::Error),
    /// A key could not be encoded (PKCS#1/PKCS#8).
    #[error("key encoding failed: {0}")]
    Encode(String),
    /// Signing failed (including claims that do not serialize).
    #[error("signing failed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    /// Not a compact JWS with a JSON header and claims set (RFC 7515 §7.1).
    #[error("token is not a well-formed JWT")]
    Malformed,
    /// `alg` is `none`: unsigned tokens are never accepted.
    #[error("unsigned tokens (alg none) are not accepted")]
    Unsigned,
    /// `alg` is anything but RS256.
    #[error("token alg is not accepted; RS256 is required")]
    Algorithm,
    /// The header has `crit` extensions, none of which we understand (RFC 7515 §4.1.11).
    #[error("token has critical header extensions that are not understood")]
    Critical,
    /// The header `typ` is not the expected one (RFC 9068 §4).
    #[error("token type is not accepted here")]
    Type,
    /// No `kid`, or a `kid` that is not one of the kept keys.
    #[error("token was not signed by a current key of this server")]
    UnknownKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    Signature,
    /// `exp` is missing or not a NumericDate.
    #[error("token has no valid exp claim")]
    MissingExp,
    /// `exp` has passed.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("token issuer is not accepted")]
    Issuer,
    /// `aud` does not name the expected audience.
    #[error("token audience is not accepted")]
    Audience,
    /// The claims do not have the expected shape.
    #[error("token claims are malformed")]
    Claims,
}

/// What [`KeySet::verify`] checks beyond the signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The current time, seconds since the epoch.
    pub now: i64,
    /// Clock-skew allowance for `exp` and `nbf`, seconds.
    pub leeway_secs: i64,
    /// Required `iss`, when given.
    pub issuer: Option<&'a str>,
    /// Required `aud` member, when given.
    pub audience: Option<&'a str>,
    /// Required header `typ` (e.g. `at+jwt`), when given.
    pub typ: Option<&'a str>,
}

/// One RSA key, ready to sign and verify.
#[derive(Clone)]
struct SigningKey {
    /// Its file's sequence number: higher is newer.
    seq: u64,
    /// RFC 7638 thumbprint.
    kid: String,
    /// Public modulus, base64url.
    n: String,
    /// Public exponent, base64url.
    e: String,
    /// Private key (PKCS#1 DER inside) for RS256 signing.
    encoding: EncodingKey,
    /// Public key for verification.
    decoding: DecodingKey,
}

impl SigningKey {
    fn new(seq: u64, key: &RsaPrivateKey) -> Result<Self, KeyError> {
        let n_raw = key.n().to_bytes_be();
        let e_raw = key.e().to_bytes_be();
        let der = key
            .to_pkcs1_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let (n, e) = (
            URL_SAFE_NO_PAD.encode(&n_raw),
            URL_SAFE_NO_PAD.encode(&e_raw),
        );
        Ok(Self {
            seq,
            kid: rsa_thumbprint(&n, &e),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            decoding: DecodingKey::from_rsa_raw_components(&n_raw, &e_raw),
            n,
            e,
        })
    }
}

/// RFC 7638 §3: SHA-256 over the required RSA members in lexicographic
/// order with no whitespace, base64url-encoded.
pub fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The current signing key plus the previous ones still trusted.
///
/// Clones share the cache of verified signatures (see the module docs).
#[derive(Clone)]
pub struct KeySet {
    /// Newest first; never empty (every constructor ensures one key).
    keys: Vec<SigningKey>,
    /// Tokens whose signature verified, by digest, with the verifying `kid`.
    verified: Arc<cache::VerifiedCache>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

impl KeySet {
    /// Loads the keys in `dir` (normally `{data_dir}/keys`), creating the
    /// directory and a first key when there is none. The newest
    /// `1 + PREVIOUS_KEYS_KEPT` files are used; older ones are ignored (and
    /// deleted by the next [`KeySet::rotate`]).
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        Self::load_or_create_with(dir, store::generate)
    }

    fn load_or_create_with(
        dir: &Path,
        generate: impl FnOnce() -> Result<RsaPrivateKey, KeyError>,
    ) -> Result<Self, KeyError> {
        store::ensure_dir(dir)?;
        let mut files = store::list(dir)?;
        if files.is_empty() {
            let path = store::write_key(dir, 1, &generate()?)?;
            files.push((1, path));
        }
        let keys = files
            .iter()
            .take(1 + PREVIOUS_KEYS_KEPT)
            .map(|(seq, path)| SigningKey::new(*seq, &store::read_key(path)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_keys(keys))
    }

    fn from_keys(keys: Vec<SigningKey>) -> Self {
        Self {
            keys,
            verified: Arc::default(),
        }
    }

    /// Makes a freshly generated key current, keeps the previous
    /// [`PREVIOUS_KEYS_KEPT`] for verification, and deletes older key files.
    pub fn rotate(&mut self, dir: &Path) -> Result<(), KeyError> {
        self.rotate_to(dir, &store::generate()?)
    }

    fn rotate_to(&mut self, dir: &Path, key: &RsaPrivateKey) -> Result<(), KeyError> {
        store::ensure_dir(dir)?;
        let on_disk = store::list(dir)?;
        let newest = on_disk.first().map_or(0, |(seq, _)| *seq);
        let seq = newest.max(self.keys.first().map_or(0, |k| k.seq)) + 1;
        store::write_key(dir, seq, key)?;
        self.keys.insert(0, SigningKey::new(seq, key)?);
        self.keys.truncate(1 + PREVIOUS_KEYS_KEPT);
        let oldest_kept = self.keys.last().map_or(seq, |k| k.seq);
        for (_, path) in on_disk.iter().filter(|(s, _)| *s < oldest_kept) {
            store::remove(path)?;
        }
        // Not needed for safety (a hit also needs the `kid` in `keys`), but
        // no point keeping what can no longer hit here.
        let kept: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        self.verified.retain_kids(&kept);
        Ok(())
    }

    /// The `kid` of the key new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        self.keys.first().map_or("", |k| k.kid.as_str())
    }

    /// The public JWKS (RFC 7517 §5) of every kept key, current first.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| json!({"kty": "RSA", "n": k.n, "e": k.e, "kid": k.kid, "alg": "RS256", "use": "sig"}))
            .collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` with the current key: RS256, header `kid` = current,
    /// `typ` = the given type or `JWT`.
    pub fn sign<T: Serialize>(&self, claims: &T, typ: Option<&str>) -> Result<String, KeyError> {
        let key = self.keys.first().ok_or(KeyError::UnknownKey)?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        if let Some(typ) = typ {
            header.typ = Some(typ.to_owned());
        }
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(KeyError::Sign)
    }

    /// Verifies a token this server signed: RS256 only, `kid` one of the
    /// kept keys, `exp` required and later than `now - leeway`, `nbf` (if
    /// any) not after `now + leeway`, and `iss`, `aud`, `typ` when asked.
    /// The signature of a token that verified before under the same, still
    /// kept, key is not computed again (see the module docs).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        v: &VerifyOptions,
    ) -> Result<T, KeyError> {
        let raw = Unverified::parse(token).ok_or(KeyError::Malformed)?;
        match raw.alg() {
            Some("RS256") => {}
            Some(alg) if alg.eq_ignore_ascii_case("none") => return Err(KeyError::Unsigned),
            _ => return Err(KeyError::Algorithm),
        }
        if raw.header.contains_key("crit") {
            return Err(KeyError::Critical);
        }
        if let Some(expected) = v.typ {
            if !typ_matches(raw.header.get("typ").and_then(Value::as_str), expected) {
                return Err(KeyError::Type);
            }
        }
        let kid = raw.kid().ok_or(KeyError::UnknownKey)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(KeyError::UnknownKey)?;
        let digest = cache::digest(token);
        if !self.verified.verified(&digest, &key.kid) {
            let mut validation = Validation::new(Algorithm::RS256);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            validation.validate_aud = false;
            jsonwebtoken::decode::<serde::de::IgnoredAny>(token, &key.decoding, &validation)
                .map_err(|_| KeyError::Signature)?;
            self.verified.insert(digest, &key.kid);
        }
        check_claims(&raw.claims, v)?;
        serde_json::from_value(Value::Object(raw.claims)).map_err(|_| KeyError::Claims)
    }
}

/// The registered-claim checks of [`KeySet::verify`] (RFC 7519 §4.1).
fn check_claims(
    claims: &serde_json::Map<String, Value>,
    v: &VerifyOptions,
) -> Result<(), KeyError> {
    let exp = numeric_date(claims, "exp")
        .ok()
        .flatten()
        .ok_or(KeyError::MissingExp)?;
    if exp <= v.now.saturating_sub(v.leeway_secs) {
        return Err(KeyError::Expired);
    }
    match numeric_date(claims, "nbf") {
        Err(()) => return Err(KeyError::Claims),
        Ok(Some(nbf)) if nbf > v.now.saturating_add(v.leeway_secs) => {
            return Err(KeyError::NotYetValid)
        }
        Ok(_) => {}
    }
    if let Some(iss) = v.issuer {
        if claims.get("iss").and_then(Value::as_str) != Some(iss) {
            return Err(KeyError::Issuer);
        }
    }
    if let Some(aud) = v.audience {
        if !audience_contains(claims.get("aud"), aud) {
            return Err(KeyError::Audience);
        }
    }
    Ok(())
}
