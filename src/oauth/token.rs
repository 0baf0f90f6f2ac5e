//! Token endpoint grants (RFC 6749 §4.1.3, §6, §4.4; SMART App Launch 2.2
//! "Obtain access token", "Refresh access token", Backend Services), and
//! token introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Codes are single use: a second use revokes every token the first one
//! issued (RFC 6749 §4.1.2). Refresh tokens rotate on every use and never
//! widen the grant. Every access token's `jti` is recorded so revocation
//! takes effect on the next FHIR request.

use serde_json::{json, Value};
use smart_launch::{
    assurance::Assurance,
    b2b::B2b,
    pkce,
    scope::{ScopeContext, ScopeSet, SmartScope},
    token::{
        hash_token, mint_access, mint_id_token, random_token, validate_access, AccessClaims,
        IdTokenClaims,
    },
    OAuthError, OAuthErrorCode,
};

use super::{authorize::TIERED_SCOPE, clients, now};
use crate::{
    state::oauth::{ClientRecord, Redeemed, RefreshRecord},
    AppState,
};

/// Access token lifetime, seconds.
pub const ACCESS_TTL: i64 = 3600;
/// `offline_access` refresh token lifetime, seconds (90 days).
pub const OFFLINE_TTL: i64 = 90 * 24 * 3600;
/// `online_access` refresh token lifetime, seconds (12 hours).
pub const ONLINE_TTL: i64 = 12 * 3600;

fn server_error(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "token endpoint failure");
    OAuthError::new(OAuthErrorCode::ServerError, "internal error")
}

fn param<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `POST /auth/token`.
pub async fn token(
    app: &AppState,
    form: &[(String, String)],
    authorization: Option<&str>,
) -> Result<Value, OAuthError> {
    let grant_type = param(form, "grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    match grant_type {
        "authorization_code" => authorization_code(app, form, authorization).await,
        "refresh_token" => refresh(app, form, authorization).await,
        "client_credentials" => client_credentials(app, form, authorization).await,
        other => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("grant_type '{other}' is not supported"),
        )),
    }
}

fn may_use(client: &ClientRecord, grant: &str) -> Result<(), OAuthError> {
    if clients::grant_types(&client.metadata)
        .iter()
        .any(|g| g == grant)
    {
        Ok(())
    } else {
        Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            format!("this client is not registered for {grant}"),
        ))
    }
}

