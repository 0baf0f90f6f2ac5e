//! `POST /fhir/Group/{id}/$davinci-data-export` (PDex 2.x Provider Access
//! and Payer-to-Payer): validates the request, restricts it to the data
//! classes the API may release, adds the PDex time windows, and hands the
//! export to the Bulk Data core (`bulk::kickoff`, as a POST Group `$export`
//! of the same client naming, as `patient`, exactly the members the caller
//! may export; the core answers 202 with the status URL).
//!
//! Parameters (body `Parameters` and/or query): `exportType` (required:
//! `hl7.fhir.us.davinci-pdex#provider-delivery`, `#provider-download`,
//! `#provider-snapshot` for an attribution Group of the caller's provider
//! organization; `#payertopayer` for a Group the caller's `$bulk-member-match`
//! made), `_since` (FHIR instant), `_type` (comma-separated, each an allowed
//! class; default: all), `_typeFilter`, `_outputFormat`. Anything else, or a
//! type outside the allowed classes, is 400 unless `Prefer: handling=lenient`
//! (then ignored).
//!
//! Allowed classes ([`CLINICAL`], [`CLAIMS`]): US Core clinical data;
//! claims and encounter data without provider remittances or enrollee
//! cost sharing (ExplanationOfBenefit limited by `_elements` to
//! [`EOB_ELEMENTS`], which leaves out `payment`, `total`, `benefitBalance`,
//! `payee` and the adjudicated `item`/`addItem` lines); prior-authorization
//! decisions (`ClaimResponse` with `use=preauthorization` only).
//!
//! A provider client's export is judged by consent under purpose of use
//! `TREAT` (Provider Access serves treatment) unless its token names
//! another purpose.
//!
//! Payer-to-Payer windows: resources with a service date (see [`WINDOWS`])
//! only within the last 5 years; prior authorizations only when changed in
//! the last 12 months (ANDed into every `_typeFilter` of those types, or
//! added as the type's filter). "Active" prior authorizations older than
//! that are not included (a filter cannot OR `status=active` into the
//! window without widening the caller's own filters).

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{groups, matching, params};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{FhirRequest, FhirResponse, Interaction, PreferHandling},
    pipeline::Disclosure,
    upstream::RequestContext,
    AppState,
};

/// The PDex export types.
pub const PROVIDER_TYPES: &[&str] = &[
    "hl7.fhir.us.davinci-pdex#provider-delivery",
    "hl7.fhir.us.davinci-pdex#provider-download",
    "hl7.fhir.us.davinci-pdex#provider-snapshot",
];
/// The Payer-to-Payer export type.
pub const PAYER_TO_PAYER: &str = "hl7.fhir.us.davinci-pdex#payertopayer";

/// US Core clinical data classes.
pub const CLINICAL: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "Location",
    "Medication",
    "MedicationDispense",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
    "Specimen",
];
/// Claims and prior-authorization classes.
pub const CLAIMS: &[&str] = &["ExplanationOfBenefit", "ClaimResponse"];

/// ExplanationOfBenefit elements released (no remittance, no cost sharing).
pub const EOB_ELEMENTS: &[&str] = &[
    "identifier",
    "status",
    "type",
    "subType",
    "use",
    "patient",
    "billablePeriod",
    "created",
    "insurer",
    "provider",
    "related",
    "prescription",
    "referral",
    "facility",
    "claim",
    "outcome",
    "preAuthRef",
    "preAuthRefPeriod",
    "careTeam",
    "supportingInfo",
    "diagnosis",
    "procedure",
    "insurance",
    "accident",
];

/// Service-date search parameter per type, for the 5-year window.
pub const WINDOWS: &[(&str, &str)] = &[
    ("CarePlan", "date"),
    ("DiagnosticReport", "date"),
    ("DocumentReference", "date"),
    ("Encounter", "date"),
    ("ExplanationOfBenefit", "billable-period-start"),
    ("Immunization", "date"),
    ("MedicationRequest", "authoredon"),
    ("Observation", "date"),
    ("Procedure", "date"),
    ("ServiceRequest", "authored"),
    ("Specimen", "collected"),
];

/// What the export will be, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The Group.
    pub group_id: String,
    /// `exportType`.
    pub export_type: String,
    /// Types exported.
    pub types: Vec<String>,
    /// `_since`.
    pub since: Option<String>,
    /// `(type, query)` filters, OR'd per type.
    pub type_filters: Vec<(String, String)>,
    /// `Type.element` `_elements`.
    pub elements: Vec<String>,
    /// `_outputFormat`, passed on.
    pub output_format: Option<String>,
}

