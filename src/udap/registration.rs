//! UDAP dynamic client registration (HL7 FAST Security "Registration",
//! UDAP DCR STU1): `POST /auth/register` with
//! `{"software_statement": JWT, "certifications": [...], "udap": "1"}`.
//!
//! The software statement is an `x5c` JWT: its chain must lead to one of
//! the trust communities' anchors (none: `unapproved_software_statement`),
//! its signature, `iss` = `sub` = a SAN URI of the leaf, `aud` = this
//! registration endpoint, `exp` in the future and at most five minutes
//! after `iat`, `iat` not in the future, a `jti` never seen before (all
//! else `invalid_software_statement`). Its metadata (`client_name`,
//! `contacts` with a `mailto:`, `grant_types` with exactly one of
//! `authorization_code` and `client_credentials`, `refresh_token` only with
//! the former, `redirect_uris` (https; plain http only to a loopback host),
//! `response_types = ["code"]` and an https (or loopback) `logo_uri` for
//! the authorization code grant and absent otherwise,
//! `token_endpoint_auth_method = private_key_jwt`, a `scope`) is checked
//! (`invalid_client_metadata`). Errors are 400 with RFC 7591 error JSON.
//!
//! A client is identified by its community and `iss` (the client id is
//! derived from both), so registering again updates it (200, same
//! `client_id`) and never touches another community's registration; an
//! empty `grant_types` cancels it (200, `grant_types: []`; its tokens can
//! no longer be obtained). A new registration answers 201. The answer
//! carries the client id, the registered metadata and the software
//! statement exactly as sent. Certifications are accepted and ignored
//! (none is recognised yet).

use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use smart_launch::{scope::ScopeSet, OAuthError, OAuthErrorCode};

use super::{error::TrustError, setup::Community, x5c_jwt, Udap};
use crate::{state::oauth::ClientRecord, AppState};

/// Longest a software statement may live, seconds (`exp` - `iat`).
const MAX_LIFETIME: i64 = 300;
/// Clock skew allowed.
const LEEWAY: i64 = 60;

fn statement_error(d: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidSoftwareStatement, d)
}

fn metadata_error(d: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClientMetadata, d)
}

/// Whether a registration body is a UDAP one.
pub fn is_udap(body: &Value) -> bool {
    body.get("software_statement").is_some()
}

/// The client id of `iss` in `community`.
pub fn client_id_of(community: &str, iss: &str) -> String {
    let digest = Sha256::digest(format!("{community}\n{iss}").as_bytes());
    format!("udap-{}", &hex::encode(digest)[..32])
}

