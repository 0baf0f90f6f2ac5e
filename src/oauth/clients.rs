//! OAuth clients: registration (RFC 7591 dynamic registration, the
//! `fhirgate client add` command and the admin page all go through
//! `register`) and client authentication at the token endpoint (RFC 6749
//! §2.3: public, `client_secret_basic`, and `private_key_jwt` per SMART
//! Backend Services / RFC 7523, or with an `x5c` chain for clients that
//! registered by UDAP, see `udap::authn`).

use base64::{engine::general_purpose::STANDARD, Engine};
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};
use smart_launch::{
    assertion::{self, AssertionRules},
    b2b::B2b,
    scope::ScopeSet,
    token::random_token,
    OAuthError, OAuthErrorCode,
};

use super::now;
use crate::{
    state::{oauth::ClientRecord, users::hash_password},
    AppState,
};

/// RFC 7523 client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Scopes a code-flow client gets when it registers none.
const DEFAULT_APP_SCOPE: &str =
    "openid fhirUser profile launch launch/patient launch/encounter offline_access online_access patient/*.cruds user/*.cruds";

/// Registered redirect URIs.
pub fn redirect_uris(meta: &Value) -> Vec<String> {
    meta["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Registered scope (the most a client may be granted).
pub fn registered_scope(meta: &Value) -> &str {
    meta["scope"].as_str().unwrap_or("")
}

/// Registered grant types.
pub fn grant_types(meta: &Value) -> Vec<String> {
    meta["grant_types"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn metadata_error(d: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClientMetadata, d)
}

fn check_url(u: &str, what: &str) -> Result<(), OAuthError> {
    let parsed = url::Url::parse(u).map_err(|_| {
        OAuthError::new(
            OAuthErrorCode::InvalidRedirectUri,
            format!("{what} '{u}' is not an absolute URL"),
        )
    })?;
    if parsed.fragment().is_some() || !matches!(parsed.scheme(), "https" | "http") {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidRedirectUri,
            format!("{what} '{u}' must be http(s) without a fragment"),
        ));
    }
    Ok(())
}

/// Registers a client from RFC 7591 metadata. Returns the record, the
/// client secret (shown once, for `client_secret_basic` clients) and the
/// RFC 7591 §3.2.1 response body.
pub async fn register(app: &AppState, meta: &Value) -> Result<(ClientRecord, Value), OAuthError> {
    let obj = meta
        .as_object()
        .ok_or_else(|| metadata_error("the registration body must be a JSON object"))?;
    let name = obj
        .get("client_name")
        .and_then(Value::as_str)
        .unwrap_or("Unnamed app")
        .to_owned();
    let method = obj
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let client_type = match method {
        "none" => "public",
        "client_secret_basic" => "confidential-symmetric",
        "private_key_jwt" => "confidential-asymmetric",
        other => {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method '{other}' is not supported"
            )))
        }
    };
    let grants: Vec<String> = match obj.get("grant_types") {
        None => vec!["authorization_code".into()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => return Err(metadata_error("grant_types must be an array")),
    };
    for g in &grants {
        match g.as_str() {
            "authorization_code" | "refresh_token" => {}
            "client_credentials" if client_type == "confidential-asymmetric" => {}
            "client_credentials" => return Err(metadata_error("client_credentials needs token_endpoint_auth_method private_key_jwt (SMART Backend Services)")),
            other => return Err(metadata_error(format!("grant type '{other}' is not supported"))),
        }
    }
    let uses_code = grants.iter().any(|g| g == "authorization_code");
    let uris = redirect_uris(meta);
    if uses_code && uris.is_empty() {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidRedirectUri,
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    for u in &uris {
        check_url(u, "redirect_uri")?;
    }
    if let Some(l) = obj.get("launch_url") {
        check_url(l.as_str().unwrap_or(""), "launch_url")?;
    }
    let scope = match obj.get("scope").and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None if uses_code => DEFAULT_APP_SCOPE.to_owned(),
        None => {
            return Err(metadata_error(
                "scope is required for a Backend Services client",
            ))
        }
    };
    ScopeSet::parse(&scope).map_err(|e| metadata_error(format!("scope is malformed: {e}")))?;
    if client_type == "confidential-asymmetric" {
        match (obj.get("jwks"), obj.get("jwks_uri")) {
            (Some(Value::Object(j)), _) if j.get("keys").is_some_and(Value::is_array) => {}
            (None, Some(Value::String(u))) => check_url(u, "jwks_uri")?,
            _ => {
                return Err(metadata_error(
                    "private_key_jwt clients must register jwks (with keys) or jwks_uri",
                ))
            }
        }
    }
    let client_id = random_token(16);
    let secret = (client_type == "confidential-symmetric").then(|| random_token(32));
    let secret_hash = secret
        .as_deref()
        .map(hash_password)
        .transpose()
        .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))?;
    let mut stored = meta.clone();
    stored["client_name"] = json!(name);
    stored["grant_types"] = json!(grants);
    stored["scope"] = json!(scope);
    stored["token_endpoint_auth_method"] = json!(method);
    if let Some(o) = stored.as_object_mut() {
        o.remove("client_secret");
        o.remove("client_id");
    }
    let record = ClientRecord {
        client_id: client_id.clone(),
        client_name: name,
        client_type: client_type.to_owned(),
        secret_hash,
        metadata: stored.clone(),
        created_at: now(),
    };
    app.state.client_insert(&record).await.map_err(|e| {
        OAuthError::new(
            OAuthErrorCode::ServerError,
            format!("could not store the client: {e}"),
        )
    })?;
    let mut response = stored;
    response["client_id"] = json!(client_id);
    response["client_id_issued_at"] = json!(record.created_at);
    if let Some(s) = secret {
        response["client_secret"] = json!(s);
        response["client_secret_expires_at"] = json!(0);
    }
    Ok((record, response))
}

