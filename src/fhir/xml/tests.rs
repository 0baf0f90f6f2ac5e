//! Unit tests of the XML seam: round trips of the tricky corners of the
//! JSON representation (R4 json.html §3.2) and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use super::*;

fn round_trip(v: &Value) -> Value {
    let xml = to_xml(v).unwrap();
    from_xml(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

#[test]
fn primitive_extensions_survive() {
    let p = json!({
        "resourceType": "Patient",
        "id": "p1",
        "birthDate": "1970-03-30",
        "_birthDate": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
            "valueDateTime": "1970-03-30T14:35:45-05:00"
        }]},
        "name": [{"given": ["Ann", "B"], "_given": [null, {"id": "g2"}]}],
        "active": true
    });
    let xml = to_xml(&p).unwrap();
    assert!(xml.contains("<birthDate value=\"1970-03-30\">"), "{xml}");
    assert!(xml.contains("patient-birthTime"), "{xml}");
    assert_eq!(round_trip(&p), p);
}

#[test]
fn extension_only_primitive_survives() {
    let p = json!({
        "resourceType": "Patient",
        "_gender": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
            "valueCode": "unknown"
        }]}
    });
    assert_eq!(round_trip(&p), p);
}

#[test]
fn contained_resources_survive() {
    let o = json!({
        "resourceType": "Observation",
        "id": "o1",
        "contained": [{"resourceType": "Practitioner", "id": "pr", "name": [{"family": "Lee"}]}],
        "status": "final",
        "code": {"text": "x"},
        "performer": [{"reference": "#pr"}]
    });
    let xml = to_xml(&o).unwrap();
    assert!(xml.contains("<contained>"), "{xml}");
    assert!(xml.contains("<Practitioner>"), "{xml}");
    assert_eq!(round_trip(&o), o);
}

#[test]
fn narrative_survives_with_its_whitespace() {
    let div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hello <b>World</b> &amp; <i>you</i></p>\n  <p>line two</p></div>";
    let p = json!({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": div}
    });
    let xml = to_xml(&p).unwrap();
    assert!(
        xml.contains("<div xmlns=\"http://www.w3.org/1999/xhtml\">"),
        "{xml}"
    );
    assert_eq!(round_trip(&p), p);
}

#[test]
fn narrative_without_namespace_gets_it() {
    let p =
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>hi</div>"}});
    let back = round_trip(&p);
    assert_eq!(
        back["text"]["div"],
        "<div xmlns=\"http://www.w3.org/1999/xhtml\">hi</div>"
    );
}

#[test]
fn narrative_that_is_not_one_div_is_refused() {
    let p = json!({"resourceType": "Patient", "text": {"status": "generated",
        "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">a</div><active value=\"true\"/>"}});
    assert!(matches!(to_xml(&p), Err(XmlError::Unrepresentable(_))));
}

#[test]
fn decimals_keep_their_precision() {
    let text = r#"{"resourceType":"Observation","status":"final","code":{"text":"w"},
        "valueQuantity":{"value":1.50,"unit":"kg"},
        "referenceRange":[{"low":{"value":0.0010},"high":{"value":1e2}}]}"#;
    let o: Value = serde_json::from_str(text).unwrap();
    // serde_json keeps the digits (arbitrary_precision, via fhirbolt).
    assert_eq!(
        serde_json::to_string(&o["valueQuantity"]["value"]).unwrap(),
        "1.50"
    );
    let xml = to_xml(&o).unwrap();
    assert!(xml.contains("<value value=\"1.50\"/>"), "{xml}");
    assert!(xml.contains("<value value=\"0.0010\"/>"), "{xml}");
    let back = round_trip(&o);
    assert_eq!(back, o);
    assert_eq!(
        serde_json::to_string(&back["valueQuantity"]["value"]).unwrap(),
        "1.50"
    );
}

#[test]
fn xml_decimals_and_integers_get_json_types() {
    let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<Observation xmlns="http://hl7.org/fhir">
  <status value="final"/>
  <code><text value="n"/></code>
  <valueQuantity><value value="2.50"/></valueQuantity>
  <component><code><text value="c"/></code><valueInteger value="7"/></component>
  <component><code><text value="b"/></code><valueBoolean value="false"/></component>
</Observation>"#;
    let v = from_xml(xml.as_bytes()).unwrap();
    assert_eq!(
        serde_json::to_string(&v["valueQuantity"]["value"]).unwrap(),
        "2.50"
    );
    assert_eq!(v["component"][0]["valueInteger"], json!(7));
    assert_eq!(v["component"][1]["valueBoolean"], json!(false));
}

