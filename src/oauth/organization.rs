//! The organization a signed-in user acts for, fixed when a token is issued
//! (a consent decision input: Consent actors naming `Organization/X` match
//! the users of X). In order:
//! 1. the user directory's `organization` (set when the account is made, or
//!    from the federated provider's `[federation] organization_claim` at
//!    sign-in), carried in the grant;
//! 2. for a Practitioner user, the organization of their active
//!    PractitionerRole(s) in the upstream, searched as the system (when
//!    several organizations are named, the first by reference order; record
//!    the one that applies in the directory to choose);
//! 3. none.
//!
//! Backend Services clients get theirs from `[payer] provider_clients` at
//! decision time (`pipeline::consent::judge`), not here.

use serde_json::Value;

use crate::{
    error::FhirResult,
    fhir::{FhirRequest, Interaction, Reference},
    AppState,
};

/// Most PractitionerRoles read for one practitioner.
const ROLE_PAGE: &str = "100";

/// The organization for a grant (`organization`, `fhir_user` as the
/// authorize step stored them). An upstream failure is an error: a token
/// for a Practitioner is not issued without knowing their organization
/// (a Consent denying it must apply).
pub async fn for_grant(app: &AppState, grant: &Value) -> FhirResult<Option<String>> {
    if let Some(org) = grant["organization"].as_str().filter(|o| !o.is_empty()) {
        return Ok(Some(org.to_owned()));
    }
    match grant["fhir_user"].as_str() {
        Some(user) if user.starts_with("Practitioner/") => of_practitioner(app, user).await,
        _ => Ok(None),
    }
}

/// The organization of `practitioner`'s (`Practitioner/id`) active
/// PractitionerRoles, if any names one.
pub async fn of_practitioner(app: &AppState, practitioner: &str) -> FhirResult<Option<String>> {
    let ctx = app.request_context("token-organization");
    let mut req = FhirRequest::new(Interaction::SearchType);
    req.resource_type = Some("PractitionerRole".to_owned());
    req.params = vec![
        ("practitioner".to_owned(), practitioner.to_owned()),
        ("_count".to_owned(), ROLE_PAGE.to_owned()),
    ];
    let res = app.upstream.execute(&req, &ctx).await?;
    let entries = res
        .body
        .as_ref()
        .and_then(|b| b["entry"].as_array().cloned())
        .unwrap_or_default();
    Ok(pick(
        entries.iter().map(|e| &e["resource"]),
        practitioner,
        &ctx.base,
    ))
}

/// The first organization (by reference order) of the active
/// PractitionerRoles of `practitioner` among `roles`.
fn pick<'a>(
    roles: impl Iterator<Item = &'a Value>,
    practitioner: &str,
    base: &str,
) -> Option<String> {
    let norm = |r: &Value| {
        r.as_str()
            .and_then(|s| Reference::parse(s, Some(base)))
            .map(|r| r.to_string())
    };
    let mut orgs: Vec<String> = roles
        .filter(|r| r["resourceType"] == "PractitionerRole")
        .filter(|r| r["active"].as_bool() != Some(false))
        .filter(|r| norm(&r["practitioner"]["reference"]).as_deref() == Some(practitioner))
        .filter_map(|r| norm(&r["organization"]["reference"]))
        .filter(|o| o.starts_with("Organization/"))
        .collect();
    orgs.sort();
    orgs.dedup();
    if orgs.len() > 1 {
        tracing::info!(
            practitioner,
            organizations = orgs.len(),
            "practitioner has roles in several organizations: the first applies"
        );
    }
    orgs.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(id: &str, who: &str, org: &str, active: bool) -> Value {
        json!({"resourceType": "PractitionerRole", "id": id, "active": active,
            "practitioner": {"reference": who}, "organization": {"reference": org}})
    }

    #[test]
    fn active_roles_of_the_practitioner_name_the_organization() {
        let base = "https://gw.example/fhir";
        let roles = [
            role("r1", "Practitioner/other", "Organization/a", true),
            role("r2", "Practitioner/p", "Organization/old", false),
            role(
                "r3",
                "https://gw.example/fhir/Practitioner/p",
                "https://gw.example/fhir/Organization/z",
                true,
            ),
            role("r4", "Practitioner/p", "Organization/m", true),
            role("r5", "Practitioner/p", "Location/l", true),
        ];
        assert_eq!(
            pick(roles.iter(), "Practitioner/p", base).as_deref(),
            Some("Organization/m")
        );
        assert_eq!(pick(roles[..2].iter(), "Practitioner/p", base), None);
        assert_eq!(
            pick(roles[2..3].iter(), "Practitioner/p", base).as_deref(),
            Some("Organization/z")
        );
    }
}
