//! Demographics of one patient (`Person`) and the resources that describe
//! them: the US Core Patient (race, ethnicity and birth sex extensions, MRN,
//! name, telecom, address, language, general practitioner) and the CARIN BB
//! shaped Coverage with Acme Health Plan. Patient 0 is always Pat Jones of
//! Austin, TX, whose general practitioner is Dr. Lee.

use serde_json::{json, Value};

use super::fhir::{cc, coding, reference_display, resource, set, sys, us_core};
use super::places::{
    Place, FAMILY, FEMALE_GIVEN, HISPANIC, LANGUAGES, MALE_GIVEN, NOT_HISPANIC, PLACES,
    PLACE_WEIGHTS, RACES, STREETS, STREET_KINDS,
};
use super::record::{patient_id, Ctx, Kind};
use super::rng::Rng;
use super::shared::{CLINIC, CLINICIANS, LEE, PAYER, PEDIATRICIAN, PRIMARY_CARE};
use super::time::{civil_from_days, date, days_from_civil, ANCHOR_DAY};

/// Smoking status (SNOMED CT), used for the 72166-2 Observation.
pub(crate) const SMOKING: [(&str, &str, u64); 3] = [
    ("266919005", "Never smoked tobacco (finding)", 70),
    ("8517006", "Ex-smoker (finding)", 18),
    ("449868002", "Smokes tobacco daily (finding)", 12),
];

/// One patient's demographics.
#[derive(Clone, Debug)]
pub(crate) struct Person {
    pub(crate) k: u32,
    pub(crate) given: &'static str,
    pub(crate) family: &'static str,
    pub(crate) female: bool,
    pub(crate) birth_day: i64,
    /// Age in whole years on the anchor date.
    pub(crate) age: i64,
    pub(crate) place: Place,
    /// Index into [`CLINICIANS`].
    pub(crate) gp: usize,
    pub(crate) height_cm: f64,
    pub(crate) bmi: f64,
    /// Index into [`SMOKING`].
    pub(crate) smoking: usize,
    race: usize,
    hispanic: bool,
    language: usize,
    phone: String,
    street: String,
}

/// Whole years from `birth_day` to `day`.
pub(crate) fn age_on(birth_day: i64, day: i64) -> i64 {
    let (by, bm, bd) = civil_from_days(birth_day);
    let (y, m, d) = civil_from_days(day);
    let mut age = y - by;
    if (m, d) < (bm, bd) {
        age -= 1;
    }
    age.max(0)
}

/// Height in cm at `age` for a child (rough growth curve).
fn child_height(age: i64, female: bool) -> f64 {
    let base = 76.0 + 6.3 * age.min(17) as f64;
    if female {
        base.min(163.0)
    } else {
        base.min(176.0)
    }
}

