//! `GET {fhir base}/.well-known/udap[?community=URI]`: UDAP server metadata
//! (HL7 FAST Security "Discovery"): what UDAP workflows this server
//! supports, its endpoints, and `signed_metadata`, a JWT (RS256, `x5c` the
//! server's chain) whose `iss` and `sub` are the FHIR base exactly, which is
//! a SAN URI of the signing certificate (checked at start). Public, no
//! authentication. An unknown `community` answers 204 No Content ("no UDAP
//! workflows in the context of that community", as the IG allows); UDAP off
//! answers 404.
//!
//! `udap_to`: fhirgate does Tiered OAuth both ways: as a data holder it
//! sends users to the IdP a client names (`crate::udap::tiered`), and as an
//! IdP it answers `openid udap` requests with an id_token (hence `udap` in
//! `scopes_supported`, which the IG requires of IdPs).

use axum::{
    extract::{Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{setup::Community, x5c_jwt::UDAP_ALGS, Udap};
use crate::AppState;

/// How long signed metadata is valid, seconds (the IG allows up to a year).
const SIGNED_FOR: i64 = 24 * 3600;

/// The endpoints, from the public URL.
pub struct Endpoints {
    /// The FHIR base (`iss` of the signed metadata).
    pub fhir_base: String,
    /// `/auth/authorize`.
    pub authorization: String,
    /// `/auth/token`.
    pub token: String,
    /// `/auth/register`.
    pub registration: String,
}

impl Endpoints {
    /// Under `public_url` (no trailing slash needed).
    pub fn of(app: &AppState) -> Self {
        let public = app.config.public_url.as_str().trim_end_matches('/');
        Self {
            fhir_base: app.config.fhir_base(),
            authorization: format!("{public}/auth/authorize"),
            token: format!("{public}/auth/token"),
            registration: format!("{public}/auth/register"),
        }
    }
}

/// The metadata document for `community` at `now` (unix seconds).
pub fn metadata(
    udap: &Udap,
    community: &Community,
    ep: &Endpoints,
    now: i64,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let required: Vec<&str> = if community.require_b2b {
        vec![crate::udap::B2B]
    } else {
        Vec::new()
    };
    let mut doc = json!({
        "udap_versions_supported": ["1"],
        "udap_profiles_supported": ["udap_dcr", "udap_authn", "udap_authz", "udap_to"],
        "udap_authorization_extensions_supported": [crate::udap::B2B],
        "udap_authorization_extensions_required": required,
        "udap_certifications_supported": community.certifications_supported,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": ["openid", "udap", "fhirUser", "launch", "launch/patient", "offline_access",
            "patient/*.rs", "user/*.rs", "system/*.rs", "patient/*.read", "user/*.read", "system/*.read"],
        "authorization_endpoint": ep.authorization,
        "token_endpoint": ep.token,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": UDAP_ALGS,
        "registration_endpoint": ep.registration,
        "registration_endpoint_jwt_signing_alg_values_supported": UDAP_ALGS,
    });
    if !community.certifications_supported.is_empty() {
        doc["udap_certifications_required"] = json!([]);
    }
    let claims = json!({
        "iss": ep.fhir_base,
        "sub": ep.fhir_base,
        "iat": now,
        "exp": now + SIGNED_FOR,
        "jti": smart_launch::token::random_token(16),
        "authorization_endpoint": ep.authorization,
        "token_endpoint": ep.token,
        "registration_endpoint": ep.registration,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5c = Some(udap.server.x5c.clone());
    doc["signed_metadata"] = json!(jsonwebtoken::encode(&header, &claims, &udap.server.key)?);
    Ok(doc)
}

/// Query of the discovery endpoint.
#[derive(Debug, Deserialize)]
pub struct DiscoveryQuery {
    community: Option<String>,
}

/// `GET /fhir/.well-known/udap`.
pub async fn get(State(app): State<AppState>, Query(q): Query<DiscoveryQuery>) -> Response {
    let Some(udap) = app.udap.as_deref() else {
        return (StatusCode::NOT_FOUND, "UDAP is not offered by this server").into_response();
    };
    let Some(community) = udap.community(q.community.as_deref()) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let now = crate::oauth::now();
    match metadata(udap, community, &Endpoints::of(&app), now) {
        Ok(doc) => ([(header::CACHE_CONTROL, "no-store")], Json(doc)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "UDAP metadata could not be signed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "UDAP metadata could not be signed",
            )
                .into_response()
        }
    }
}
