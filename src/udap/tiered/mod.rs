//! UDAP Tiered OAuth (HL7 FAST Security "Tiered OAuth for User
//! Authentication"; UDAP Tiered OAuth for User Authentication): a client
//! asks fhirgate's authorization endpoint for the `udap` scope and names an
//! OpenID Connect identity provider in `idp`; fhirgate, acting as that
//! IdP's client, has the IdP authenticate the user, then continues the
//! client's authorization as the local user the IdP's subject is linked to.
//!
//! - [`begin`]: trust the IdP ([`idp::discover`]), register with it once
//!   ([`register::client_id_at`]), and build the authentication request
//!   (`scope=openid udap`, `state`, `nonce`, PKCE S256) plus the
//!   [`Pending`] record the HTTP adapter keeps until the callback.
//! - [`complete`]: the IdP's answer at [`CALLBACK_PATH`]: the `state` must
//!   be ours (else `server_error`, as the IG says); an IdP error is
//!   `access_denied`; the code is redeemed with fhirgate's `x5c` client
//!   assertion; the id_token is verified (OIDC Core §3.1.3.7 by the
//!   `openidconnect` crate, keys from the IdP's OpenID discovery: signature,
//!   `iss` = the `idp` URL exactly, `aud` = our client id there, `exp`,
//!   `nonce`); the pair (`iss`, `sub`) must be linked to a local user
//!   ([`store::link`], by `fhirgate udap link-identity`), else
//!   `access_denied`.
//!
//! Every failure is an [`OAuthError`] the adapter sends to the client's
//! redirect URI; untrusted or failing IdPs are `invalid_idp`.

use openidconnect::{
    core::{CoreIdToken, CoreIdTokenVerifier, CoreProviderMetadata},
    ClientId, IssuerUrl, Nonce,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smart_launch::assurance::Assurance;
use smart_launch::{pkce, token::random_token, OAuthError, OAuthErrorCode};

use super::Udap;
use crate::{state::users::User, AppState};

pub mod idp;
pub mod register;
pub mod store;

/// fhirgate's redirect URI at identity providers (under the public URL).
pub const CALLBACK_PATH: &str = "/auth/udap/callback";

/// What survives the round trip through the IdP (kept server-side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The client's pending authorization (`oauth::authorize::Pending::id`).
    pub request: String,
    /// The IdP base URL the client named.
    pub idp: String,
    /// fhirgate's client id at the IdP.
    pub client_id: String,
    /// The IdP's token endpoint (from its signed metadata).
    pub token_endpoint: String,
    /// The `state` sent to the IdP.
    pub state: String,
    /// The `nonce` sent to the IdP.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge was sent.
    pub verifier: String,
}

fn invalid_idp(why: impl std::fmt::Display) -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::InvalidIdp,
        format!("the requested identity provider cannot be used: {why}"),
    )
}

/// fhirgate's redirect URI at IdPs.
pub fn callback_uri(app: &AppState) -> String {
    format!(
        "{}{CALLBACK_PATH}",
        app.config.public_url.as_str().trim_end_matches('/')
    )
}

