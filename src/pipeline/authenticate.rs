//! Stage "authenticate": the bearer token of a FHIR request (RFC 6750 §2.1)
//! becomes an `AccessContext`, or the request is refused with 401 and a
//! `WWW-Authenticate` challenge. The token must be our signed JWT (a key of
//! our JWKS, RS256), unexpired, issued for this FHIR base (`aud`), and not
//! revoked (its `jti` is looked up on every request, so a revocation takes
//! effect at once on every replica). The token's user assurance (`acr`,
//! `amr`) must meet the policy for its user's role (`crate::assurance`),
//! else 401 `insufficient_user_authentication` (RFC 9470).

use axum::http::StatusCode;
use smart_launch::{
    assurance::Assurance, context::AccessContext, scope::ScopeSet, token::validate_access,
};

use crate::{
    error::{FhirError, FhirResult, IssueType},
    oauth::now,
    AppState,
};

fn unauthorized(message: &str) -> FhirError {
    FhirError::new(StatusCode::UNAUTHORIZED, IssueType::Security, message)
}

/// Validates the `Authorization` header value.
pub async fn authenticate(
    app: &AppState,
    authorization: Option<&str>,
) -> FhirResult<AccessContext> {
    let header = authorization
        .ok_or_else(|| unauthorized("an access token is required (Authorization: Bearer ...)"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("the Authorization header must carry a Bearer token"))?;
    let base = app.config.fhir_base();
    let claims = validate_access(&app.keys, token, &base, &base, now())
        .map_err(|e| unauthorized(&format!("invalid access token: {}", e.description)))?;
    let active = app
        .state
        .access_active(&claims.jti)
        .await
        .map_err(|e| FhirError::unavailable(format!("token revocation check failed: {e}")))?;
    if !active {
        return Err(unauthorized("the access token has been revoked"));
    }
    let scopes = ScopeSet::parse(&claims.scope)
        .map_err(|_| unauthorized("the access token's scope is malformed"))?;
    let ctx = AccessContext {
        client_id: claims.client_id,
        scopes,
        patient: claims.patient,
        encounter: claims.encounter,
        fhir_user: claims.fhir_user,
        role: claims.role,
        jti: claims.jti,
        expires_at: claims.exp,
        purpose_of_use: claims.purpose_of_use,
        assurance: Assurance {
            acr: claims.acr,
            amr: claims.amr,
            auth_time: claims.auth_time,
        },
        organization: claims.organization,
    };
    // The user's assurance against the policy (issue 11): 401 with the
    // RFC 9470 challenge naming what to ask the authorization server for.
    crate::assurance::for_user(&app.config, ctx.role.as_deref(), &ctx.assurance)
        .map_err(crate::assurance::Shortfall::into_fhir)?;
    Ok(ctx)
}
