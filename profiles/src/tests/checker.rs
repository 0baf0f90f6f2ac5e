//! The checker's grammar: choice elements, allowed types, slices by
//! pattern and binding, closed slicing, must-support advice, severities.

use super::*;

fn obs_profile() -> Profile {
    Profile::from_json(
        r#"{"url":"u","name":"T","resourceType":"Observation","elements":[
          {"path":"value[x]","min":1,"max":"1","types":["Quantity","CodeableConcept"]},
          {"path":"category","min":1,"slices":[
            {"name":"us-core","min":1,"max":"1","pattern":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}}]},
          {"path":"component","slices":[
            {"name":"sys","min":0,"max":"1","pattern":{"code":{"text":"sys"}},"elements":[
              {"path":"valueQuantity.unit","min":1,"max":"1"}]}]},
          {"path":"note","mustSupport":true}]}"#,
    )
    .unwrap()
}

fn lab() -> Value {
    json!({"resourceType": "Observation",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "valueQuantity": {"value": 1}})
}

#[test]
fn a_choice_step_matches_every_typed_key() {
    let p = obs_profile();
    assert_eq!(errors(&p, &lab()), vec![]);
    let coded = edit(lab(), |v| {
        remove(v, "valueQuantity");
        v["valueCodeableConcept"] = json!({"text": "pos"});
    });
    assert_eq!(errors(&p, &coded), vec![]);
    let found = walk(&coded, "Observation", "value[x]");
    assert_eq!(found[0].0, "Observation.value.ofType(CodeableConcept)");
    assert_eq!(
        walk(&lab(), "O", "value[x].value")[0].0,
        "O.value.ofType(Quantity).value"
    );
}

#[test]
fn a_missing_choice_is_named_without_the_marker() {
    let v = edit(lab(), |v| remove(v, "valueQuantity"));
    assert_one(&obs_profile(), &v, "required", "Observation.value");
}

#[test]
fn a_choice_type_outside_the_allowed_types_is_a_structure_issue() {
    let v = edit(lab(), |v| {
        remove(v, "valueQuantity");
        v["valueString"] = json!("high");
    });
    assert_one(
        &obs_profile(),
        &v,
        "structure",
        "Observation.value.ofType(string)",
    );
    let two = edit(lab(), |v| v["valueBoolean"] = json!(true));
    let found = errors(&obs_profile(), &two);
    assert!(
        found.contains(&("structure", "Observation.value".into())),
        "{found:?}"
    );
    assert!(found.contains(&("structure", "Observation.value.ofType(boolean)".into())));
}

#[test]
fn primitive_choice_suffixes_map_to_lower_case_type_names() {
    let v =
        json!({"resourceType": "Observation", "effectiveDateTime": "2024", "valueSampledData": {}});
    let paths: Vec<String> = walk(&v, "O", "effective[x]")
        .into_iter()
        .chain(walk(&v, "O", "value[x]"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        paths,
        [
            "O.effective.ofType(dateTime)",
            "O.value.ofType(SampledData)"
        ]
    );
}

#[test]
fn slice_cardinality_is_counted_by_pattern() {
    let p = obs_profile();
    let none = edit(lab(), |v| {
        v["category"][0]["coding"][0]["code"] = json!("vital-signs")
    });
    assert_one(&p, &none, "required", "Observation.category:us-core");
    let two = edit(lab(), |v| {
        let c = v["category"][0].clone();
        v["category"].as_array_mut().unwrap().push(c);
    });
    assert_one(&p, &two, "structure", "Observation.category:us-core");
    let extra_coding = edit(lab(), |v| {
        v["category"][0]["coding"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"system": "s", "code": "c"}));
    });
    assert_eq!(
        errors(&p, &extra_coding),
        vec![],
        "array patterns match any item"
    );
}

#[test]
fn slice_elements_apply_to_members_only() {
    let p = obs_profile();
    let v = edit(lab(), |v| {
        v["component"] = json!([
            {"code": {"text": "dia"}, "valueQuantity": {"value": 80}},
            {"code": {"text": "sys"}, "valueQuantity": {"value": 120}}]);
    });
    assert_one(
        &p,
        &v,
        "required",
        "Observation.component[1].valueQuantity.unit",
    );
}

#[test]
fn closed_slicing_rejects_unknown_repetitions() {
    let p = Profile::from_json(
        r#"{"url":"u","name":"T","resourceType":"Parameters","elements":[
          {"path":"parameter","closed":true,"slices":[
            {"name":"A","min":1,"max":"1","pattern":{"name":"A"}}]}]}"#,
    )
    .unwrap();
    let v = json!({"resourceType": "Parameters", "parameter": [{"name": "A"}, {"name": "B"}]});
    assert_one(&p, &v, "structure", "Parameters.parameter[1]");
}

#[test]
fn slices_by_binding_match_any_listed_code() {
    let p = Profile::from_json(
        r#"{"url":"u","name":"T","resourceType":"Condition","elements":[
          {"path":"category","slices":[{"name":"us-core","min":1,"max":"1",
            "binding":{"valueSet":"vs","codes":["a|x","b|y"]}}]}]}"#,
    )
    .unwrap();
    let with = |code: &str| json!({"resourceType": "Condition", "category": [{"coding": [{"system": "b", "code": code}]}]});
    assert_eq!(errors(&p, &with("y")), vec![]);
    assert_one(&p, &with("x"), "required", "Condition.category:us-core");
}

#[test]
fn resource_types_are_checked_where_types_are_given() {
    let p = Profile::from_json(
        r#"{"url":"u","name":"T","resourceType":"Parameters","elements":[
          {"path":"parameter.resource","types":["Patient"]}]}"#,
    )
    .unwrap();
    let v = json!({"resourceType": "Parameters", "parameter": [{"resource": {"resourceType": "Coverage"}}]});
    assert_one(&p, &v, "structure", "Parameters.parameter[0].resource");
}

#[test]
fn must_support_is_advice_never_an_error() {
    let p = obs_profile();
    assert_eq!(errors(&p, &lab()), vec![]);
    let gaps = p.must_support_gaps(&lab(), "Observation");
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0].code, "informational");
    assert_eq!(gaps[0].path, "Observation.note");
    assert_eq!(gaps[0].severity(), "information");
    assert!(!gaps[0].is_error());
    let us_core = profile("http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage");
    let gaps = us_core.must_support_gaps(&json!({"resourceType": "Coverage"}), "Coverage");
    let paths: Vec<&str> = gaps.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"Coverage.identifier"), "{paths:?}");
    assert!(paths.contains(&"Coverage.identifier:memberid"), "{paths:?}");
    assert!(
        !paths.contains(&"Coverage.status"),
        "required, so an error instead"
    );
}

#[test]
fn every_check_issue_is_an_error() {
    let p = profile("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient");
    let issues = p.check(
        &json!({"resourceType": "Patient", "gender": "f"}),
        "Patient",
    );
    assert!(!issues.is_empty());
    assert!(issues.iter().all(|i| i.severity() == "error"), "{issues:?}");
}