/// `YYYY-MM-DD` of `years` years before today (UTC).
fn years_ago(years: i32) -> String {
    let d = time::OffsetDateTime::now_utc().date();
    let y = d.year() - years;
    let back = d
        .replace_year(y)
        .or_else(|_| d.replace_day(28).and_then(|d| d.replace_year(y)))
        .unwrap_or(d);
    format!(
        "{:04}-{:02}-{:02}",
        back.year(),
        u8::from(back.month()),
        back.day()
    )
}

/// Validates the request into a [`Plan`] (the Group checked separately).
pub fn plan(req: &FhirRequest, group_id: &str, parts: &[Value]) -> FhirResult<Plan> {
    let lenient = req.prefer.handling == Some(PreferHandling::Lenient);
    let refuse = |msg: String| -> FhirResult<()> {
        if lenient {
            Ok(())
        } else {
            Err(FhirError::bad_request(msg))
        }
    };
    for p in parts {
        let n = p["name"].as_str().unwrap_or_default();
        if !matches!(
            n,
            "exportType" | "_since" | "_type" | "_typeFilter" | "_outputFormat"
        ) {
            refuse(format!(
                "the $davinci-data-export parameter '{n}' is not supported"
            ))?;
        }
    }
    for (n, _) in &req.params {
        if !matches!(
            n.as_str(),
            "exportType" | "_since" | "_type" | "_typeFilter" | "_outputFormat"
        ) {
            refuse(format!(
                "the $davinci-data-export parameter '{n}' is not supported"
            ))?;
        }
    }
    let q = &req.params;
    let export_type = match params::values(parts, q, "exportType").as_slice() {
        [] => return Err(FhirError::bad_request("parameter exportType is missing")),
        [one] => one.clone(),
        _ => {
            return Err(FhirError::bad_request(
                "parameter exportType must appear once",
            ))
        }
    };
    if export_type != PAYER_TO_PAYER && !PROVIDER_TYPES.contains(&export_type.as_str()) {
        return Err(FhirError::bad_request(format!(
            "exportType '{export_type}' is not supported; use {} or {PAYER_TO_PAYER}",
            PROVIDER_TYPES.join(", ")
        )));
    }
    let since = match params::values(parts, q, "_since").as_slice() {
        [] => None,
        [s] => {
            if time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .is_err()
            {
                return Err(FhirError::bad_request(format!(
                    "_since '{s}' is not a FHIR instant (e.g. 2024-01-01T00:00:00Z)"
                )));
            }
            Some(s.clone())
        }
        _ => return Err(FhirError::bad_request("parameter _since must appear once")),
    };
    let allowed = |t: &str| CLINICAL.contains(&t) || CLAIMS.contains(&t);
    let mut types: Vec<String> = Vec::new();
    for t in params::values(parts, q, "_type")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if !allowed(t) {
            refuse(format!(
                "_type '{t}' is not a data class this API releases (US Core clinical data, ExplanationOfBenefit, prior-authorization ClaimResponse)"
            ))?;
        } else if !types.iter().any(|x| x == t) {
            types.push(t.to_owned());
        }
    }
    if types.is_empty() {
        types = CLINICAL
            .iter()
            .chain(CLAIMS)
            .map(|t| (*t).to_owned())
            .collect();
    }
    let mut filters: Vec<(String, String)> = Vec::new();
    for f in params::values(parts, q, "_typeFilter") {
        match f.split_once('?') {
            Some((t, query)) if types.iter().any(|x| x == t) && !query.is_empty() => {
                filters.push((t.to_owned(), query.to_owned()));
            }
            _ => refuse(format!(
                "_typeFilter '{f}' must be [type]?[query] for a type being exported"
            ))?,
        }
    }
    let p2p = export_type == PAYER_TO_PAYER;
    let mut windows: Vec<(String, String)> = Vec::new();
    if types.iter().any(|t| t == "ClaimResponse") {
        let mut w = "use=preauthorization".to_owned();
        if p2p {
            w.push_str(&format!("&_lastUpdated=ge{}", years_ago(1)));
        }
        windows.push(("ClaimResponse".into(), w));
    }
    if p2p {
        let since5 = years_ago(5);
        for (t, param) in WINDOWS {
            if types.iter().any(|x| x == t) {
                windows.push(((*t).to_owned(), format!("{param}=ge{since5}")));
            }
        }
    }
    for (t, w) in windows {
        let mut any = false;
        for (ft, fq) in filters.iter_mut() {
            if *ft == t {
                fq.push('&');
                fq.push_str(&w);
                any = true;
            }
        }
        if !any {
            filters.push((t, w));
        }
    }
    let elements = if types.iter().any(|t| t == "ExplanationOfBenefit") {
        EOB_ELEMENTS
            .iter()
            .map(|e| format!("ExplanationOfBenefit.{e}"))
            .collect()
    } else {
        Vec::new()
    };
    let output_format = params::values(parts, q, "_outputFormat").into_iter().next();
    Ok(Plan {
        group_id: group_id.to_owned(),
        export_type,
        types,
        since,
        type_filters: filters,
        elements,
        output_format,
    })
}