impl Person {
    /// Demographics of patient `k`, drawn from its PRNG.
    pub(crate) fn generate(k: u32, rng: &mut Rng) -> Self {
        let female = k == 0 || rng.chance(510);
        let age_band = rng.weighted(&[12, 58, 25, 5]);
        let (lo, hi) = [(2, 17), (18, 64), (65, 89), (90, 101)][age_band];
        let mut birth_day = ANCHOR_DAY - rng.range(lo, hi) * 365 - rng.range(1, 364);
        let mut place = PLACES[rng.weighted(&PLACE_WEIGHTS)];
        let given = *rng.pick(if female { &FEMALE_GIVEN } else { &MALE_GIVEN });
        let family = *rng.pick(&FAMILY);
        let (given, family) = if k == 0 {
            birth_day = days_from_civil(1984, 7, 12);
            place = PLACES[0];
            ("Pat", "Jones")
        } else {
            (given, family)
        };
        let age = age_on(birth_day, ANCHOR_DAY);
        let gp = if k == 0 {
            LEE
        } else if age < 18 {
            PEDIATRICIAN
        } else {
            *rng.pick(&PRIMARY_CARE)
        };
        let height_cm = if age < 18 {
            child_height(age, female) + rng.normal(0.0, 3.0)
        } else if female {
            rng.normal(163.0, 6.5)
        } else {
            rng.normal(177.0, 7.0)
        };
        let bmi = if age < 18 {
            rng.normal(18.5, 2.0)
        } else {
            rng.normal(27.5, 4.5).clamp(17.5, 44.0)
        };
        let smoking = if age < 12 {
            0
        } else {
            rng.weighted(&[70, 18, 12])
        };
        let hispanic_per_mille = if matches!(place.state, "TX" | "CA" | "NM" | "AZ") {
            350
        } else {
            150
        };
        let hispanic = k != 0 && rng.chance(hispanic_per_mille);
        let race = rng.weighted(&RACES.map(|r| r.2));
        let language = if k == 0 {
            0
        } else if hispanic && rng.chance(450) {
            1
        } else {
            rng.weighted(&LANGUAGES.map(|l| l.2))
        };
        let phone = format!("({}) 555-01{:02}", place.area, rng.below(100));
        let street = format!(
            "{} {} {}",
            rng.range(100, 9899),
            rng.pick(&STREETS),
            rng.pick(&STREET_KINDS)
        );
        Self {
            k,
            given,
            family,
            female,
            birth_day,
            age,
            place,
            gp,
            height_cm,
            bmi,
            smoking,
            race,
            hispanic,
            language,
            phone,
            street,
        }
    }

    /// "Given Family".
    pub(crate) fn display_name(&self) -> String {
        format!("{} {}", self.given, self.family)
    }

    /// Age in whole years on `day`.
    pub(crate) fn age_on(&self, day: i64) -> i64 {
        age_on(self.birth_day, day)
    }

    /// Expected height in cm on `day` (children grow).
    pub(crate) fn height_on(&self, day: i64) -> f64 {
        let age = self.age_on(day);
        if self.age < 18 || age < 18 {
            let grown = child_height(self.age, self.female);
            self.height_cm - grown + child_height(age, self.female)
        } else {
            self.height_cm
        }
    }
}

fn extension_coding(url: &str, code: (&str, &str), text: &str) -> Value {
    let system = if code.0 == "ASKU" {
        "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
    } else {
        "urn:oid:2.16.840.1.113883.6.238"
    };
    json!({
        "url": url,
        "extension": [
            {"url": "ombCategory", "valueCoding": coding(system, code.0, code.1)},
            {"url": "text", "valueString": text}
        ]
    })
}