/// Starts Tiered OAuth for the client's pending authorization `request`
/// with identity provider `idp`: the URL to send the browser to, and what
/// to keep until the callback.
pub async fn begin(
    app: &AppState,
    udap: &Udap,
    request: &str,
    idp: &str,
    now: i64,
) -> Result<(String, Pending), OAuthError> {
    let trusted = idp::discover(udap, idp, now).await.map_err(|why| {
        tracing::warn!(idp, reason = %why, "Tiered OAuth: identity provider not used");
        invalid_idp(why)
    })?;
    let client_id = register::client_id_at(app, udap, &trusted, now)
        .await
        .map_err(|why| {
            tracing::warn!(idp, reason = %why, "Tiered OAuth: no client id at the identity provider");
            invalid_idp(why)
        })?;
    let verifier = random_token(32);
    let pending = Pending {
        request: request.to_owned(),
        idp: trusted.base.clone(),
        client_id,
        token_endpoint: trusted.token_endpoint.clone(),
        state: random_token(24),
        nonce: random_token(24),
        verifier,
    };
    let challenge = pkce::challenge_of(&pending.verifier);
    let url = crate::oauth::authorize::with_query(
        &trusted.authorization_endpoint,
        &[
            ("response_type", "code"),
            ("client_id", pending.client_id.as_str()),
            ("redirect_uri", callback_uri(app).as_str()),
            ("scope", register::IDP_SCOPE),
            ("state", pending.state.as_str()),
            ("nonce", pending.nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    Ok((url, pending))
}

/// The IdP's answer (`state` and `code`, or `error`): the local user and
/// the assurance the IdP asserted (`acr`, `amr`, `auth_time` of its
/// id_token), or the error for the client (see the module docs).
pub async fn complete(
    app: &AppState,
    udap: &Udap,
    pending: &Pending,
    state: Option<&str>,
    code: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> Result<(User, Assurance), OAuthError> {
    if !state.is_some_and(|s| same(s, &pending.state)) {
        return Err(OAuthError::new(
            OAuthErrorCode::ServerError,
            "the identity provider's answer does not carry the state fhirgate sent",
        ));
    }
    if let Some(e) = error {
        let code: String = e
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(OAuthError::new(
            OAuthErrorCode::AccessDenied,
            format!("the identity provider did not authenticate the user ({code})"),
        ));
    }
    let code = code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid_idp("it answered without a code"))?;
    let id_token = redeem(app, udap, pending, code, now).await?;
    let (subject, assurance) = verify_id_token(udap, pending, &id_token).await?;
    let username = store::linked_user(&app.state, &pending.idp, &subject)
        .await
        .map_err(server_error)?;
    let user = match username {
        Some(u) => app.state.user_get(&u).await.map_err(server_error)?,
        None => None,
    };
    user.map(|u| (u, assurance)).ok_or_else(|| {
        tracing::warn!(idp = %pending.idp, "Tiered OAuth: the identity is linked to no local user");
        OAuthError::new(
            OAuthErrorCode::AccessDenied,
            "the user the identity provider authenticated has no account here",
        )
    })
}

fn server_error(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "Tiered OAuth: internal error");
    OAuthError::new(OAuthErrorCode::ServerError, "internal error")
}

/// Constant-shape comparison of two secrets.
fn same(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// Redeems `code` at the IdP's token endpoint with fhirgate's `x5c` client
/// assertion; the raw id_token.
async fn redeem(
    app: &AppState,
    udap: &Udap,
    pending: &Pending,
    code: &str,
    now: i64,
) -> Result<String, OAuthError> {
    let assertion =
        register::client_assertion(udap, &pending.client_id, &pending.token_endpoint, now)
            .map_err(server_error)?;
    let redirect = callback_uri(app);
    let resp = udap
        .http
        .post(&pending.token_endpoint)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", pending.verifier.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("udap", "1"),
        ])
        .send()
        .await
        .map_err(|e| invalid_idp(format!("its token endpoint could not be reached: {e}")))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 200 {
        let error = body["error"].as_str().unwrap_or("no error code");
        if error == "invalid_client" {
            // our registration there may be gone: register again next time
            let _ = store::forget_idp_client(&app.state, &pending.idp).await;
        }
        tracing::warn!(idp = %pending.idp, status, error, "Tiered OAuth: code exchange refused");
        return Err(invalid_idp(format!(
            "its token endpoint refused the code (HTTP {status}, {error})"
        )));
    }
    body["id_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid_idp("it returned no id_token"))
}

/// Verifies the id_token (see the module docs); its `sub` and assurance.
async fn verify_id_token(
    udap: &Udap,
    pending: &Pending,
    raw: &str,
) -> Result<(String, Assurance), OAuthError> {
    let issuer = IssuerUrl::new(pending.idp.clone()).map_err(invalid_idp)?;
    let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &udap.http)
        .await
        .map_err(|e| invalid_idp(format!("its OpenID discovery failed: {e}")))?;
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(pending.client_id.clone()),
        issuer,
        metadata.jwks().clone(),
    );
    let token: CoreIdToken = raw
        .parse()
        .map_err(|e| invalid_idp(format!("its id_token is malformed: {e}")))?;
    let claims = token
        .claims(&verifier, &Nonce::new(pending.nonce.clone()))
        .map_err(|e| {
            tracing::warn!(idp = %pending.idp, error = %e, "Tiered OAuth: id_token rejected");
            invalid_idp(format!("its id_token did not verify: {e}"))
        })?;
    let assurance = crate::federation::assurance_of(claims);
    Ok((claims.subject().as_str().to_owned(), assurance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("", "abc"));
    }

    #[test]
    fn errors_name_the_idp_problem() {
        let e = invalid_idp("its scopes_supported lacks openid or udap");
        assert_eq!(e.code.as_str(), "invalid_idp");
        assert!(e.description.contains("udap"));
    }
}