/// Registers (or updates, or cancels) the client a software statement
/// describes; `(status, body)` of the answer.
pub async fn register(app: &AppState, body: &Value) -> Result<(StatusCode, Value), OAuthError> {
    let Some(udap) = app.udap.as_deref() else {
        return Err(OAuthError::new(
            OAuthErrorCode::AccessDenied,
            "UDAP registration is not offered by this server",
        ));
    };
    let obj = body
        .as_object()
        .ok_or_else(|| metadata_error("the registration body must be a JSON object"))?;
    match obj.get("udap") {
        Some(Value::String(v)) if v == "1" => {}
        _ => {
            return Err(metadata_error(
                "a UDAP registration carries \"udap\": \"1\"",
            ))
        }
    }
    let statement = obj
        .get("software_statement")
        .and_then(Value::as_str)
        .ok_or_else(|| statement_error("software_statement must be a signed JWT string"))?;
    let registration_endpoint = super::discovery::Endpoints::of(app).registration;
    let now = crate::oauth::now();
    let (community, jwt) = verify_in_any(udap, statement, now).await?;
    let claims = &jwt.claims;
    check_claims(claims, &registration_endpoint, now)?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| statement_error("the software statement has no usable jti"))?;
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
    let first = app
        .state
        .assertion_jti_first_use(&format!("udap-ss:{iss}"), jti, exp + LEEWAY, now)
        .await
        .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))?;
    if !first {
        return Err(statement_error(
            "the software statement's jti was already used",
        ));
    }
    let client_id = client_id_of(&community.name, &iss);
    let existing = app
        .state
        .client_get(&client_id)
        .await
        .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))?;
    let grants = grant_types(claims)?;
    if grants.is_empty() {
        let Some(mut old) = existing else {
            return Err(metadata_error(
                "an empty grant_types cancels a registration, and this client is not registered",
            ));
        };
        old.metadata["grant_types"] = json!([]);
        old.metadata["udap_cancelled_at"] = json!(now);
        update(app, &old).await?;
        let mut answer = public_metadata(&old.metadata);
        answer["client_id"] = json!(client_id);
        answer["software_statement"] = json!(statement);
        return Ok((StatusCode::OK, answer));
    }
    let mut meta = registered_metadata(claims, &grants)?;
    meta["udap"] = json!({"community": community.name, "iss": iss, "subject": jwt.chain.subject});
    let name = meta["client_name"].as_str().unwrap_or_default().to_owned();
    let record = ClientRecord {
        client_id: client_id.clone(),
        client_name: name,
        client_type: "confidential-asymmetric".into(),
        secret_hash: None,
        metadata: meta.clone(),
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
    };
    let status = if existing.is_some() {
        update(app, &record).await?;
        StatusCode::OK
    } else {
        app.state
            .client_insert(&record)
            .await
            .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))?;
        StatusCode::CREATED
    };
    tracing::info!(client_id = %client_id, iss = %iss, community = %community.name, "UDAP client registered");
    let mut answer = public_metadata(&meta);
    answer["client_id"] = json!(client_id);
    answer["client_id_issued_at"] = json!(record.created_at);
    answer["software_statement"] = json!(statement);
    Ok((status, answer))
}

async fn update(app: &AppState, c: &ClientRecord) -> Result<(), OAuthError> {
    app.state
        .client_update(c)
        .await
        .map(|_| ())
        .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))
}

/// The registered metadata as answered (without fhirgate's own keys).
fn public_metadata(meta: &Value) -> Value {
    let mut out = meta.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("udap");
        o.remove("udap_cancelled_at");
    }
    out
}

/// The statement verified against the first community whose anchors its
/// chain leads to.
async fn verify_in_any<'u>(
    udap: &'u Udap,
    statement: &str,
    now: i64,
) -> Result<(&'u Community, x5c_jwt::UdapJwt), OAuthError> {
    let mut untrusted = false;
    for c in &udap.communities {
        match x5c_jwt::verify(statement, &c.anchors, x5c_jwt::UDAP_ALGS, now, &udap.crls).await {
            Ok(jwt) => return Ok((c, jwt)),
            Err(TrustError::UntrustedAnchor) => untrusted = true,
            Err(e) => return Err(statement_error(e.description())),
        }
    }
    if untrusted {
        return Err(OAuthError::new(
            OAuthErrorCode::UnapprovedSoftwareStatement,
            "the software statement's certificate does not lead to a trust anchor of any community this server serves",
        ));
    }
    Err(statement_error("no trust community is configured"))
}

/// iss = sub, aud, exp, iat.
fn check_claims(
    c: &Map<String, Value>,
    registration_endpoint: &str,
    now: i64,
) -> Result<(), OAuthError> {
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    if s("sub") != s("iss") {
        return Err(statement_error(
            "the software statement's sub must equal its iss",
        ));
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == registration_endpoint,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(registration_endpoint)),
        _ => false,
    };
    if !aud_ok {
        return Err(statement_error(format!(
            "the software statement's aud must be this registration endpoint ({registration_endpoint})"
        )));
    }
    let (Some(exp), Some(iat)) = (
        c.get("exp").and_then(Value::as_i64),
        c.get("iat").and_then(Value::as_i64),
    ) else {
        return Err(statement_error(
            "the software statement needs numeric exp and iat",
        ));
    };
    if exp <= now - LEEWAY {
        return Err(statement_error("the software statement has expired"));
    }
    if iat > now + LEEWAY {
        return Err(statement_error(
            "the software statement is issued in the future (iat)",
        ));
    }
    if exp - iat > MAX_LIFETIME {
        return Err(statement_error(
            "the software statement lives too long: exp may be at most 5 minutes after iat",
        ));
    }
    Ok(())
}

