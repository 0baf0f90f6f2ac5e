//! The scale-out suite's small helpers: a Backend Services client that
//! registers itself over RFC 7591 (its own RSA key, inline JWKS), PKCE and
//! reading a JWT's claims.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use conformance_tests::TestResult;
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A Backend Services client with its own key, registered over the API.
pub struct KeyClient {
    key_pem: String,
    kid: String,
    /// Its JWKS (to register).
    pub jwks: Value,
}

impl KeyClient {
    pub fn new() -> TestResult<Self> {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        let kid = "scale-out-1".to_owned();
        let jwks = json!({"keys": [{
            "kty": "RSA", "alg": "RS384", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        }]});
        Ok(Self {
            key_pem: key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)?.to_string(),
            kid,
            jwks,
        })
    }

    /// A client assertion of `client_id` for `token_endpoint` (fresh `jti`).
    pub fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": token_endpoint,
            "exp": now + 240, "iat": now, "jti": format!("so-{}", rand::random::<u64>()),
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes())
            .map_err(|e| e.to_string())?;
        jsonwebtoken::encode(&header, &claims, &key).map_err(|e| e.to_string())
    }
}

/// A fresh PKCE verifier and its S256 challenge (RFC 7636 §4.2).
pub fn pkce() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// The payload of a JWT (unverified), for reading claims.
pub fn claims(jwt: &str) -> Value {
    jwt.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}