async fn authorization_code(
    app: &AppState,
    form: &[(String, String)],
    authz: Option<&str>,
) -> Result<Value, OAuthError> {
    let (client, b2b) = clients::authenticate_with_extensions(app, form, authz).await?;
    may_use(&client, "authorization_code")?;
    require_b2b(app, &client, b2b.as_ref())?;
    let code =
        param(form, "code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let code_hash = hash_token(code);
    let (owner, grant, expires_at) = match app
        .state
        .code_redeem(&code_hash, now())
        .await
        .map_err(server_error)?
    {
        Redeemed::Fresh {
            client_id,
            grant,
            expires_at,
        } => (client_id, grant, expires_at),
        Redeemed::Reused => {
            app.state
                .revoke_code_chain(&code_hash)
                .await
                .map_err(server_error)?;
            tracing::warn!(client_id = %client.client_id, "authorization code reused: tokens it issued are revoked");
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; tokens issued from it are revoked",
            ));
        }
        Redeemed::Unknown => return Err(OAuthError::invalid_grant("unknown authorization code")),
    };
    if owner != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if expires_at <= now() {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if param(form, "redirect_uri") != grant["redirect_uri"].as_str() {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let challenge = grant["code_challenge"].as_str().unwrap_or_default();
    // no challenge only for a UDAP STU1 client whose community allows it
    if !(challenge.is_empty() && crate::udap::authn::stu1_without_pkce(app, &client)) {
        pkce::verify(param(form, "code_verifier"), challenge)?;
    }
    let organization = organization_of(app, &grant).await?;
    issue(
        app,
        &client,
        &grant,
        Some(&code_hash),
        true,
        Acting::user(organization),
    )
    .await
}

async fn refresh(
    app: &AppState,
    form: &[(String, String)],
    authz: Option<&str>,
) -> Result<Value, OAuthError> {
    let token = param(form, "refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let hash = hash_token(token);
    let record = app
        .state
        .refresh_get(&hash)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    // A public client cannot authenticate and need not send its client_id
    // (RFC 6749 §6; SMART 2.2 "Refresh access token"): it is known from the
    // refresh token. Confidential clients must still authenticate.
    let unauthenticated = authz.is_none()
        && param(form, "client_assertion_type").is_none()
        && param(form, "client_id").is_none();
    let client = if unauthenticated {
        let owner = app
            .state
            .client_get(&record.client_id)
            .await
            .map_err(server_error)?
            .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
        if owner.client_type != "public" {
            return Err(OAuthError::invalid_client("this client must authenticate"));
        }
        owner
    } else {
        clients::authenticate(app, form, authz).await?
    };
    if record.revoked || record.expires_at <= now() {
        return Err(OAuthError::invalid_grant(
            "the refresh token is revoked or expired",
        ));
    }
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let mut grant = record.grant.clone();
    let original =
        ScopeSet::parse(grant["scope"].as_str().unwrap_or_default()).map_err(server_error)?;
    if let Some(asked) = param(form, "scope") {
        let asked_set = ScopeSet::parse(asked)
            .map_err(|e| OAuthError::invalid_scope(format!("malformed scope: {e}")))?;
        if !asked_set.covered_by(&original) {
            return Err(OAuthError::invalid_scope(
                "a refresh cannot widen the granted scope",
            ));
        }
        grant["scope"] = json!(asked);
    }
    // Resolved before the refresh token is spent, so a failed look-up
    // leaves it usable.
    let organization = organization_of(app, &grant).await?;
    if !app
        .state
        .refresh_revoke(&hash)
        .await
        .map_err(server_error)?
    {
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    issue(
        app,
        &client,
        &grant,
        record.code_hash.as_deref(),
        false,
        Acting::user(organization),
    )
    .await
}

async fn client_credentials(
    app: &AppState,
    form: &[(String, String)],
    authz: Option<&str>,
) -> Result<Value, OAuthError> {
    if param(form, "client_assertion_type").is_none() {
        return Err(OAuthError::invalid_request(
            "client_credentials needs a private_key_jwt client_assertion",
        ));
    }
    let (client, b2b) = clients::authenticate_with_extensions(app, form, authz).await?;
    may_use(&client, "client_credentials")?;
    require_b2b(app, &client, b2b.as_ref())?;
    let registered =
        ScopeSet::parse(clients::registered_scope(&client.metadata)).map_err(server_error)?;
    let scope =
        param(form, "scope").ok_or_else(|| OAuthError::invalid_scope("scope is required"))?;
    let asked = ScopeSet::parse(scope)
        .map_err(|e| OAuthError::invalid_scope(format!("malformed scope: {e}")))?;
    let only_system = asked
        .iter()
        .all(|s| matches!(s, SmartScope::Resource(r) if r.context == ScopeContext::System));
    if !only_system {
        return Err(OAuthError::invalid_scope(
            "Backend Services clients may only ask for system/ scopes",
        ));
    }
    if !asked.covered_by(&registered) {
        return Err(OAuthError::invalid_scope(
            "the requested scope is outside what this client is registered for",
        ));
    }
    let acting = b2b_acting(app, &client, b2b.as_ref())?;
    let grant = json!({"client_id": client.client_id, "scope": scope});
    issue(app, &client, &grant, None, false, acting).await
}

/// The organization and purpose of use a Backend Services token carries:
/// those of the assertion's UDAP B2B extension (see `smart_launch::b2b`),
/// none without one. A client that `[payer] provider_clients` binds to an
/// organization may not state another one (`invalid_grant`): the binding is
/// the operator's word, the extension only the client's.
fn b2b_acting(
    app: &AppState,
    client: &ClientRecord,
    b2b: Option<&B2b>,
) -> Result<Acting, OAuthError> {
    let Some(b2b) = b2b else {
        return Ok(Acting::default());
    };
    let organization = b2b.organization_reference(&app.config.fhir_base());
    if let Some(bound) = app.config.payer.provider_org(&client.client_id) {
        if bound != organization {
            return Err(OAuthError::invalid_grant(
                "hl7-b2b organization_id is not the organization this client is registered for",
            ));
        }
    }
    tracing::info!(
        client_id = %client.client_id,
        organization = %organization,
        purpose = ?b2b.purpose(),
        "hl7-b2b extension accepted"
    );
    Ok(Acting {
        organization: Some(organization),
        purpose_of_use: b2b.purpose().map(str::to_owned),
    })
}

/// A UDAP community that requires `hl7-b2b` in every token request gets
/// it, or the request is `invalid_grant` (HL7 FAST Security B2B).
fn require_b2b(app: &AppState, client: &ClientRecord, b2b: Option<&B2b>) -> Result<(), OAuthError> {
    if b2b.is_none() && crate::udap::authn::b2b_required(app, client) {
        return Err(OAuthError::invalid_grant(
            "this client's trust community requires the hl7-b2b authorization extension in every token request",
        ));
    }
    Ok(())
}

/// Who a token acts for and why, fixed at issuance.
#[derive(Debug, Default)]
struct Acting {
    /// The organization (a user's, or a B2B client's stated one).
    organization: Option<String>,
    /// The purpose of use (a B2B client's stated one).
    purpose_of_use: Option<String>,
}

impl Acting {
    fn user(organization: Option<String>) -> Self {
        Self {
            organization,
            purpose_of_use: None,
        }
    }
}

/// The organization a user's grant acts for, resolved now (see
/// [`super::organization`]); none for a grant without a user.
async fn organization_of(app: &AppState, grant: &Value) -> Result<Option<String>, OAuthError> {
    if grant["username"].as_str().is_none() {
        return Ok(None);
    }
    super::organization::for_grant(app, grant)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the user's organization could not be resolved");
            OAuthError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the user's organization could not be looked up; try again",
            )
        })
}

