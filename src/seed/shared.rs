//! The shared part of the population, emitted before any patient:
//! Organizations (a hospital, a primary care clinic, a reference lab, each
//! with an NPI, and the payer "Acme Health Plan"), ten Practitioners with
//! NPIs (Dr. Morgan Lee among them), their PractitionerRoles, Locations and
//! the formulary as Medication resources.

use serde_json::{json, Value};

use super::catalog::MEDS;
use super::fhir::{cc, coding, npi, reference, reference_display, resource, set, sys, us_core};

pub(crate) const HOSPITAL: &str = "Organization/org-riverside-hospital";
pub(crate) const CLINIC: &str = "Organization/org-riverside-clinic";
pub(crate) const LAB: &str = "Organization/org-riverside-lab";
pub(crate) const PAYER: &str = "Organization/org-acme-health-plan";
pub(crate) const LOC_HOSPITAL: &str = "Location/loc-riverside-inpatient";
pub(crate) const LOC_ED: &str = "Location/loc-riverside-ed";
pub(crate) const LOC_CLINIC: &str = "Location/loc-riverside-clinic";
pub(crate) const LOC_LAB: &str = "Location/loc-riverside-lab";

/// Practitioner id of Dr. Lee (the demo clinician `dr.lee`).
pub(crate) const DR_LEE_ID: &str = "practitioner-lee";

/// A clinician of the shared population.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clinician {
    pub(crate) id: &'static str,
    pub(crate) given: &'static str,
    pub(crate) family: &'static str,
    pub(crate) gender: &'static str,
    pub(crate) npi_base: u32,
    pub(crate) taxonomy: (&'static str, &'static str),
    pub(crate) org: &'static str,
    pub(crate) location: &'static str,
}

impl Clinician {
    /// `Practitioner/id`.
    pub(crate) fn reference(&self) -> String {
        format!("Practitioner/{}", self.id)
    }

    /// "Dr. Given Family".
    pub(crate) fn display(&self) -> String {
        format!("Dr. {} {}", self.given, self.family)
    }

    /// A Reference with display.
    pub(crate) fn reference_value(&self) -> Value {
        reference_display(&self.reference(), &self.display())
    }
}

/// Table-row constructor (one argument per column).
#[allow(clippy::too_many_arguments)]
const fn cl(
    id: &'static str,
    given: &'static str,
    family: &'static str,
    gender: &'static str,
    npi_base: u32,
    taxonomy: (&'static str, &'static str),
    org: &'static str,
    location: &'static str,
) -> Clinician {
    Clinician {
        id,
        given,
        family,
        gender,
        npi_base,
        taxonomy,
        org,
        location,
    }
}

pub(crate) const LEE: usize = 0;
pub(crate) const PEDIATRICIAN: usize = 3;
pub(crate) const PSYCHIATRIST: usize = 7;
pub(crate) const INFECTIOUS: usize = 8;
pub(crate) const ADDICTION: usize = 9;
/// Primary care clinicians who serve as adults' general practitioner.
pub(crate) const PRIMARY_CARE: [usize; 3] = [0, 1, 2];
/// Emergency physicians.
pub(crate) const EMERGENCY: [usize; 2] = [4, 5];
pub(crate) const HOSPITALIST: usize = 6;
/// Genetic counselling is done by the primary care team's nurse practitioner.
pub(crate) const GENETICS: usize = 10;

