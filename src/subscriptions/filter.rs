//! The PAS topic's filter (PAS 2.0.1 `PASSubscriptionTopic` `canFilterBy`
//! `orgIdentifier`, comparator `eq`; PAS 2.2 spells it `org-identifier`),
//! carried in `Subscription.criteria.extension` `backport-filter-criteria`
//! as `[ClaimResponse?|Bundle?]orgIdentifier=v[,v…]`, each `v` being
//! `system|value` or a bare `value`. A request passes when its provider
//! identifier is one of them.

use serde_json::Value;

use super::model::{issue, Issue, Kind};

/// `Subscription.criteria` filter extension (backport).
pub const FILTER_EXT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";

/// One organization identifier a subscription is filtered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgIdentifier {
    /// `Identifier.system`, when given as `system|value`.
    pub system: Option<String>,
    /// `Identifier.value`.
    pub value: String,
}

impl OrgIdentifier {
    /// Whether a request's provider key (`system|value`, see
    /// `prior_auth::Keys::provider_key`) is this identifier.
    pub fn matches(&self, provider_key: &str) -> bool {
        let (system, value) = provider_key.split_once('|').unwrap_or(("", provider_key));
        value == self.value && self.system.as_deref().is_none_or(|s| s == system)
    }
}

/// Every `backport-filter-criteria` of `criteria`, parsed; at least one is
/// required (PAS: "The Subscription filter criteria SHALL be
/// org-identifier = [sending system identifier]").
pub(crate) fn filter(body: &Value, issues: &mut Vec<Issue>) -> Vec<OrgIdentifier> {
    let path = "Subscription.criteria.extension('backport-filter-criteria')";
    let exts: Vec<&Value> = body["_criteria"]["extension"]
        .as_array()
        .map(|es| es.iter().filter(|e| e["url"] == FILTER_EXT).collect())
        .unwrap_or_default();
    if exts.is_empty() {
        issues.push(issue(
            Kind::Structure,
            "required",
            path,
            "a filter on the submitting organization is required (PAS): orgIdentifier=<identifier>",
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in exts {
        match e["valueString"].as_str().map(parse_filter) {
            Some(Ok(ids)) => out.extend(ids),
            Some(Err(why)) => issues.push(issue(Kind::Unsupported, "value", path, why)),
            None => issues.push(issue(
                Kind::Structure,
                "required",
                path,
                "the filter criteria extension needs a valueString",
            )),
        }
    }
    out
}

/// Parses one filter string: `[ClaimResponse?|Bundle?](orgIdentifier|org-identifier)[:eq]=v[,v…]`.
pub fn parse_filter(s: &str) -> Result<Vec<OrgIdentifier>, String> {
    let q = match s.split_once('?') {
        Some(("ClaimResponse" | "Bundle", q)) => q,
        Some((t, _)) => {
            return Err(format!(
                "filter on '{t}' is not supported; use orgIdentifier=<identifier>"
            ))
        }
        None => s,
    };
    let Some((name, values)) = q.split_once('=') else {
        return Err(format!(
            "'{s}' is not a filter; use orgIdentifier=<identifier>"
        ));
    };
    let name = name.strip_suffix(":eq").unwrap_or(name);
    if name != "orgIdentifier" && name != "org-identifier" {
        return Err(format!(
            "filter parameter '{name}' is not supported; the PAS topic filters by orgIdentifier"
        ));
    }
    let mut out = Vec::new();
    for v in values.split(',') {
        let v = v.trim();
        let (system, value) = match v.split_once('|') {
            Some((s, v)) => (Some(s.to_owned()).filter(|s| !s.is_empty()), v),
            None => (None, v),
        };
        if value.is_empty() || value.contains('&') {
            return Err(format!("'{v}' is not an organization identifier"));
        }
        out.push(OrgIdentifier {
            system,
            value: value.to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let ids = parse_filter("orgIdentifier=N123456,sys|4543315").unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].system, None);
        assert!(ids[0].matches("any|N123456"));
        assert!(ids[1].matches("sys|4543315") && !ids[1].matches("other|4543315"));
        assert!(parse_filter("ClaimResponse?org-identifier=x").is_ok());
        assert!(parse_filter("Bundle?orgIdentifier:eq=x").is_ok());
        assert!(parse_filter("Patient?orgIdentifier=x").is_err());
        assert!(parse_filter("patient=x").is_err());
        assert!(parse_filter("orgIdentifier=").is_err());
        assert!(parse_filter("nonsense").is_err());
    }
}
