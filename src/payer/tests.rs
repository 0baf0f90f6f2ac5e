//! Unit tests of the payer module's pure parts: demographic agreement,
//! member ids, HRex Consent checks, periods, Group ownership, operation
//! recognition.

use serde_json::json;

use super::{consent, groups, matching, Operation};
use crate::fhir::{FhirRequest, Interaction};

fn stored() -> serde_json::Value {
    json!({
        "resourceType": "Patient", "id": "p1",
        "identifier": [{"system": "http://hospital.example.org/mrn", "value": "MRN1"}],
        "name": [{"family": "Jones", "given": ["Pat"]}],
        "gender": "female", "birthDate": "1980-02-03"
    })
}

#[test]
fn demographics_agree_on_name_birth_date_gender_and_identifiers() {
    let s = stored();
    let d = |v: serde_json::Value| matching::demographics_agree(&v, &s);
    assert!(d(
        json!({"name": [{"family": "JONES", "given": ["pat"]}], "birthDate": "1980-02-03"})
    ));
    assert!(d(
        json!({"name": [{"family": "Jones"}], "birthDate": "1980-02-03", "gender": "female"})
    ));
    assert!(!d(
        json!({"name": [{"family": "Jones"}], "birthDate": "1980-02-04"})
    ));
    assert!(!d(
        json!({"name": [{"family": "Jones"}], "birthDate": "1980-02-03", "gender": "male"})
    ));
    assert!(!d(
        json!({"name": [{"family": "Jones", "given": ["Sam"]}], "birthDate": "1980-02-03"})
    ));
    assert!(!d(
        json!({"name": [{"family": "Smith"}], "birthDate": "1980-02-03"})
    ));
    assert!(
        !d(json!({"name": [{"family": "Jones"}]})),
        "birth date is required"
    );
    // an identifier of a shared system must agree; others do not matter
    let with = |sys: &str, v: &str| {
        json!({"name": [{"family": "Jones"}], "birthDate": "1980-02-03",
               "identifier": [{"system": sys, "value": v}]})
    };
    assert!(d(with("http://hospital.example.org/mrn", "MRN1")));
    assert!(!d(with("http://hospital.example.org/mrn", "MRN2")));
    assert!(d(with("http://other.example.org", "X")));
}

#[test]
fn member_ids_come_from_subscriber_id_and_identifiers() {
    let c = json!({"subscriberId": "A1", "identifier": [{"value": "A1"}, {"value": "B2"}, {"value": " "}]});
    assert_eq!(matching::member_ids(&c), vec!["A1", "B2"]);
    assert!(matching::member_ids(&json!({})).is_empty());
}

#[test]
fn hrex_consents_are_honoured_only_when_active_known_and_current() {
    let c = |policy: &str, status: &str, period: serde_json::Value| {
        json!({"resourceType": "Consent", "status": status, "policy": [{"uri": policy}],
               "provision": {"type": "permit", "period": period}})
    };
    let open = json!({"start": "2020-01-01"});
    assert!(consent::honourable(&c(consent::POLICY_REGULAR, "active", open.clone())).is_ok());
    assert!(consent::honourable(&c(consent::POLICY_SENSITIVE, "active", json!(null))).is_ok());
    assert!(consent::honourable(&c("http://x/#other", "active", open.clone())).is_err());
    assert!(consent::honourable(&c(consent::POLICY_REGULAR, "draft", open)).is_err());
    let past = json!({"start": "2010-01-01", "end": "2011-01-01T00:00:00Z"});
    assert!(consent::honourable(&c(consent::POLICY_REGULAR, "active", past)).is_err());
}

#[test]
fn periods_cover_days_with_open_bounds() {
    assert!(consent::covers(&json!(null), "2026-01-01"));
    assert!(consent::covers(
        &json!({"start": "2026-01-01"}),
        "2026-01-01"
    ));
    assert!(consent::covers(
        &json!({"end": "2026-01-01T10:00:00Z"}),
        "2026-01-01"
    ));
    assert!(!consent::covers(
        &json!({"end": "2025-12-31"}),
        "2026-01-01"
    ));
    assert!(!consent::covers(
        &json!({"start": "2026-01-02"}),
        "2026-01-01"
    ));
}

#[test]
fn groups_name_their_owning_client() {
    let g = json!({"managingEntity": groups::owner_reference("payer-a")});
    assert_eq!(groups::owner_of(&g), Some("payer-a"));
    let org = json!({"managingEntity": {"reference": "Organization/x"}});
    assert_eq!(groups::owner_of(&org), None);
}

#[test]
fn operations_are_recognised_by_type_level_and_name() {
    let op = |t: &str, id: Option<&str>, name: &str| {
        let mut r = FhirRequest::new(Interaction::Operation);
        r.resource_type = Some(t.into());
        r.id = id.map(str::to_owned);
        r.operation = Some(name.into());
        Operation::of(&r)
    };
    assert_eq!(
        op("Patient", None, "member-match"),
        Some(Operation::MemberMatch)
    );
    assert_eq!(op("Patient", Some("1"), "member-match"), None);
    assert_eq!(
        op("Group", None, "bulk-member-match"),
        Some(Operation::BulkMemberMatch)
    );
    assert_eq!(
        op("Group", Some("g"), "davinci-data-export"),
        Some(Operation::DataExport)
    );
    assert_eq!(op("Group", None, "davinci-data-export"), None);
    assert_eq!(op("Group", Some("g"), "export"), None);
}