#[rustfmt::skip]
pub(crate) const CLINICIANS: [Clinician; 11] = [
    cl(DR_LEE_ID, "Morgan", "Lee", "female", 190_382_741, ("207R00000X", "Internal Medicine Physician"), CLINIC, LOC_CLINIC),
    cl("practitioner-patel", "Anita", "Patel", "female", 174_920_315, ("207Q00000X", "Family Medicine Physician"), CLINIC, LOC_CLINIC),
    cl("practitioner-garcia", "Luis", "Garcia", "male", 162_083_557, ("207Q00000X", "Family Medicine Physician"), CLINIC, LOC_CLINIC),
    cl("practitioner-nguyen", "Thu", "Nguyen", "female", 153_776_204, ("208000000X", "Pediatrics Physician"), CLINIC, LOC_CLINIC),
    cl("practitioner-okafor", "Chidi", "Okafor", "male", 148_229_630, ("207P00000X", "Emergency Medicine Physician"), HOSPITAL, LOC_ED),
    cl("practitioner-schmidt", "Hannah", "Schmidt", "female", 136_540_982, ("207P00000X", "Emergency Medicine Physician"), HOSPITAL, LOC_ED),
    cl("practitioner-rossi", "Marco", "Rossi", "male", 129_615_473, ("208M00000X", "Hospitalist Physician"), HOSPITAL, LOC_HOSPITAL),
    cl("practitioner-cohen", "Rachel", "Cohen", "female", 117_358_046, ("2084P0800X", "Psychiatry Physician"), CLINIC, LOC_CLINIC),
    cl("practitioner-williams", "Denise", "Williams", "female", 105_872_319, ("207RI0200X", "Infectious Disease Physician"), HOSPITAL, LOC_CLINIC),
    cl("practitioner-kim", "Daniel", "Kim", "male", 198_463_125, ("2084A0401X", "Addiction Medicine Physician"), CLINIC, LOC_CLINIC),
    cl("practitioner-okonkwo", "Grace", "Okonkwo", "female", 185_107_662, ("363LF0000X", "Family Nurse Practitioner"), CLINIC, LOC_CLINIC),
];

/// The shared resources, in dependency order.
pub(crate) fn resources() -> Vec<Value> {
    let mut out = organizations();
    out.extend(CLINICIANS.iter().map(practitioner));
    out.extend(locations());
    out.extend(CLINICIANS.iter().map(role));
    let mut seen: Vec<&str> = Vec::new();
    for m in MEDS.iter() {
        if seen.contains(&m.rxnorm) {
            continue;
        }
        seen.push(m.rxnorm);
        let r = resource(
            "Medication",
            &format!("med-{}", m.rxnorm),
            &us_core("us-core-medication"),
            &[],
        );
        let r = set(r, "code", cc(sys::RXNORM, m.rxnorm, m.display));
        out.push(Value::Object(set(r, "status", json!("active"))));
    }
    out
}

fn address(line: &str, city: &str, zip: &str) -> Value {
    json!([{"use": "work", "line": [line], "city": city, "state": "TX", "postalCode": zip, "country": "US"}])
}

fn organizations() -> Vec<Value> {
    let provider = |id: &str, name: &str, npi_base: u32, phone: &str, line: &str| {
        let r = resource("Organization", id, &us_core("us-core-organization"), &[]);
        let r = set(
            r,
            "identifier",
            json!([{"system": sys::NPI, "value": npi(npi_base)}]),
        );
        let r = set(r, "active", json!(true));
        let r = set(
            r,
            "type",
            json!([{"coding": [coding("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")]}]),
        );
        let r = set(r, "name", json!(name));
        let r = set(
            r,
            "telecom",
            json!([{"system": "phone", "value": phone, "use": "work"}]),
        );
        Value::Object(set(r, "address", address(line, "Austin", "78741")))
    };
    let payer = resource(
        "Organization",
        "org-acme-health-plan",
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Organization",
        &[],
    );
    let payer = set(
        payer,
        "identifier",
        json!([{
            "type": {"coding": [coding("http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType", "payerid", "Payer ID")]},
            "system": "urn:oid:2.16.840.1.113883.6.300",
            "value": "99901"
        }]),
    );
    let payer = set(payer, "active", json!(true));
    let payer = set(
        payer,
        "type",
        json!([{"coding": [coding("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")]}]),
    );
    let payer = set(payer, "name", json!("Acme Health Plan"));
    let payer = set(
        payer,
        "telecom",
        json!([{"system": "phone", "value": "(800) 555-0142", "use": "work"}, {"system": "url", "value": "https://acmehealthplan.example.org"}]),
    );
    let payer = set(
        payer,
        "address",
        json!([{"use": "work", "line": ["500 Commerce Plaza"], "city": "Dallas", "state": "TX", "postalCode": "75201", "country": "US"}]),
    );
    vec![
        provider(
            "org-riverside-hospital",
            "Riverside General Hospital",
            154_382_019,
            "(512) 555-0100",
            "1200 Riverside Dr",
        ),
        provider(
            "org-riverside-clinic",
            "Riverside Primary Care Clinic",
            121_947_360,
            "(512) 555-0110",
            "1250 Riverside Dr Suite 200",
        ),
        provider(
            "org-riverside-lab",
            "Riverside Reference Laboratory",
            167_205_884,
            "(512) 555-0120",
            "1260 Riverside Dr",
        ),
        Value::Object(payer),
    ]
}

