//! UDAP JWT-based client authentication (HL7 FAST Security "Consumer-Facing"
//! and "Business-to-Business" token requests; UDAP JWT Client Auth STU1)
//! for clients registered by UDAP ([`super::registration`]): the
//! `client_assertion` carries the client's certificate chain in `x5c`
//! instead of a registered JWKS.
//!
//! Checked: the chain leads to an anchor of the community the client
//! registered in (validity, key usage, CRLs), the leaf's SAN URIs include
//! the `iss` the client registered with, the signature by the leaf (RS256,
//! RS384, ES256, ES384), `iss` = `sub` = the `client_id`, `aud` = the token
//! endpoint, `exp` in the future and at most five minutes ahead, `iat` not
//! in the future, and a `jti` (replay is refused by the caller). Every
//! refusal is `invalid_client` (401) with a specific description.
//! [`b2b_required`] says whether the client's community requires the
//! `hl7-b2b` extension in every token request; [`stu1_without_pkce`]
//! whether its authorization code flow may go without PKCE and `state`
//! (UDAP STU1 clients; STU2, the default, requires both).

use serde_json::Value;
use smart_launch::{assertion::VerifiedAssertion, OAuthError};

use super::x5c_jwt;
use crate::{state::oauth::ClientRecord, AppState};

/// Longest an assertion may live ahead of now, seconds.
const MAX_AHEAD: i64 = 300;
/// Clock skew allowed.
const LEEWAY: i64 = 60;

/// Whether `client` registered by UDAP.
pub fn is_udap(client: &ClientRecord) -> bool {
    client.metadata.get("udap").is_some_and(Value::is_object)
}

/// Whether the community `client` registered in requires `hl7-b2b`.
pub fn b2b_required(app: &AppState, client: &ClientRecord) -> bool {
    let name = client.metadata["udap"]["community"].as_str();
    app.udap
        .as_deref()
        .and_then(|u| u.community(name))
        .is_some_and(|c| c.require_b2b)
}

/// Whether `client` registered by UDAP in a community that lets STU1
/// clients use the authorization code flow without PKCE and `state`.
pub fn stu1_without_pkce(app: &AppState, client: &ClientRecord) -> bool {
    let name = client.metadata["udap"]["community"].as_str();
    is_udap(client)
        && app
            .udap
            .as_deref()
            .and_then(|u| u.community(name))
            .is_some_and(|c| c.stu1_without_pkce)
}

fn refuse(d: impl Into<String>) -> OAuthError {
    OAuthError::invalid_client(d.into())
}

/// Verifies a UDAP client's `client_assertion` (see the module docs).
pub async fn verify_client_assertion(
    app: &AppState,
    client: &ClientRecord,
    jwt: &str,
    token_endpoint: &str,
    now: i64,
) -> Result<VerifiedAssertion, OAuthError> {
    let udap = app
        .udap
        .as_deref()
        .ok_or_else(|| refuse("UDAP is not offered by this server"))?;
    let reg = &client.metadata["udap"];
    let community = udap
        .community(reg["community"].as_str())
        .filter(|_| reg["community"].is_string())
        .ok_or_else(|| refuse("the client's trust community is no longer served"))?;
    let san = reg["iss"]
        .as_str()
        .ok_or_else(|| refuse("the client's registration names no certificate URI"))?;
    let jwt = x5c_jwt::verify_for_san(
        jwt,
        &community.anchors,
        x5c_jwt::UDAP_ALGS,
        now,
        &udap.crls,
        san,
    )
    .await
    .map_err(|e| refuse(format!("client_assertion: {}", e.description())))?;
    let c = &jwt.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    if s("iss") != Some(client.client_id.as_str()) || s("sub") != Some(client.client_id.as_str()) {
        return Err(refuse(
            "client_assertion iss and sub must both be the client_id",
        ));
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == token_endpoint,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(token_endpoint)),
        _ => false,
    };
    if !aud_ok {
        return Err(refuse(
            "client_assertion aud must be the token endpoint URL",
        ));
    }
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| refuse("client_assertion has no numeric exp"))?;
    if exp <= now - LEEWAY {
        return Err(refuse("client_assertion has expired"));
    }
    if exp > now + MAX_AHEAD + LEEWAY {
        return Err(refuse("client_assertion exp is more than 5 minutes ahead"));
    }
    if c.get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + LEEWAY)
    {
        return Err(refuse("client_assertion is issued in the future (iat)"));
    }
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refuse("client_assertion has no usable jti"))?;
    Ok(VerifiedAssertion {
        jti: jti.to_owned(),
        exp,
        extensions: c.get("extensions").cloned(),
    })
}