/// `grant_types`, checked: empty (cancel), or exactly one of
/// authorization_code and client_credentials, refresh_token only with the
/// former.
fn grant_types(c: &Map<String, Value>) -> Result<Vec<String>, OAuthError> {
    let grants: Vec<String> = match c.get("grant_types") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| metadata_error("grant_types must be an array of strings"))?,
        _ => return Err(metadata_error("grant_types is required (an array)")),
    };
    if grants.is_empty() {
        return Ok(grants);
    }
    let code = grants.iter().any(|g| g == "authorization_code");
    let cc = grants.iter().any(|g| g == "client_credentials");
    if code == cc {
        return Err(metadata_error(
            "grant_types must include either authorization_code or client_credentials, not both",
        ));
    }
    for g in &grants {
        match g.as_str() {
            "authorization_code" | "client_credentials" => {}
            "refresh_token" if code => {}
            "refresh_token" => {
                return Err(metadata_error(
                    "refresh_token is only allowed with authorization_code",
                ))
            }
            other => {
                return Err(metadata_error(format!(
                    "grant type '{other}' is not supported"
                )))
            }
        }
    }
    Ok(grants)
}

/// `https`, or `http` to a loopback host (RFC 8252 §7.3: local apps and
/// a data holder on this machine registering for Tiered OAuth).
fn https(url: &str) -> bool {
    crate::net::https_or_loopback(url)
}

