//! The openidconnect crate's types, instantiated for fhirgate, and reading
//! a named claim out of verified id_token claims.
//!
//! The id_token's non-standard claims are kept (`ExtraClaims`) so that
//! `federation.username_claims` may name any string claim (Entra's `oid`
//! or `upn`, say), not only the standard ones.

use std::collections::BTreeMap;

use openidconnect::{
    core::{
        CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
        CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
        CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
    },
    AdditionalClaims, Client, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenClaims, IdTokenFields, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

/// The id_token claims that are not standard OpenID Connect claims.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    /// Claim name to value.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl AdditionalClaims for ExtraClaims {}

/// Verified id_token claims.
pub type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// The token endpoint's answer.
pub type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        ExtraClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// A client built from discovered provider metadata (authorization endpoint
/// set; token and userinfo endpoints as the metadata says).
pub type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The value of claim `name` when it is a non-empty string.
pub fn claim(claims: &Claims, name: &str) -> Option<String> {
    let value = match name {
        "sub" => Some(claims.subject().as_str().to_owned()),
        "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
        "email" => claims.email().map(|e| e.as_str().to_owned()),
        "nickname" => claims
            .nickname()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
        other => claims
            .additional_claims()
            .other
            .get(other)
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    };
    value.filter(|v| !v.trim().is_empty())
}

/// The local user name: the first of `names` the claims carry.
pub fn username(claims: &Claims, names: &[String]) -> Option<String> {
    names.iter().find_map(|n| claim(claims, n))
}

/// The organization claim `name` states, as `Organization/<id>`: the
/// claim's value when it is such a reference, or a bare id; anything else
/// (an absolute URL, another resource type) is not taken.
pub fn organization(claims: &Claims, name: &str) -> Option<String> {
    let v = claim(claims, name)?;
    let v = v.trim();
    let reference = if v.contains('/') {
        v.to_owned()
    } else {
        format!("Organization/{v}")
    };
    crate::fhir::Reference::parse(&reference, None)
        .filter(|r| r.resource_type == "Organization")
        .map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(extra: serde_json::Value) -> Claims {
        let mut v = serde_json::json!({
            "iss": "https://op.example", "aud": "c", "exp": 2_000_000_000, "iat": 1_700_000_000,
            "sub": "acct-1"
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_first_present_claim_names_the_user() {
        let default = names(&["preferred_username", "email", "sub"]);
        let c = claims(serde_json::json!({"preferred_username": "dr.lee", "email": "l@x"}));
        assert_eq!(username(&c, &default).as_deref(), Some("dr.lee"));
        let c = claims(serde_json::json!({"email": "l@x"}));
        assert_eq!(username(&c, &default).as_deref(), Some("l@x"));
        let c = claims(serde_json::json!({"preferred_username": " "}));
        assert_eq!(username(&c, &default).as_deref(), Some("acct-1"));
    }

    #[test]
    fn any_string_claim_can_be_named() {
        let c = claims(serde_json::json!({"oid": "0f1e", "groups": ["a"]}));
        assert_eq!(username(&c, &names(&["oid"])).as_deref(), Some("0f1e"));
        assert_eq!(username(&c, &names(&["groups"])), None, "not a string");
        assert_eq!(username(&c, &names(&["upn"])), None);
    }

    #[test]
    fn the_organization_claim_is_an_organization_reference_or_id() {
        let c = claims(
            serde_json::json!({"org": "Organization/clinic", "tenant": "hosp-1",
            "url": "https://x.example/Organization/a", "who": "Practitioner/p", "n": 7}),
        );
        assert_eq!(
            organization(&c, "org").as_deref(),
            Some("Organization/clinic")
        );
        assert_eq!(
            organization(&c, "tenant").as_deref(),
            Some("Organization/hosp-1")
        );
        assert_eq!(organization(&c, "url"), None);
        assert_eq!(organization(&c, "who"), None);
        assert_eq!(organization(&c, "n"), None);
        assert_eq!(organization(&c, "absent"), None);
    }
}