fn practitioner(c: &Clinician) -> Value {
    let r = resource("Practitioner", c.id, &us_core("us-core-practitioner"), &[]);
    let r = set(
        r,
        "identifier",
        json!([{"system": sys::NPI, "value": npi(c.npi_base)}]),
    );
    let r = set(r, "active", json!(true));
    let suffix = if c.taxonomy.0.starts_with("363L") {
        "NP"
    } else {
        "MD"
    };
    let r = set(
        r,
        "name",
        json!([{"use": "official", "family": c.family, "given": [c.given], "prefix": ["Dr."], "suffix": [suffix]}]),
    );
    let email = format!(
        "{}.{}@riverside.example.org",
        c.given.to_lowercase(),
        c.family.to_lowercase()
    );
    let r = set(
        r,
        "telecom",
        json!([{"system": "phone", "value": "(512) 555-0110", "use": "work"}, {"system": "email", "value": email, "use": "work"}]),
    );
    let r = set(
        r,
        "address",
        address("1250 Riverside Dr Suite 200", "Austin", "78741"),
    );
    let r = set(r, "gender", json!(c.gender));
    let r = set(
        r,
        "qualification",
        json!([{"code": cc(sys::NUCC, c.taxonomy.0, c.taxonomy.1)}]),
    );
    Value::Object(r)
}

fn role(c: &Clinician) -> Value {
    let id = format!("role-{}", c.id.trim_start_matches("practitioner-"));
    let r = resource(
        "PractitionerRole",
        &id,
        &us_core("us-core-practitionerrole"),
        &[],
    );
    let r = set(r, "active", json!(true));
    let r = set(r, "practitioner", c.reference_value());
    let r = set(r, "organization", reference(c.org));
    let kind = if c.taxonomy.0.starts_with("363L") {
        ("nurse", "Nurse")
    } else {
        ("doctor", "Doctor")
    };
    let r = set(
        r,
        "code",
        json!([cc(
            "http://terminology.hl7.org/CodeSystem/practitioner-role",
            kind.0,
            kind.1
        )]),
    );
    let r = set(
        r,
        "specialty",
        json!([cc(sys::NUCC, c.taxonomy.0, c.taxonomy.1)]),
    );
    let r = set(r, "location", json!([reference(c.location)]));
    Value::Object(set(
        r,
        "telecom",
        json!([{"system": "phone", "value": "(512) 555-0110", "use": "work"}]),
    ))
}

fn locations() -> Vec<Value> {
    let loc = |target: &str, name: &str, role: (&str, &str), org: &str, line: &str| {
        let id = target.trim_start_matches("Location/");
        let r = resource("Location", id, &us_core("us-core-location"), &[]);
        let r = set(r, "status", json!("active"));
        let r = set(r, "name", json!(name));
        let r = set(
            r,
            "type",
            json!([cc(
                "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                role.0,
                role.1
            )]),
        );
        let r = set(
            r,
            "telecom",
            json!([{"system": "phone", "value": "(512) 555-0100", "use": "work"}]),
        );
        let r = set(
            r,
            "address",
            json!({"use": "work", "line": [line], "city": "Austin", "state": "TX", "postalCode": "78741", "country": "US"}),
        );
        Value::Object(set(r, "managingOrganization", reference(org)))
    };
    vec![
        loc(
            LOC_HOSPITAL,
            "Riverside General Hospital Inpatient Units",
            ("HOSP", "Hospital"),
            HOSPITAL,
            "1200 Riverside Dr",
        ),
        loc(
            LOC_ED,
            "Riverside General Hospital Emergency Department",
            ("ER", "Emergency room"),
            HOSPITAL,
            "1200 Riverside Dr",
        ),
        loc(
            LOC_CLINIC,
            "Riverside Primary Care Clinic",
            ("PC", "primary care clinic"),
            CLINIC,
            "1250 Riverside Dr Suite 200",
        ),
        loc(
            LOC_LAB,
            "Riverside Reference Laboratory",
            ("OUTLAB", "outpatient laboratory"),
            LAB,
            "1260 Riverside Dr",
        ),
    ]
}