/// The metadata to register, checked against the grant.
fn registered_metadata(c: &Map<String, Value>, grants: &[String]) -> Result<Value, OAuthError> {
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    let name = s("client_name")
        .filter(|n| !n.trim().is_empty() && n.len() <= 200)
        .ok_or_else(|| metadata_error("client_name is required"))?;
    let contacts: Vec<&str> = match c.get("contacts") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !contacts
        .iter()
        .any(|u| u.starts_with("mailto:") && u.len() > 8)
    {
        return Err(metadata_error(
            "contacts must hold at least one mailto: address",
        ));
    }
    if s("token_endpoint_auth_method") != Some("private_key_jwt") {
        return Err(metadata_error(
            "token_endpoint_auth_method must be private_key_jwt",
        ));
    }
    let scope = s("scope")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| metadata_error("scope is required"))?;
    ScopeSet::parse(scope).map_err(|e| metadata_error(format!("scope is malformed: {e}")))?;
    let code = grants.iter().any(|g| g == "authorization_code");
    let redirects: Vec<&str> = match c.get("redirect_uris") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(metadata_error("redirect_uris must be an array")),
        None => Vec::new(),
    };
    let mut meta = json!({
        "client_name": name,
        "contacts": contacts,
        "grant_types": grants,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": scope,
    });
    if code {
        if redirects.is_empty() || !redirects.iter().all(|u| https(u)) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidRedirectUri,
                "redirect_uris (https, or http to a loopback host) are required for the authorization_code grant",
            ));
        }
        match c.get("response_types") {
            Some(Value::Array(a)) if a.len() == 1 && a[0] == "code" => {}
            _ => {
                return Err(metadata_error(
                    "response_types must be [\"code\"] for authorization_code",
                ))
            }
        }
        let logo = s("logo_uri").filter(|u| {
            let lower = u.to_ascii_lowercase();
            https(u)
                && [".png", ".jpg", ".jpeg", ".gif"]
                    .iter()
                    .any(|x| lower.ends_with(x))
        });
        let Some(logo) = logo else {
            return Err(metadata_error(
                "logo_uri (https, a PNG, JPG or GIF) is required for authorization_code",
            ));
        };
        meta["redirect_uris"] = json!(redirects);
        meta["response_types"] = json!(["code"]);
        meta["logo_uri"] = json!(logo);
    } else {
        if !redirects.is_empty() {
            return Err(metadata_error(
                "redirect_uris must be absent for client_credentials",
            ));
        }
        if c.contains_key("response_types") {
            return Err(metadata_error(
                "response_types must be absent for client_credentials",
            ));
        }
        if let Some(l) = s("logo_uri") {
            meta["logo_uri"] = json!(l);
        }
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn grant_types_follow_the_ig() {
        let g = |v: Value| grant_types(&claims(json!({ "grant_types": v })));
        assert!(g(json!(["client_credentials"])).is_ok());
        assert!(g(json!(["authorization_code", "refresh_token"])).is_ok());
        assert_eq!(g(json!([])).unwrap(), Vec::<String>::new());
        assert!(g(json!(["authorization_code", "client_credentials"])).is_err());
        assert!(g(json!(["client_credentials", "refresh_token"])).is_err());
        assert!(g(json!(["implicit"])).is_err());
        assert!(grant_types(&claims(json!({}))).is_err());
    }

    #[test]
    fn statement_lifetime_audience_and_subject_are_checked() {
        let ep = "https://gate.example/auth/register";
        let ok = json!({"iss": "https://app", "sub": "https://app", "aud": ep, "iat": 1000, "exp": 1300});
        assert!(check_claims(&claims(ok.clone()), ep, 1000).is_ok());
        let mut long = ok.clone();
        long["exp"] = json!(1301);
        assert!(check_claims(&claims(long), ep, 1000).is_err());
        let mut aud = ok.clone();
        aud["aud"] = json!("https://elsewhere/register");
        assert!(check_claims(&claims(aud), ep, 1000).is_err());
        let mut sub = ok.clone();
        sub["sub"] = json!("https://other");
        assert!(check_claims(&claims(sub), ep, 1000).is_err());
        assert!(check_claims(&claims(ok), ep, 2000).is_err(), "expired");
    }

    #[test]
    fn metadata_depends_on_the_grant() {
        let base = json!({"client_name": "B2B", "contacts": ["mailto:ops@example.org"],
            "token_endpoint_auth_method": "private_key_jwt", "scope": "system/Patient.rs"});
        let cc = vec!["client_credentials".to_owned()];
        assert!(registered_metadata(&claims(base.clone()), &cc).is_ok());
        let mut no_mail = base.clone();
        no_mail["contacts"] = json!(["https://example.org"]);
        assert!(registered_metadata(&claims(no_mail), &cc).is_err());
        let mut with_redirect = base.clone();
        with_redirect["redirect_uris"] = json!(["https://app/cb"]);
        assert!(registered_metadata(&claims(with_redirect.clone()), &cc).is_err());
        let code = vec!["authorization_code".to_owned()];
        assert!(
            registered_metadata(&claims(with_redirect.clone()), &code).is_err(),
            "no logo"
        );
        let mut full = with_redirect;
        full["response_types"] = json!(["code"]);
        full["logo_uri"] = json!("https://app/logo.png");
        assert!(registered_metadata(&claims(full.clone()), &code).is_ok());
        full["redirect_uris"] = json!(["http://app/cb"]);
        assert!(
            registered_metadata(&claims(full), &code).is_err(),
            "https only"
        );
    }

    #[test]
    fn a_client_id_is_per_community_and_issuer() {
        assert_eq!(
            client_id_of("c1", "https://a"),
            client_id_of("c1", "https://a")
        );
        assert_ne!(
            client_id_of("c1", "https://a"),
            client_id_of("c2", "https://a")
        );
        assert_ne!(
            client_id_of("c1", "https://a"),
            client_id_of("c1", "https://b")
        );
    }
}