#[test]
fn unknown_elements_are_refused_both_ways() {
    let p = json!({"resourceType": "Patient", "favouriteColour": "blue"});
    let e = to_xml(&p).unwrap_err();
    assert!(e.to_string().contains("favouriteColour"), "{e}");
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><favouriteColour value="blue"/></Patient>"#;
    let e = from_xml(xml.as_bytes()).unwrap_err();
    assert!(matches!(e, XmlError::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("favouriteColour"), "{e}");
}

#[test]
fn malformed_and_hostile_xml_is_refused() {
    for bad in [
        &b"<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"></Patient>"[..],
        b"not xml at all",
        b"<Patient><active value=\"true\"/></Patient>",
        b"<!DOCTYPE Patient [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Patient xmlns=\"http://hl7.org/fhir\"/>",
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Patient xmlns=\"http://hl7.org/fhir\"/>",
        b"<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\"/><![CDATA[x]]></Patient>",
        b"\xff\xfe<\x00",
    ] {
        assert!(from_xml(bad).is_err(), "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    let n = MAX_DEPTH + 10;
    let xml = format!(
        "<Patient xmlns=\"http://hl7.org/fhir\">{}{}</Patient>",
        "<extension url=\"u\">".repeat(n),
        "</extension>".repeat(n)
    );
    assert_eq!(from_xml(xml.as_bytes()), Err(XmlError::TooDeep(MAX_DEPTH)));
}

#[test]
fn nesting_up_to_the_limit_parses_on_a_small_stack() {
    // Tokio workers run on 2 MiB stacks: the limit must fit there.
    let n = MAX_DEPTH - 2;
    let xml = format!(
        "<Patient xmlns=\"http://hl7.org/fhir\">{}<valueString value=\"x\"/>{}</Patient>",
        "<extension url=\"u\">".repeat(n),
        "</extension>".repeat(n)
    );
    let t = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || from_xml(xml.as_bytes()).map(|v| to_xml(&v).map(|_| ())))
        .unwrap();
    assert!(matches!(t.join().unwrap(), Ok(Ok(()))));
}

#[test]
fn newlines_in_strings_survive_as_character_references() {
    let c = json!({"resourceType": "Communication", "status": "completed",
        "payload": [{"contentString": "line one\nline two\ttab"}]});
    let xml = to_xml(&c).unwrap();
    assert!(xml.contains("line one&#10;line two&#9;tab"), "{xml}");
    assert_eq!(round_trip(&c), c);
}

#[test]
fn bundles_with_resources_and_search_entries_survive() {
    let b = json!({
        "resourceType": "Bundle", "type": "searchset", "total": 1,
        "link": [{"relation": "self", "url": "http://x/fhir/Patient?_count=1"}],
        "entry": [
            {"fullUrl": "http://x/fhir/Patient/1",
             "resource": {"resourceType": "Patient", "id": "1", "meta": {"versionId": "2", "lastUpdated": "2026-01-01T00:00:00Z"}},
             "search": {"mode": "match"}},
            {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "processing"}]},
             "search": {"mode": "outcome"}}
        ]
    });
    assert_eq!(round_trip(&b), b);
}

#[test]
fn parameters_with_resources_survive() {
    let p = json!({"resourceType": "Parameters", "parameter": [
        {"name": "MemberPatient", "resource": {"resourceType": "Patient", "name": [{"family": "Jones"}]}},
        {"name": "count", "valueInteger": 3},
        {"name": "nested", "part": [{"name": "a", "valueString": "b"}]}
    ]});
    assert_eq!(round_trip(&p), p);
}

#[test]
fn binary_survives() {
    let b = json!({"resourceType": "Binary", "contentType": "text/plain", "data": "aGVsbG8="});
    assert_eq!(round_trip(&b), b);
}

#[test]
fn non_resources_are_refused() {
    assert!(to_xml(&json!({"a": 1})).is_err());
    assert!(to_xml(&json!([1])).is_err());
}