/// Authenticates the client of a token, introspection or revocation request.
pub async fn authenticate(
    app: &AppState,
    form: &[(String, String)],
    authorization: Option<&str>,
) -> Result<ClientRecord, OAuthError> {
    Ok(authenticate_with_extensions(app, form, authorization)
        .await?
        .0)
}

/// [`authenticate`], also returning the UDAP B2B extension (`hl7-b2b`) a
/// `private_key_jwt` assertion carried, checked (a malformed one is
/// `invalid_grant`).
pub async fn authenticate_with_extensions(
    app: &AppState,
    form: &[(String, String)],
    authorization: Option<&str>,
) -> Result<(ClientRecord, Option<B2b>), OAuthError> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(basic) = authorization.and_then(|a| {
        a.strip_prefix("Basic ")
            .or_else(|| a.strip_prefix("basic "))
    }) {
        let decoded = STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
        let id = percent_decode_str(id).decode_utf8_lossy().into_owned();
        let secret = percent_decode_str(secret).decode_utf8_lossy().into_owned();
        let client = lookup(app, &id).await?;
        let ok = match (&client.client_type[..], &client.secret_hash) {
            ("confidential-symmetric", Some(hash)) => verify_secret(hash, &secret)?,
            _ => false,
        };
        return if ok {
            Ok((client, None))
        } else {
            Err(OAuthError::invalid_client("client authentication failed"))
        };
    }
    if let Some(kind) = get("client_assertion_type") {
        if kind != JWT_BEARER {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let jwt = get("client_assertion")
            .ok_or_else(|| OAuthError::invalid_request("client_assertion is missing"))?;
        let iss = assertion::peek_issuer(jwt)?;
        let client = lookup(app, &iss).await?;
        if client.client_type != "confidential-asymmetric" {
            return Err(OAuthError::invalid_client(
                "this client does not authenticate with private_key_jwt",
            ));
        }
        let token_endpoint = format!(
            "{}/auth/token",
            app.config.public_url.as_str().trim_end_matches('/')
        );
        let verified = if crate::udap::authn::is_udap(&client) {
            // registered by UDAP: the certificate chain in x5c, not a JWKS
            crate::udap::authn::verify_client_assertion(app, &client, jwt, &token_endpoint, now())
                .await?
        } else {
            let jwks = client_jwks(&client).await?;
            let rules = AssertionRules {
                client_id: &client.client_id,
                token_endpoint: &token_endpoint,
                now: now(),
                max_lifetime_secs: 300,
                leeway_secs: 60,
            };
            assertion::verify_client_assertion(jwt, &jwks, &rules)?
        };
        let first = app
            .state
            .assertion_jti_first_use(&client.client_id, &verified.jti, verified.exp + 60, now())
            .await
            .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))?;
        if !first {
            return Err(OAuthError::invalid_client(
                "the client assertion's jti was already used",
            ));
        }
        let b2b = B2b::from_extensions(verified.extensions.as_ref())?;
        return Ok((client, b2b));
    }
    let id = get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("no client authentication and no client_id"))?;
    let client = lookup(app, id).await?;
    if client.client_type != "public" {
        return Err(OAuthError::invalid_client("this client must authenticate"));
    }
    Ok((client, None))
}

async fn lookup(app: &AppState, id: &str) -> Result<ClientRecord, OAuthError> {
    app.state
        .client_get(id)
        .await
        .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))
}

/// Checks a client secret against its stored argon2id hash.
fn verify_secret(hash: &str, secret: &str) -> Result<bool, OAuthError> {
    let parsed = argon2::PasswordHash::new(hash)
        .map_err(|e| OAuthError::new(OAuthErrorCode::ServerError, e.to_string()))?;
    use argon2::PasswordVerifier;
    Ok(argon2::Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok())
}

/// The client's JWKS: registered inline, or fetched from `jwks_uri`.
async fn client_jwks(client: &ClientRecord) -> Result<Value, OAuthError> {
    if let Some(j) = client.metadata.get("jwks").filter(|j| j.is_object()) {
        return Ok(j.clone());
    }
    let uri = client.metadata["jwks_uri"]
        .as_str()
        .ok_or_else(|| OAuthError::invalid_client("the client has no keys registered"))?;
    let fetch = async {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?
            .get(uri)
            .send()
            .await?
            .error_for_status()?
            .json::<Value>()
            .await
    };
    fetch.await.map_err(|e| {
        OAuthError::invalid_client(format!("could not fetch the client's jwks_uri: {e}"))
    })
}
