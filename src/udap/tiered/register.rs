//! fhirgate as a UDAP client of an identity provider: its registration
//! there (UDAP dynamic client registration, once per IdP; the client id is
//! kept in [`super::store`]) and its client assertions at the IdP's token
//! endpoint (UDAP JWT client authentication). Both are JWTs signed RS256
//! with the server's UDAP certificate, `x5c` its chain, whose SAN URI is
//! the FHIR base, the `iss` of the software statement.

use serde_json::{json, Value};
use smart_launch::token::random_token;

use super::{idp::TrustedIdp, store, CALLBACK_PATH};
use crate::{udap::Udap, AppState};

/// Lifetime of fhirgate's statements and assertions, seconds (the IG's
/// maximum is five minutes).
const LIFETIME: i64 = 300;
/// What fhirgate asks an IdP for.
pub const IDP_SCOPE: &str = "openid udap";
/// The logo in fhirgate's registrations (served by the UI).
pub const LOGO_PATH: &str = "/ui/static/fhirgate.png";

/// A JWT signed by the server's UDAP certificate.
fn sign(udap: &Udap, claims: &Value) -> Result<String, String> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5c = Some(udap.server.x5c.clone());
    jsonwebtoken::encode(&header, claims, &udap.server.key)
        .map_err(|e| format!("signing failed: {e}"))
}

/// fhirgate's software statement for `registration_endpoint`.
pub fn software_statement(
    app: &AppState,
    udap: &Udap,
    registration_endpoint: &str,
    now: i64,
) -> Result<String, String> {
    let public = app.config.public_url.as_str().trim_end_matches('/');
    let me = app.config.fhir_base();
    sign(
        udap,
        &json!({
            "iss": me, "sub": me, "aud": registration_endpoint,
            "iat": now, "exp": now + LIFETIME, "jti": random_token(24),
            "client_name": format!("fhirgate data holder at {public}"),
            "redirect_uris": [format!("{public}{CALLBACK_PATH}")],
            "contacts": [udap.contact],
            "logo_uri": format!("{public}{LOGO_PATH}"),
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": IDP_SCOPE,
        }),
    )
}

/// fhirgate's client assertion for `client_id` at `token_endpoint`.
pub fn client_assertion(
    udap: &Udap,
    client_id: &str,
    token_endpoint: &str,
    now: i64,
) -> Result<String, String> {
    sign(
        udap,
        &json!({
            "iss": client_id, "sub": client_id, "aud": token_endpoint,
            "iat": now, "exp": now + LIFETIME, "jti": random_token(24),
        }),
    )
}

/// The client id fhirgate has at `idp`: the stored one, or a new
/// registration (stored for next time).
pub async fn client_id_at(
    app: &AppState,
    udap: &Udap,
    idp: &TrustedIdp,
    now: i64,
) -> Result<String, String> {
    if let Some(id) = store::idp_client(&app.state, &idp.base)
        .await
        .map_err(|e| format!("state store: {e}"))?
    {
        return Ok(id);
    }
    let endpoint = idp
        .registration_endpoint
        .as_deref()
        .ok_or("it offers no UDAP registration and fhirgate has no client id there")?;
    let statement = software_statement(app, udap, endpoint, now)?;
    let resp = udap
        .http
        .post(endpoint)
        .json(&json!({"software_statement": statement, "udap": "1"}))
        .send()
        .await
        .map_err(|e| format!("registering with it failed: {e}"))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 200 && status != 201 {
        let error = body["error"].as_str().unwrap_or("no error code");
        return Err(format!(
            "it refused fhirgate's registration (HTTP {status}, {error})"
        ));
    }
    let id = body["client_id"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| "its registration answer has no client_id".to_owned())?;
    store::set_idp_client(&app.state, &idp.base, id, now)
        .await
        .map_err(|e| format!("state store: {e}"))?;
    tracing::info!(idp = %idp.base, "Tiered OAuth: registered with the identity provider");
    Ok(id.to_owned())
}
