//! `POST /fhir/Questionnaire/$questionnaire-package` (and the system-level
//! `POST /fhir/$questionnaire-package`), DTR 2.0.1: one `PackageBundle`
//! part per Questionnaire, each a collection Bundle (`DTR-QPackageBundle`)
//! holding the Questionnaire first, the Libraries it depends on
//! (`cqf-library`, then `relatedArtifact` `depends-on` recursively; CQL and
//! ELM content), the ValueSets it and they bind (expanded now) and one
//! draft (`in-progress`) QuestionnaireResponse for the coverage's
//! beneficiary, with a `qr-context` per order and coverage. Warnings go in
//! the `operationOutcome` part.
//!
//! Failures: bad input 400 (see `params`); every Questionnaire asked for
//! unknown, with none to return: 404 naming them. Nothing needed for the
//! orders: 200 with only an informational `operationOutcome`.

use serde_json::{json, Value};
use smart_launch::context::AccessContext;

use super::{
    catalog::{canonical_of, catalog, Catalog},
    params::{self, PackageInput},
    select::{self, Selection},
};
use crate::{
    error::{FhirError, FhirResult},
    fhir::{types::now_instant, FhirRequest, FhirResponse},
    pipeline::Disclosure,
    prior_auth::rules::Rules,
    AppState,
};

const CQF_LIBRARY: &str = "http://hl7.org/fhir/StructureDefinition/cqf-library";
const QR_CONTEXT: &str = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/qr-context";
const PACKAGE_PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/DTR-QPackageBundle";
const QR_PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaireresponse";
const ADAPT_PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/dtr-questionnaire-adapt";

/// Runs the operation.
pub async fn run(
    app: &AppState,
    caller: &AccessContext,
    req: &FhirRequest,
    disclosure: &mut Disclosure,
) -> FhirResult<FhirResponse> {
    let input = params::parse(req.body.as_ref())?;
    let subject = input.coverages[0]["beneficiary"]["reference"]
        .as_str()
        .map(str::to_owned);
    super::check_patient(caller, subject.as_deref())?;
    let catalog = catalog().map_err(FhirError::internal)?;
    let rules = Rules::load(&app.config.prior_auth).map_err(FhirError::internal)?;
    let sel = select::select(&input, &rules, catalog);
    let released: Vec<String> = sel
        .found
        .iter()
        .map(|q| format!("Questionnaire/{}", q["id"].as_str().unwrap_or_default()))
        .collect();
    super::note(disclosure, subject.as_deref(), released);
    if sel.found.is_empty() && !sel.missing.is_empty() {
        let names: Vec<&str> = sel.missing.iter().map(|m| m.canonical.as_str()).collect();
        return Err(FhirError::not_found(format!(
            "no Questionnaire {} is known to this payer; nothing to package",
            names.join(", ")
        )));
    }
    let now = now_instant();
    let mut warnings = warnings(&sel);
    let mut parts = Vec::new();
    for q in &sel.found {
        let bundle = package(q, catalog, &input, &now, &mut warnings);
        parts.push(json!({"name": "PackageBundle", "resource": bundle}));
    }
    if sel.found.is_empty() {
        warnings.push((
            "information",
            "informational",
            "no documentation (Questionnaire) is needed for these orders under this coverage"
                .into(),
        ));
    }
    if !warnings.is_empty() {
        parts.push(json!({"name": "operationOutcome", "resource": outcome(&warnings)}));
    }
    Ok(FhirResponse::ok(
        json!({"resourceType": "Parameters", "parameter": parts}),
    ))
}

/// (severity, code, text) of one operationOutcome issue.
pub type Warning = (&'static str, &'static str, String);

fn warnings(sel: &Selection<'_>) -> Vec<Warning> {
    let mut out: Vec<Warning> = sel
        .missing
        .iter()
        .map(|m| {
            let how = if m.explicit {
                "was asked for"
            } else {
                "is named by the payer rules for an order"
            };
            (
                "warning",
                "not-found",
                format!(
                    "Questionnaire {} {how} but is not known to this payer",
                    m.canonical
                ),
            )
        })
        .collect();
    out.extend(
        sel.notes
            .iter()
            .map(|n| ("warning", "informational", n.clone())),
    );
    out
}

fn outcome(warnings: &[Warning]) -> Value {
    let issue: Vec<Value> = warnings
        .iter()
        .map(|(severity, code, text)| json!({"severity": severity, "code": code, "diagnostics": text}))
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issue})
}

