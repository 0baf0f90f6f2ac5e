//! Validation of one resource (FHIR R4 `$validate`, and writes under
//! `[validation] on_write`): the base checks (a JSON object whose
//! `resourceType` is an R4 resource type, the type the URL names, an `id`
//! as the mode needs it), then every profile that applies: the one the
//! caller names (`profile`; unknown is an error), those the resource's
//! `meta.profile` claims (unknown ones are a warning: not checked), and the
//! configured `required_profiles` of its type. Profiles are the data in the
//! `profiles` crate, checked by `profiles::Profile::check`.
//!
//! The answer is an OperationOutcome with one issue per problem, its
//! element named FHIRPath-style in `expression` (`Patient.name[0].family`);
//! no problem at all is one `informational` issue.

use serde_json::{json, Value};

use crate::fhir::types::is_resource_type;

/// How serious an issue is (OperationOutcome `issue.severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The resource is invalid.
    Error,
    /// Worth knowing, not invalid.
    Warning,
    /// No problem.
    Information,
}

impl Severity {
    fn code(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Information => "information",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Its severity.
    pub severity: Severity,
    /// FHIR IssueType code.
    pub code: String,
    /// FHIRPath-like element path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Finding {
    fn new(severity: Severity, code: &str, path: &str, message: impl Into<String>) -> Self {
        Self {
            severity,
            code: code.to_owned(),
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// `$validate`'s `mode` (R4 Resource-validate): what the resource is
/// checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No mode: the resource as content.
    General,
    /// As a create (an `id` is ignored by the server: a warning).
    Create,
    /// As an update of the instance the URL names (its `id` must match).
    Update,
    /// As a delete of the instance (nothing in fhirgate forbids one).
    Delete,
    /// Only against the named profile.
    Profile,
}

impl Mode {
    /// Parses a `mode` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "create" => Self::Create,
            "update" => Self::Update,
            "delete" => Self::Delete,
            "profile" => Self::Profile,
            _ => return None,
        })
    }
}

/// The profile fhirgate knows by `canonical` (a `|version` suffix ignored):
/// the `profiles` crate's catalog (US Core 6.1, CARIN BB 2.0, HRex, PAS).
pub fn known_profile(canonical: &str) -> Option<&'static profiles::Profile> {
    profiles::catalog().by_url(canonical)
}

/// What to check a resource against.
pub struct Request<'a> {
    /// The resource type the URL names.
    pub resource_type: &'a str,
    /// The instance id the URL names (instance level).
    pub id: Option<&'a str>,
    /// The mode.
    pub mode: Mode,
    /// The profile the caller names.
    pub profile: Option<&'a str>,
    /// Profiles every resource of the type must meet (configured).
    pub required: &'a [String],
    /// Also report must-support elements that are absent (information).
    pub advice: bool,
}