/// Patient id the export is limited to when the caller may export no
/// member at all (the bulk core reads an empty `patient` list as "every
/// member"); no Patient has it.
pub const NO_MEMBER: &str = "no-exportable-member";

/// The Group `$export` kick-off the plan becomes: a POST `Parameters` with
/// `_type`, `_since`, `_outputFormat`, `_typeFilter`, `_elements`, and one
/// `patient` per member the caller may export (so the bulk core exports
/// only those, whatever the stored Group lists).
pub fn export_request(req: &FhirRequest, plan: &Plan, members: &[String]) -> FhirRequest {
    let mut out = FhirRequest::new(Interaction::Operation);
    out.resource_type = Some("Group".into());
    out.id = Some(plan.group_id.clone());
    out.operation = Some("export".into());
    out.prefer = req.prefer;
    out.purpose_of_use = req.purpose_of_use.clone();
    let s = |name: &str, v: &str| json!({"name": name, "valueString": v});
    let mut parts = vec![s("_type", &plan.types.join(","))];
    if let Some(since) = &plan.since {
        parts.push(json!({"name": "_since", "valueInstant": since}));
    }
    if let Some(f) = &plan.output_format {
        parts.push(s("_outputFormat", f));
    }
    for (t, q) in &plan.type_filters {
        parts.push(s("_typeFilter", &format!("{t}?{q}")));
    }
    if !plan.elements.is_empty() {
        parts.push(s("_elements", &plan.elements.join(",")));
    }
    let none = [NO_MEMBER.to_owned()];
    let members = if members.is_empty() {
        &none[..]
    } else {
        members
    };
    for m in members {
        parts.push(
            json!({"name": "patient", "valueReference": {"reference": format!("Patient/{m}")}}),
        );
    }
    out.body = Some(params::build(parts));
    out
}

/// Runs the operation: Group checks, plan, hand-off to the bulk core.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
    ctx: &RequestContext,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let gid = req.id.clone().unwrap_or_default();
    let parts = match &req.body {
        Some(_) => params::parameters(req.body.as_ref(), "davinci-data-export")?,
        None => Vec::new(),
    };
    let group = matching::read(app, ctx, "Group", &gid)
        .await?
        .filter(|g| groups::visible(app, &caller.client_id, g))
        .ok_or_else(|| FhirError::not_found(format!("Group/{gid} not found")))?;
    let members = groups::exportable_members(app, &caller.client_id, &group).await?;
    let plan = plan(req, &gid, &parts)?;
    let owned = groups::owner_of(&group).is_some();
    let provider = app.config.payer.provider_org(&caller.client_id).is_some();
    if plan.export_type == PAYER_TO_PAYER && !owned {
        return Err(FhirError::bad_request(
            "exportType payertopayer applies to the MatchedMembers Group of your $bulk-member-match",
        ));
    }
    if plan.export_type != PAYER_TO_PAYER && (owned || !provider) {
        return Err(FhirError::bad_request(
            "provider export types apply to the attribution Group of your provider organization",
        ));
    }
    let export = export_request(req, &plan, &members);
    // Provider Access serves treatment: judged under TREAT unless the token
    // names its own purpose of use.
    let mut exporter = caller.clone();
    if provider && exporter.purpose_of_use.is_none() {
        exporter.purpose_of_use = Some("TREAT".into());
    }
    crate::bulk::kickoff(app, export, &exporter, &ctx.request_id, disclosure).await
}
