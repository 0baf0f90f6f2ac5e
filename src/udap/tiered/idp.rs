//! Whether fhirgate trusts the identity provider a client named in `idp`
//! (HL7 FAST Security "Tiered OAuth": "the data holder first determines
//! whether or not it trusts the IdP ... by retrieving and validating the
//! IdP's UDAP metadata from `{baseURL}/.well-known/udap`").
//!
//! Trusted means: `idp` is an https URL (plain http only to a loopback
//! host); `GET {idp}/.well-known/udap` answers 200 with JSON (at most
//! [`MAX_METADATA_BYTES`], no redirects followed); its `signed_metadata`
//! verifies against one of our trust communities' anchors (chain,
//! validity, key usage, CRLs, signature: [`crate::udap::x5c_jwt::verify`]),
//! with `iss` = `sub` = `idp` exactly (a SAN URI of the signing
//! certificate), `exp` in the future; `scopes_supported` holds `openid` and
//! `udap` (the IG's minimum for IdPs); and the signed
//! `authorization_endpoint` and `token_endpoint` are https (or loopback)
//! URLs. The endpoints used are the signed ones.

use serde_json::Value;

use crate::udap::{x5c_jwt, Udap};

/// Largest metadata document read.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// Clock skew allowed on `iat`.
const LEEWAY: i64 = 60;

/// An identity provider whose signed metadata verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIdp {
    /// The base URL the client named (the `iss` of its id_tokens).
    pub base: String,
    /// Where users are sent.
    pub authorization_endpoint: String,
    /// Where codes are redeemed.
    pub token_endpoint: String,
    /// Where fhirgate registers (absent: the IdP offers no UDAP DCR).
    pub registration_endpoint: Option<String>,
    /// The trust community whose anchor the metadata chains to.
    pub community: String,
}

/// Fetches and checks `{idp}/.well-known/udap` (see the module docs); the
/// error says why the IdP is not trusted (for the log and the client's
/// `error_description`).
pub async fn discover(udap: &Udap, idp: &str, now: i64) -> Result<TrustedIdp, String> {
    if !crate::net::https_or_loopback(idp) {
        return Err("the idp must be an https URL".into());
    }
    let url = format!("{}/.well-known/udap", idp.trim_end_matches('/'));
    let resp = udap
        .http
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("its UDAP metadata could not be fetched: {e}"))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(format!(
            "its UDAP metadata answered HTTP {}",
            resp.status().as_u16()
        ));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
    {
        return Err("its UDAP metadata is too large".into());
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("its UDAP metadata could not be read: {e}"))?;
    if bytes.len() > MAX_METADATA_BYTES {
        return Err("its UDAP metadata is too large".into());
    }
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|_| "its UDAP metadata is not JSON".to_owned())?;
    check(udap, idp, &doc, now).await
}

/// The checks on a fetched metadata document.
pub async fn check(udap: &Udap, idp: &str, doc: &Value, now: i64) -> Result<TrustedIdp, String> {
    let scopes: Vec<&str> = doc["scopes_supported"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !(scopes.contains(&"openid") && scopes.contains(&"udap")) {
        return Err("its scopes_supported lacks openid or udap".into());
    }
    let jwt = doc["signed_metadata"]
        .as_str()
        .ok_or_else(|| "its UDAP metadata has no signed_metadata".to_owned())?;
    let mut why = String::from("no trust community is configured");
    let mut verified = None;
    for community in &udap.communities {
        match x5c_jwt::verify(jwt, &community.anchors, x5c_jwt::UDAP_ALGS, now, &udap.crls).await {
            Ok(v) => {
                verified = Some((v, community.name.clone()));
                break;
            }
            Err(e) => why = e.description(),
        }
    }
    let (jwt, community) =
        verified.ok_or_else(|| format!("its signed_metadata is not trusted: {why}"))?;
    let c = &jwt.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    if s("iss") != Some(idp) || s("sub") != Some(idp) {
        return Err("its signed_metadata iss and sub are not the idp URL exactly".into());
    }
    match c.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now => {}
        _ => return Err("its signed_metadata has expired".into()),
    }
    if c.get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + LEEWAY)
    {
        return Err("its signed_metadata is issued in the future".into());
    }
    let endpoint = |k: &str| -> Result<String, String> {
        s(k).filter(|u| crate::net::https_or_loopback(u))
            .map(str::to_owned)
            .ok_or_else(|| format!("its signed_metadata has no usable {k}"))
    };
    Ok(TrustedIdp {
        base: idp.to_owned(),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        registration_endpoint: endpoint("registration_endpoint").ok(),
        community,
    })
}
