//! A SMART Backend Services client written from the spec (SMART App Launch
//! 2.2 "Backend Services"; RFC 7523): it registers itself with
//! `fhirgate client add` (the operator's command line, a public interface),
//! then authenticates with a signed RS384 client assertion to obtain a
//! `system/` access token by `client_credentials`.

use std::{
    path::Path,
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::{json, Value};

use crate::TestResult;

/// A registered Backend Services client and its private key.
pub struct BackendClient {
    /// Issued `client_id`.
    pub client_id: String,
    /// PKCS#1 PEM of the private key.
    key_pem: String,
    /// Key id published in the client's JWKS.
    kid: String,
}

impl BackendClient {
    /// Generates a key, writes its JWKS and registers the client with the
    /// `fhirgate` binary against `data_dir` (before `serve` starts).
    pub fn register(bin: &Path, data_dir: &Path, scope: &str) -> TestResult<Self> {
        Self::register_with(bin, data_dir, scope, &[])
    }

    /// [`Self::register`] with extra `FHIRGATE_*` settings for the command
    /// (e.g. `FHIRGATE_DATABASE_URL`, so the client lands in PostgreSQL).
    pub fn register_with(
        bin: &Path,
        data_dir: &Path,
        scope: &str,
        env: &[(&str, &str)],
    ) -> TestResult<Self> {
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048)?;
        let kid = "conformance-key-1".to_owned();
        let jwk = json!({
            "kty": "RSA", "alg": "RS384", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        std::fs::create_dir_all(data_dir)?;
        let jwks_file = data_dir.join("client-jwks.json");
        std::fs::write(&jwks_file, json!({"keys": [jwk]}).to_string())?;
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("FHIRGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let out = cmd
            .env("FHIRGATE_DATA_DIR", data_dir)
            .env("FHIRGATE_DEMO", "0")
            .args([
                "client",
                "add",
                "--name",
                "conformance backend",
                "--auth",
                "private_key_jwt",
                "--grant",
                "client_credentials",
                "--scope",
                scope,
                "--jwks-file",
            ])
            .arg(&jwks_file)
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "fhirgate client add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let reg: Value = serde_json::from_slice(&out.stdout)?;
        let client_id = reg["client_id"]
            .as_str()
            .ok_or("no client_id in the registration")?
            .to_owned();
        let key_pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)?.to_string();
        Ok(Self {
            client_id,
            key_pem,
            kid,
        })
    }

    /// A signed client assertion for `token_endpoint`.
    pub fn assertion(&self, token_endpoint: &str) -> TestResult<String> {
        self.assertion_with(token_endpoint, None)
    }

    /// [`Self::assertion`] carrying UDAP authorization `extensions` (for
    /// example `{"hl7-b2b": {...}}`, FAST Security B2B).
    pub fn assertion_with(
        &self,
        token_endpoint: &str,
        extensions: Option<&Value>,
    ) -> TestResult<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let mut claims = json!({
            "iss": self.client_id, "sub": self.client_id, "aud": token_endpoint,
            "exp": now + 240, "iat": now, "jti": format!("{}-{}", now, rand::random::<u64>()),
        });
        if let Some(ext) = extensions {
            claims["extensions"] = ext.clone();
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384);
        header.kid = Some(self.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes())?;
        Ok(jsonwebtoken::encode(&header, &claims, &key)?)
    }

    /// `client_credentials` at `{public_url}/auth/token`; returns the access token.
    pub fn token(&self, public_url: &str, scope: &str) -> TestResult<String> {
        self.token_with(public_url, scope, None)
    }

    /// [`Self::token`] with UDAP authorization `extensions` in the assertion.
    pub fn token_with(
        &self,
        public_url: &str,
        scope: &str,
        extensions: Option<&Value>,
    ) -> TestResult<String> {
        let endpoint = format!("{public_url}/auth/token");
        let assertion = self.assertion_with(&endpoint, extensions)?;
        let resp = reqwest::blocking::Client::new()
            .post(&endpoint)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()?;
        let status = resp.status().as_u16();
        let body: Value = resp.json()?;
        if status != 200 {
            return Err(format!("token request failed ({status}): {body}").into());
        }
        Ok(body["access_token"]
            .as_str()
            .ok_or("no access_token")?
            .to_owned())
    }
}
