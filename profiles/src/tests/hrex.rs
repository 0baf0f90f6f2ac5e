//! Da Vinci HRex 1.0.0 `$member-match` parameters.

use super::*;

const IN: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition/hrex-parameters-member-match-in";
const OUT: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition/hrex-parameters-member-match-out";

fn request() -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "MemberPatient", "resource": {"resourceType": "Patient", "name": [{"family": "Person"}]}},
        {"name": "CoverageToMatch", "resource": {"resourceType": "Coverage", "status": "active"}},
        {"name": "CoverageToLink", "resource": {"resourceType": "Coverage", "status": "active"}},
        {"name": "Consent", "resource": {"resourceType": "Consent", "status": "active"}}]})
}

fn response() -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "MemberIdentifier",
        "valueIdentifier": {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
            "system": "http://example.org/old-payer", "value": "55678"}}]})
}

/// One valid instance per HRex profile.
pub(super) fn valid() -> Vec<(String, Value)> {
    vec![(IN.to_owned(), request()), (OUT.to_owned(), response())]
}

fn params(v: &mut Value) -> &mut Vec<Value> {
    v["parameter"].as_array_mut().unwrap()
}

#[test]
fn coverage_to_link_is_optional() {
    let v = edit(request(), |v| {
        params(v).remove(2);
    });
    assert_eq!(errors(profile(IN), &v), vec![]);
}

#[test]
fn a_missing_required_parameter_names_its_slice() {
    let v = edit(request(), |v| {
        params(v).remove(3);
    });
    assert_one(profile(IN), &v, "required", "Parameters.parameter:Consent");
}

#[test]
fn parameter_resources_must_have_the_slice_type() {
    let v = edit(request(), |v| {
        v["parameter"][1]["resource"] = json!({"resourceType": "Patient"})
    });
    assert_one(
        profile(IN),
        &v,
        "structure",
        "Parameters.parameter[1].resource",
    );
    let v = edit(request(), |v| remove(&mut v["parameter"][0], "resource"));
    assert_one(
        profile(IN),
        &v,
        "required",
        "Parameters.parameter[0].resource",
    );
}

#[test]
fn duplicate_and_unknown_parameters_are_rejected() {
    let v = edit(request(), |v| {
        let p = v["parameter"][0].clone();
        params(v).push(p);
    });
    let found = errors(profile(IN), &v);
    assert_eq!(
        found,
        vec![
            ("structure", "Parameters.parameter".to_owned()),
            ("structure", "Parameters.parameter:MemberPatient".to_owned())
        ]
    );
    let v = edit(request(), |v| v["parameter"][2]["name"] = json!("Other"));
    assert_one(profile(IN), &v, "structure", "Parameters.parameter[2]");
}

#[test]
fn the_response_carries_one_member_identifier_of_type_mb() {
    let p = profile(OUT);
    let v = edit(response(), |v| {
        v["parameter"][0]["valueIdentifier"]["type"]["coding"][0]["code"] = json!("MR")
    });
    assert_one(
        p,
        &v,
        "value",
        "Parameters.parameter[0].valueIdentifier.type",
    );
    let v = edit(response(), |v| {
        let id = v["parameter"][0]["valueIdentifier"].take();
        remove(&mut v["parameter"][0], "valueIdentifier");
        v["parameter"][0]["valueString"] = id["value"].clone();
    });
    let found = errors(p, &v);
    assert_eq!(
        found,
        vec![(
            "structure",
            "Parameters.parameter[0].value.ofType(string)".to_owned()
        )]
    );
    let v = edit(response(), |v| {
        v["parameter"][0]["name"] = json!("MemberId")
    });
    assert_eq!(
        errors(p, &v),
        vec![
            (
                "required",
                "Parameters.parameter:MemberIdentifier".to_owned()
            ),
            ("structure", "Parameters.parameter[0]".to_owned())
        ]
    );
}