/// The collection Bundle of one Questionnaire.
pub fn package(
    q: &Value,
    catalog: &Catalog,
    input: &PackageInput,
    now: &str,
    warnings: &mut Vec<Warning>,
) -> Value {
    let (libraries, value_sets) = dependencies(q, catalog, now, warnings);
    let qr = draft(q, input, now);
    let entry = |r: &Value| {
        let full = r["url"].as_str().unwrap_or_default().to_owned();
        json!({"fullUrl": full, "resource": r})
    };
    let mut entries = vec![entry(q)];
    entries.extend(libraries.iter().map(entry));
    entries.extend(value_sets.iter().map(entry));
    let qr_id = qr["id"].as_str().unwrap_or_default().to_owned();
    entries.push(json!({"fullUrl": format!("urn:uuid:{qr_id}"), "resource": qr}));
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"profile": [PACKAGE_PROFILE]},
        "type": "collection",
        "timestamp": now,
        "entry": entries,
    })
}

/// Every `answerValueSet` of the items, at any depth.
fn answer_value_sets(items: &Value, out: &mut Vec<String>) {
    for item in items.as_array().into_iter().flatten() {
        if let Some(vs) = item["answerValueSet"].as_str() {
            out.push(vs.to_owned());
        }
        answer_value_sets(&item["item"], out);
    }
}

/// The Libraries (recursively) and expanded ValueSets `q` needs, each
/// once; what the catalog does not hold becomes a warning.
fn dependencies(
    q: &Value,
    catalog: &Catalog,
    now: &str,
    warnings: &mut Vec<Warning>,
) -> (Vec<Value>, Vec<Value>) {
    let mut queue: Vec<String> = q["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == CQF_LIBRARY)
        .filter_map(|e| e["valueCanonical"].as_str().map(str::to_owned))
        .collect();
    let mut vs_wanted = Vec::new();
    answer_value_sets(&q["item"], &mut vs_wanted);
    let mut libraries: Vec<Value> = Vec::new();
    let missing = |c: &str, warnings: &mut Vec<Warning>| {
        let text = format!(
            "dependency {c} of {} could not be retrieved",
            canonical_of(q)
        );
        if !warnings.iter().any(|w| w.2 == text) {
            warnings.push(("warning", "not-found", text));
        }
    };
    while let Some(c) = queue.pop() {
        let Some(lib) = catalog.library(&c) else {
            match catalog.value_set(&c) {
                Some(_) => vs_wanted.push(c),
                None => missing(&c, warnings),
            }
            continue;
        };
        if libraries
            .iter()
            .any(|l| canonical_of(l) == canonical_of(lib))
        {
            continue;
        }
        for ra in lib["relatedArtifact"].as_array().into_iter().flatten() {
            if ra["type"] == "depends-on" {
                if let Some(r) = ra["resource"].as_str() {
                    queue.push(r.to_owned());
                }
            }
        }
        for dr in lib["dataRequirement"].as_array().into_iter().flatten() {
            for cf in dr["codeFilter"].as_array().into_iter().flatten() {
                if let Some(vs) = cf["valueSet"].as_str() {
                    vs_wanted.push(vs.to_owned());
                }
            }
        }
        libraries.push(lib.clone());
    }
    let mut value_sets: Vec<Value> = Vec::new();
    for c in vs_wanted {
        match catalog.value_set(&c) {
            Some(vs)
                if !value_sets
                    .iter()
                    .any(|v| canonical_of(v) == canonical_of(vs)) =>
            {
                value_sets.push(expand(vs, now, warnings));
            }
            Some(_) => {}
            None => missing(&c, warnings),
        }
    }
    (libraries, value_sets)
}

/// `vs` with an `expansion` of its enumerated concepts as of `now`; a
/// compose this cannot enumerate (filters, other value sets) is left
/// unexpanded with a warning.
pub fn expand(vs: &Value, now: &str, warnings: &mut Vec<Warning>) -> Value {
    let mut out = vs.clone();
    let mut contains = Vec::new();
    for inc in vs["compose"]["include"].as_array().into_iter().flatten() {
        let concepts = inc["concept"].as_array();
        if concepts.is_none() || inc["filter"].is_array() || inc["valueSet"].is_array() {
            warnings.push((
                "warning",
                "not-supported",
                format!("ValueSet {} could not be expanded", canonical_of(vs)),
            ));
            return out;
        }
        for c in concepts.into_iter().flatten() {
            contains
                .push(json!({"system": inc["system"], "code": c["code"], "display": c["display"]}));
        }
    }
    out["expansion"] = json!({
        "identifier": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "timestamp": now,
        "total": contains.len(),
        "contains": contains,
    });
    out
}

/// `Type/id` of a resource given by value, if it has an id.
fn reference_of(r: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        r["resourceType"].as_str()?,
        r["id"].as_str()?
    ))
}

