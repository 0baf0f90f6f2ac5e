//! SMART App Launch 2.2 discovery (`.well-known/smart-configuration`,
//! "Conformance" section), the OpenID Connect discovery document, and the
//! CapabilityStatement `rest.security` block with the `oauth-uris` extension.

use serde_json::{json, Value};

/// The endpoints of the authorization server.
#[derive(Debug, Clone)]
pub struct OAuthUris {
    /// Issuer (the FHIR base URL).
    pub issuer: String,
    /// `/auth/authorize`.
    pub authorize: String,
    /// `/auth/token`.
    pub token: String,
    /// `/auth/register`.
    pub register: String,
    /// `/auth/introspect`.
    pub introspect: String,
    /// `/auth/revoke`.
    pub revoke: String,
    /// `/auth/jwks`.
    pub jwks: String,
    /// Where the launcher and management UI live.
    pub manage: String,
}

impl OAuthUris {
    /// The standard layout below `public_url`.
    pub fn under(public_url: &str, fhir_base: &str) -> Self {
        let p = public_url.trim_end_matches('/');
        Self {
            issuer: fhir_base.to_owned(),
            authorize: format!("{p}/auth/authorize"),
            token: format!("{p}/auth/token"),
            register: format!("{p}/auth/register"),
            introspect: format!("{p}/auth/introspect"),
            revoke: format!("{p}/auth/revoke"),
            jwks: format!("{p}/auth/jwks"),
            manage: format!("{p}/launcher"),
        }
    }
}

/// Scopes advertised in discovery.
pub const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
    "patient/*.write",
    "user/*.write",
    "system/*.write",
];

/// `{fhir base}/.well-known/smart-configuration`.
pub fn smart_configuration(u: &OAuthUris) -> Value {
    json!({
        "issuer": u.issuer,
        "jwks_uri": u.jwks,
        "authorization_endpoint": u.authorize,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint": u.token,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256"],
        "registration_endpoint": u.register,
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "management_endpoint": u.manage,
        "introspection_endpoint": u.introspect,
        "revocation_endpoint": u.revoke,
        "code_challenge_methods_supported": ["S256"],
        "capabilities": [
            "launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
            "client-confidential-asymmetric", "context-banner", "context-style",
            "context-ehr-patient", "context-ehr-encounter", "context-standalone-patient",
            "permission-offline", "permission-online", "permission-patient", "permission-user",
            "permission-v1", "permission-v2", "sso-openid-connect", "authorize-post"
        ],
    })
}

/// OpenID Connect discovery for the same issuer.
pub fn openid_configuration(u: &OAuthUris) -> Value {
    json!({
        "issuer": u.issuer,
        "authorization_endpoint": u.authorize,
        "token_endpoint": u.token,
        "jwks_uri": u.jwks,
        "registration_endpoint": u.register,
        "scopes_supported": ["openid", "fhirUser", "profile", "udap"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
        "code_challenge_methods_supported": ["S256"],
    })
}

/// The CapabilityStatement `rest.security` element.
pub fn security(u: &OAuthUris) -> Value {
    json!({
        "cors": true,
        "service": [{
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
            "text": "OAuth2 using SMART App Launch 2.2"
        }],
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [
                {"url": "authorize", "valueUri": u.authorize},
                {"url": "token", "valueUri": u.token},
                {"url": "register", "valueUri": u.register},
                {"url": "manage", "valueUri": u.manage},
                {"url": "introspect", "valueUri": u.introspect},
                {"url": "revoke", "valueUri": u.revoke},
            ]
        }]
    })
}

/// The UDAP `rest.security.service` (UDAP Security IG, "Discovery": the
/// CapabilityStatement SHALL include this code when UDAP is supported;
/// HL7's restful-security-service code system has no UDAP code).
pub fn udap_service() -> Value {
    json!({
        "coding": [{"system": "http://fhir.udap.org/CodeSystem/capability-rest-security-service", "code": "UDAP", "display": "UDAP"}],
        "text": "UDAP JWT-based client authentication and dynamic registration (HL7 UDAP Security)"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_has_every_required_field() {
        let u = OAuthUris::under("http://h", "http://h/fhir");
        let d = smart_configuration(&u);
        for k in [
            "issuer",
            "jwks_uri",
            "authorization_endpoint",
            "grant_types_supported",
            "token_endpoint",
            "token_endpoint_auth_methods_supported",
            "registration_endpoint",
            "scopes_supported",
            "response_types_supported",
            "introspection_endpoint",
            "revocation_endpoint",
            "code_challenge_methods_supported",
            "capabilities",
        ] {
            assert!(d.get(k).is_some(), "{k}");
        }
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d["capabilities"].as_array().map(Vec::len), Some(18));
        assert_eq!(
            security(&u)["extension"][0]["extension"][1]["valueUri"],
            "http://h/auth/token"
        );
    }
}