/// Emits the Patient and its Coverage.
pub(crate) fn emit(ctx: &mut Ctx) {
    let p = ctx.person.clone();
    let id = patient_id(p.k);
    let race = RACES[p.race];
    let ethnicity = if p.hispanic { HISPANIC } else { NOT_HISPANIC };
    let language = LANGUAGES[p.language];
    let r = resource("Patient", &id, &us_core("us-core-patient"), &[]);
    let r = set(
        r,
        "extension",
        json!([
            extension_coding("http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", (race.0, race.1), race.1),
            extension_coding("http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", ethnicity, ethnicity.1),
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": if p.female { "F" } else { "M" }}
        ]),
    );
    let r = set(
        r,
        "identifier",
        json!([{
            "use": "usual",
            "type": {"coding": [coding(sys::V2_0203, "MR", "Medical Record Number")], "text": "Medical Record Number"},
            "system": sys::MRN,
            "value": format!("MRN{}", 1_000_000 + u64::from(p.k) + 1)
        }]),
    );
    let r = set(r, "active", json!(true));
    let r = set(
        r,
        "name",
        json!([{"use": "official", "family": p.family, "given": [p.given]}]),
    );
    let email = format!(
        "{}.{}{}@example.com",
        p.given.to_lowercase(),
        p.family.to_lowercase(),
        p.k + 1
    );
    let r = set(
        r,
        "telecom",
        json!([
            {"system": "phone", "value": p.phone, "use": "home"},
            {"system": "email", "value": email, "use": "home"}
        ]),
    );
    let r = set(r, "gender", json!(if p.female { "female" } else { "male" }));
    let r = set(r, "birthDate", json!(date(p.birth_day)));
    let since = (p.birth_day + 365 * 18).min(ANCHOR_DAY - 400);
    let r = set(
        r,
        "address",
        json!([{
            "use": "home",
            "line": [p.street],
            "city": p.place.city,
            "state": p.place.state,
            "postalCode": p.place.zip,
            "country": "US",
            "period": {"start": date(since.max(p.birth_day))}
        }]),
    );
    let marital = if p.age < 18 {
        ("S", "Never Married")
    } else {
        [
            ("M", "Married"),
            ("S", "Never Married"),
            ("D", "Divorced"),
            ("W", "Widowed"),
        ][ctx
            .rng
            .weighted(&[50, 30, 12, if p.age > 60 { 10 } else { 1 }])]
    };
    let r = set(
        r,
        "maritalStatus",
        cc(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
            marital.0,
            marital.1,
        ),
    );
    let r = set(
        r,
        "communication",
        json!([{"language": cc("urn:ietf:bcp:47", language.0, language.1), "preferred": true}]),
    );
    let r = set(
        r,
        "generalPractitioner",
        json!([CLINICIANS[p.gp].reference_value()]),
    );
    let r = set(
        r,
        "managingOrganization",
        reference_display(CLINIC, "Riverside Primary Care Clinic"),
    );
    ctx.push(Kind::Patient, r);
    coverage(ctx);
}

fn coverage(ctx: &mut Ctx) {
    let id = ctx.id("cov");
    let member = format!("AHP{:09}", 100_000_000 + u64::from(ctx.person.k) + 1);
    let start = days_from_civil(2020, 1, 1).max(ctx.person.birth_day);
    let plan = *ctx.rng.pick(&[
        ("PLN-GOLD-PPO", "Acme Gold PPO"),
        ("PLN-SILVER-HMO", "Acme Silver HMO"),
        ("PLN-BRONZE-EPO", "Acme Bronze EPO"),
    ]);
    let group = *ctx.rng.pick(&[
        ("GRP-10450", "Lone Star Manufacturing"),
        ("GRP-22817", "Pacific Coast Schools"),
        ("GRP-30002", "Acme Individual Market"),
    ]);
    let r = resource(
        "Coverage",
        &id,
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Coverage",
        &[],
    );
    let r = set(
        r,
        "identifier",
        json!([{
            "type": {"coding": [coding(sys::V2_0203, "MB", "Member Number")]},
            "system": "https://acmehealthplan.example.org/member-id",
            "value": member
        }]),
    );
    let r = set(r, "status", json!("active"));
    let r = set(
        r,
        "type",
        cc(sys::ACT_CODE, "HIP", "health insurance plan policy"),
    );
    let r = set(r, "subscriber", ctx.subject());
    let r = set(r, "subscriberId", json!(member));
    let r = set(r, "beneficiary", ctx.subject());
    let r = set(
        r,
        "relationship",
        cc(
            "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
            "self",
            "Self",
        ),
    );
    let r = set(
        r,
        "period",
        json!({"start": date(start), "end": "2026-12-31"}),
    );
    let r = set(
        r,
        "payor",
        json!([reference_display(PAYER, "Acme Health Plan")]),
    );
    let class_type = |code: &str, display: &str| json!({"coding": [coding("http://terminology.hl7.org/CodeSystem/coverage-class", code, display)]});
    let r = set(
        r,
        "class",
        json!([
            {"type": class_type("group", "Group"), "value": group.0, "name": group.1},
            {"type": class_type("plan", "Plan"), "value": plan.0, "name": plan.1}
        ]),
    );
    ctx.push(Kind::Coverage, r);
}