/// Mints the access token (and refresh and id tokens where granted) for a
/// grant, for a user acting for `organization`.
async fn issue(
    app: &AppState,
    client: &ClientRecord,
    grant: &Value,
    code_hash: Option<&str>,
    from_code: bool,
    acting: Acting,
) -> Result<Value, OAuthError> {
    let base = app.config.fhir_base();
    let t = now();
    let scope = grant["scope"].as_str().unwrap_or_default().to_owned();
    let scopes = ScopeSet::parse(&scope).map_err(server_error)?;
    let s = |k: &str| grant[k].as_str().map(str::to_owned);
    let jti = random_token(16);
    let assurance: Assurance =
        serde_json::from_value(grant["assurance"].clone()).unwrap_or_default();
    let claims = AccessClaims {
        iss: base.clone(),
        sub: s("username").unwrap_or_else(|| client.client_id.clone()),
        aud: base.clone(),
        exp: t + ACCESS_TTL,
        iat: t,
        jti: jti.clone(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        patient: s("patient"),
        encounter: s("encounter"),
        fhir_user: s("fhir_user"),
        role: s("role"),
        purpose_of_use: acting.purpose_of_use,
        organization: acting.organization,
        acr: assurance.acr.clone(),
        amr: assurance.amr.clone(),
        auth_time: assurance.auth_time.or_else(|| grant["auth_time"].as_i64()),
    };
    let access = mint_access(&app.keys, &claims).map_err(server_error)?;
    app.state
        .access_put(&jti, &client.client_id, code_hash, t + ACCESS_TTL)
        .await
        .map_err(server_error)?;
    let mut out = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL,
        "scope": scope,
    });
    if let Some(p) = s("patient") {
        out["patient"] = json!(p);
    }
    if let Some(e) = s("encounter") {
        out["encounter"] = json!(e);
        out["fhirContext"] = json!([{"reference": format!("Encounter/{e}")}]);
    }
    if s("username").is_some() {
        out["need_patient_banner"] = json!(grant["need_patient_banner"].as_bool().unwrap_or(false));
        out["smart_style_url"] = json!(format!(
            "{}/auth/smart-style.json",
            app.config.public_url.as_str().trim_end_matches('/')
        ));
    }
    // an id_token for `openid` with `fhirUser` (SMART), or with `udap` (a
    // data holder's Tiered OAuth sign-in: who the user is, without fhirUser)
    let fhir_user_scope = scopes.has(&SmartScope::FhirUser);
    let udap_scope = scopes.has(&SmartScope::Other(TIERED_SCOPE.to_owned()));
    if scopes.has(&SmartScope::OpenId) && (fhir_user_scope || udap_scope) {
        let fhir_user = s("fhir_user").filter(|_| fhir_user_scope);
        if let (Some(user), true) = (s("username"), fhir_user.is_some() || udap_scope) {
            let id = IdTokenClaims {
                iss: base.clone(),
                sub: user,
                aud: client.client_id.clone(),
                exp: t + ACCESS_TTL,
                iat: t,
                auth_time: assurance.auth_time.or_else(|| grant["auth_time"].as_i64()),
                nonce: if from_code { s("nonce") } else { None },
                fhir_user: fhir_user.map(|fu| format!("{base}/{fu}")),
                name: None,
                preferred_username: None,
                acr: assurance.acr.clone(),
                amr: assurance.amr.clone(),
            };
            out["id_token"] = json!(mint_id_token(&app.keys, &id).map_err(server_error)?);
        }
    }
    let ttl = if scopes.has(&SmartScope::OfflineAccess) {
        Some(OFFLINE_TTL)
    } else if scopes.has(&SmartScope::OnlineAccess) {
        Some(ONLINE_TTL)
    } else {
        None
    };
    if let (Some(ttl), true) = (ttl, s("username").is_some()) {
        let refresh = random_token(32);
        let record = RefreshRecord {
            client_id: client.client_id.clone(),
            grant: grant.clone(),
            code_hash: code_hash.map(str::to_owned),
            expires_at: t + ttl,
            revoked: false,
        };
        app.state
            .refresh_put(&hash_token(&refresh), &record)
            .await
            .map_err(server_error)?;
        out["refresh_token"] = json!(refresh);
    }
    Ok(out)
}