/// Checks `resource` (see the module docs).
pub fn validate(resource: &Value, r: &Request<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let rt = r.resource_type;
    let Some(obj) = resource.as_object() else {
        out.push(Finding::new(
            Severity::Error,
            "structure",
            rt,
            "the resource is not a JSON object",
        ));
        return out;
    };
    match obj.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == rt => {}
        Some(t) if !is_resource_type(t) => {
            out.push(Finding::new(
                Severity::Error,
                "structure",
                rt,
                format!("'{t}' is not an R4 resource type"),
            ));
            return out;
        }
        Some(t) => {
            out.push(Finding::new(
                Severity::Error,
                "structure",
                rt,
                format!("the resource is a {t}, not a {rt}"),
            ));
            return out;
        }
        None => {
            out.push(Finding::new(
                Severity::Error,
                "required",
                &format!("{rt}.resourceType"),
                "resourceType is required",
            ));
            return out;
        }
    }
    let id = obj.get("id").and_then(Value::as_str);
    match r.mode {
        Mode::Create if id.is_some() => out.push(Finding::new(
            Severity::Warning,
            "value",
            &format!("{rt}.id"),
            "a create ignores the id; the server assigns one",
        )),
        Mode::Update if id != r.id || id.is_none() => out.push(Finding::new(
            Severity::Error,
            "value",
            &format!("{rt}.id"),
            format!(
                "an update of {rt}/{} needs that id in the resource",
                r.id.unwrap_or("?")
            ),
        )),
        _ => {}
    }
    let mut urls: Vec<(String, bool)> = Vec::new();
    if let Some(p) = r.profile {
        urls.push((p.to_owned(), true));
    }
    if r.mode != Mode::Profile {
        let claimed = resource["meta"]["profile"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned))
            .into_iter()
            .flatten();
        urls.extend(claimed.map(|u| (u, false)));
        urls.extend(
            r.required
                .iter()
                .filter(|u| known_profile(u).is_some_and(|p| p.resource_type == rt))
                .map(|u| (u.clone(), true)),
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for (url, named) in &urls {
        let bare = url.split('|').next().unwrap_or(url);
        if seen.contains(&bare) {
            continue;
        }
        seen.push(bare);
        match known_profile(url) {
            Some(p) => {
                let gaps = if r.advice {
                    p.must_support_gaps(resource, rt)
                } else {
                    Vec::new()
                };
                out.extend(p.check(resource, rt).into_iter().chain(gaps).map(|i| {
                    let severity = if i.is_error() {
                        Severity::Error
                    } else {
                        Severity::Information
                    };
                    Finding {
                        severity,
                        code: i.code.to_owned(),
                        path: i.path,
                        message: i.message,
                    }
                }))
            }
            None if *named => out.push(Finding::new(
                Severity::Error,
                "not-supported",
                rt,
                format!("the profile {url} is not known to this server"),
            )),
            None => out.push(Finding::new(
                Severity::Warning,
                "not-supported",
                &format!("{rt}.meta.profile"),
                format!(
                    "the claimed profile {url} is not known to this server and was not checked"
                ),
            )),
        }
    }
    out
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// The OperationOutcome of `findings` (one informational issue when empty).
pub fn outcome(findings: &[Finding]) -> Value {
    if findings.is_empty() {
        return json!({"resourceType": "OperationOutcome", "issue": [{
            "severity": "information", "code": "informational",
            "diagnostics": "No issues found: the resource is valid."}]});
    }
    let issue: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "severity": f.severity.code(),
                "code": f.code,
                "diagnostics": format!("{}: {}", f.path, f.message),
                "expression": [f.path],
            })
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issue})
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAS_CLAIM: &str = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim";

    fn req<'a>(rt: &'a str, mode: Mode, profile: Option<&'a str>) -> Request<'a> {
        Request {
            resource_type: rt,
            id: Some("p1"),
            mode,
            profile,
            required: &[],
            advice: false,
        }
    }

    #[test]
    fn base_checks_name_the_problem() {
        let f = validate(&json!([1]), &req("Patient", Mode::General, None));
        assert_eq!(f[0].code, "structure");
        let f = validate(
            &json!({"resourceType": "Observation"}),
            &req("Patient", Mode::General, None),
        );
        assert!(f[0].message.contains("not a Patient"), "{f:?}");
        let f = validate(&json!({}), &req("Patient", Mode::General, None));
        assert_eq!(f[0].path, "Patient.resourceType");
        let f = validate(
            &json!({"resourceType": "Patient", "id": "other"}),
            &req("Patient", Mode::Update, None),
        );
        assert_eq!(
            (f[0].code.as_str(), f[0].path.as_str()),
            ("value", "Patient.id")
        );
        let f = validate(
            &json!({"resourceType": "Patient", "id": "x"}),
            &req("Patient", Mode::Create, None),
        );
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(!has_errors(&f));
        assert!(validate(
            &json!({"resourceType": "Patient"}),
            &req("Patient", Mode::General, None)
        )
        .is_empty());
    }

    #[test]
    fn profiles_named_claimed_and_unknown() {
        // a named profile: every violation by path
        let claim = json!({"resourceType": "Claim", "status": "active", "use": "claim"});
        let f = validate(&claim, &req("Claim", Mode::Profile, Some(PAS_CLAIM)));
        assert!(has_errors(&f));
        assert!(
            f.iter().any(|x| x.path == "Claim.use" && x.code == "value"),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|x| x.path == "Claim.patient" && x.code == "required"),
            "{f:?}"
        );
        // claimed in meta.profile: the same checks
        let mut claimed = claim.clone();
        claimed["meta"] = json!({"profile": [format!("{PAS_CLAIM}|2.0.1")]});
        let g = validate(&claimed, &req("Claim", Mode::General, None));
        assert_eq!(f.len(), g.len());
        // unknown: an error when named, a warning when only claimed
        let f = validate(
            &claim,
            &req("Claim", Mode::Profile, Some("http://example.org/sd/x")),
        );
        assert_eq!(f[0].code, "not-supported");
        assert_eq!(f[0].severity, Severity::Error);
        let mut unknown = json!({"resourceType": "Claim"});
        unknown["meta"] = json!({"profile": ["http://example.org/sd/x"]});
        let f = validate(&unknown, &req("Claim", Mode::General, None));
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn outcomes_carry_expression_and_severity() {
        let o = outcome(&[]);
        assert_eq!(o["issue"][0]["severity"], "information");
        let o = outcome(&[Finding::new(
            Severity::Error,
            "required",
            "Patient.name",
            "missing",
        )]);
        assert_eq!(o["issue"][0]["expression"][0], "Patient.name");
        assert_eq!(o["issue"][0]["severity"], "error");
    }
}