/// The draft QuestionnaireResponse for `q`: in progress, about the first
/// coverage's beneficiary, with a `qr-context` per order and coverage. An
/// adaptive Questionnaire is contained (SDC adaptive forms) and referenced
/// as `#id`, ready for `$next-question`.
fn draft(q: &Value, input: &PackageInput, now: &str) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    let context: Vec<Value> = input
        .orders
        .iter()
        .chain(&input.coverages)
        .filter_map(reference_of)
        .map(|r| json!({"url": QR_CONTEXT, "valueReference": {"reference": r}}))
        .collect();
    let mut qr = json!({
        "resourceType": "QuestionnaireResponse",
        "id": id,
        "meta": {"profile": [QR_PROFILE]},
        "questionnaire": canonical_of(q),
        "status": "in-progress",
        "authored": now,
    });
    if !context.is_empty() {
        qr["extension"] = Value::Array(context);
    }
    let subject = &input.coverages[0]["beneficiary"];
    if subject.is_object() {
        qr["subject"] = subject.clone();
    }
    if super::is_adaptive(q) {
        let mut contained = q.clone();
        contained["meta"] = json!({"profile": [ADAPT_PROFILE]});
        contained["derivedFrom"] = json!([canonical_of(q)]);
        if let Some(o) = contained.as_object_mut() {
            o.remove("text");
        }
        let cid = q["id"].as_str().unwrap_or("adaptive").to_owned();
        qr["contained"] = json!([contained]);
        qr["questionnaire"] = json!(format!("#{cid}"));
    }
    qr
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KNEE: &str = "http://example.org/fhir/Questionnaire/imaging-knee|1.0";

    fn input() -> PackageInput {
        PackageInput {
            coverages: vec![json!({"resourceType": "Coverage", "id": "cov1",
                                   "beneficiary": {"reference": "Patient/p1"}})],
            orders: vec![json!({"resourceType": "ServiceRequest", "id": "sr1"})],
            ..PackageInput::default()
        }
    }

    #[test]
    fn a_package_holds_questionnaire_library_value_set_and_draft_response() {
        let c = catalog().unwrap();
        let q = c.questionnaire(KNEE).unwrap();
        let mut w = Vec::new();
        let b = package(q, c, &input(), "2026-11-23T00:00:00Z", &mut w);
        assert!(w.is_empty(), "{w:?}");
        let types: Vec<&str> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "Questionnaire",
                "Library",
                "ValueSet",
                "QuestionnaireResponse"
            ]
        );
        let vs = &b["entry"][2]["resource"];
        assert_eq!(vs["expansion"]["total"], 8);
        let qr = &b["entry"][3]["resource"];
        assert_eq!(qr["status"], "in-progress");
        assert_eq!(qr["questionnaire"], KNEE);
        assert_eq!(qr["subject"]["reference"], "Patient/p1");
        let refs: Vec<&str> = qr["extension"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["valueReference"]["reference"].as_str().unwrap())
            .collect();
        assert_eq!(refs, ["ServiceRequest/sr1", "Coverage/cov1"]);
    }

    #[test]
    fn an_adaptive_draft_contains_its_questionnaire() {
        let c = catalog().unwrap();
        let q = c
            .questionnaire("http://example.org/fhir/Questionnaire/knee-arthroplasty-adaptive")
            .unwrap();
        let mut w = Vec::new();
        let b = package(q, c, &input(), "2026-11-23T00:00:00Z", &mut w);
        let qr = &b["entry"][1]["resource"];
        assert_eq!(qr["questionnaire"], "#knee-arthroplasty-adaptive");
        assert_eq!(qr["contained"][0]["id"], "knee-arthroplasty-adaptive");
    }

    #[test]
    fn unexpandable_value_sets_are_warned_about() {
        let vs = json!({"resourceType": "ValueSet", "url": "http://x/vs", "compose": {"include": [{"system": "http://s", "filter": []}]}});
        let mut w = Vec::new();
        let out = expand(&vs, "now", &mut w);
        assert!(out["expansion"].is_null());
        assert_eq!(w.len(), 1);
    }
}