/// `POST /auth/introspect` (RFC 7662): any authenticated client may ask.
pub async fn introspect(
    app: &AppState,
    form: &[(String, String)],
    authz: Option<&str>,
) -> Result<Value, OAuthError> {
    clients::authenticate(app, form, authz).await?;
    let token =
        param(form, "token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let base = app.config.fhir_base();
    if let Ok(c) = validate_access(&app.keys, token, &base, &base, now()) {
        if app
            .state
            .access_active(&c.jti)
            .await
            .map_err(server_error)?
        {
            let mut out = json!({
                "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id,
                "exp": c.exp, "iat": c.iat, "sub": c.sub, "aud": c.aud, "iss": c.iss,
            });
            if let Some(p) = c.patient {
                out["patient"] = json!(p);
            }
            if let Some(f) = c.fhir_user {
                out["fhirUser"] = json!(format!("{base}/{f}"));
            }
            if let Some(o) = c.organization {
                out["organization"] = json!(o);
            }
            // RFC 9470 §6.1: the user's authentication, for resource servers
            // that introspect instead of reading the JWT
            if let Some(a) = c.acr {
                out["acr"] = json!(a);
            }
            if !c.amr.is_empty() {
                out["amr"] = json!(c.amr);
            }
            if let Some(t) = c.auth_time {
                out["auth_time"] = json!(t);
            }
            return Ok(out);
        }
        return Ok(json!({"active": false}));
    }
    if let Some(r) = app
        .state
        .refresh_get(&hash_token(token))
        .await
        .map_err(server_error)?
    {
        if !r.revoked && r.expires_at > now() {
            return Ok(
                json!({"active": true, "token_type": "refresh_token", "client_id": r.client_id,
                "scope": r.grant["scope"], "exp": r.expires_at}),
            );
        }
    }
    Ok(json!({"active": false}))
}

/// `POST /auth/revoke` (RFC 7009): revokes an access or refresh token of the
/// authenticated client; answers 200 whatever the token was (§2.2).
pub async fn revoke(
    app: &AppState,
    form: &[(String, String)],
    authz: Option<&str>,
) -> Result<(), OAuthError> {
    let client = clients::authenticate(app, form, authz).await?;
    let token =
        param(form, "token").ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let base = app.config.fhir_base();
    if let Ok(c) = validate_access(&app.keys, token, &base, &base, now()) {
        app.state
            .access_revoke(&c.jti, &client.client_id)
            .await
            .map_err(server_error)?;
        return Ok(());
    }
    let hash = hash_token(token);
    if let Some(r) = app.state.refresh_get(&hash).await.map_err(server_error)? {
        if r.client_id == client.client_id {
            app.state
                .refresh_revoke(&hash)
                .await
                .map_err(server_error)?;
        }
    }
    Ok(())
}
