//! The seeded data and what each policy view hides. Every resource carries
//! element values no other resource has (`secrets`), so a denied resource
//! is caught by its values as well as by its id; ids are chosen so that no
//! id is a prefix of another and none looks like hex (request ids and ETag
//! hashes never match them by chance).

use serde_json::{json, Value};

/// The patient whose Consents the matrix varies.
pub const P1: &str = "pat-one";
/// The control patient (no Consent ever).
pub const P2: &str = "pat-two";
/// The clinician user (`Practitioner/dr-lee`).
pub const DR: &str = "dr-lee";
/// The organization the clinician (token claim) and the provider backend
/// (`[payer] provider_clients`) act for.
pub const ORG: &str = "Organization/org-lee-clinic";
/// Another organization (a clinician of it is not concerned by a Consent
/// denying [`ORG`]).
pub const OTHER_ORG: &str = "Organization/org-elsewhere";
/// The paging code (`urn:lm|pgcode`).
pub const PG_QUERY: &str = "code=urn%3Alm%7Cpgcode";

const ACT: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const INLINE: &str =
    "http://hl7.org/fhir/uv/security-label-ds4p/StructureDefinition/extension-inline-sec-label";

/// Sensitivity of a seeded resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cat {
    /// Nothing sensitive.
    Plain,
    /// ICD-10 B20 (classified HIV by the value sets, no label).
    Hiv,
    /// ICD-10 F11.20 (SUD: Part 2 hides it without a consent naming it).
    Sud,
    /// Labelled PSY on `meta.security` (the whole resource).
    Psy,
    /// One element labelled PSY inline (DS4P): redacted, not denied.
    PsyInline,
}

/// One seeded resource.
pub struct Seed {
    /// Resource type.
    pub rtype: &'static str,
    /// Id (PUT as is).
    pub id: &'static str,
    /// The patient it is about.
    pub patient: Option<&'static str>,
    /// `Type/id` it inherits its decision from (Provenance target, Binary
    /// securityContext).
    pub inherits: Option<&'static str>,
    /// Sensitivity.
    pub cat: Cat,
    /// Element values only this resource carries.
    pub secrets: Vec<&'static str>,
    /// Element values a redaction removes.
    pub redactable: Vec<&'static str>,
    /// Whether `performer` is Practitioner/dr-lee (for `_revinclude`).
    pub by_dr: bool,
    /// Whether it is one of the paging Observations.
    pub paging: bool,
    /// Whether the loader deletes it after loading.
    pub deleted: bool,
    /// An earlier version (loaded first), judged on its own: vread and
    /// history must treat every version with today's consent and labels.
    pub prior: Option<Box<Seed>>,
    /// The body.
    pub body: Value,
}

impl Seed {
    /// `Type/id`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.rtype, self.id)
    }

    /// Whether it is in P1's record (itself, or inheriting from P1's record).
    pub fn about(&self, patient: &str, all: &[Seed]) -> bool {
        self.patient == Some(patient)
            || self
                .inherits
                .and_then(|t| find(all, t))
                .is_some_and(|t| t.about(patient, all))
    }
}

/// The seed with `Type/id`.
pub fn find<'a>(all: &'a [Seed], reference: &str) -> Option<&'a Seed> {
    all.iter().find(|s| s.reference() == reference)
}

/// What a caller may see under a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// No Consent in force: Part 2 hides the SUD record, nothing else.
    Baseline,
    /// Nothing of P1.
    NoP1,
    /// P1's HIV record and what inherits from it hidden (and SUD).
    NoHiv,
    /// P1's PSY-labelled record hidden, inline PSY redacted (and SUD).
    NoPsy,
    /// Break-the-glass over a deny-all Consent: everything released (the
    /// SUD record too, under Part 2's medical-emergency exception).
    Glass,
}

impl View {
    /// Whether `s` is hidden.
    pub fn hides(self, s: &Seed, all: &[Seed]) -> bool {
        if let Some(t) = s.inherits.and_then(|t| find(all, t)) {
            if self.hides(t, all) {
                return true;
            }
        }
        match self {
            View::Baseline => s.cat == Cat::Sud,
            // 42 CFR 2.51: a medical emergency releases Part 2 records too
            View::Glass => false,
            View::NoP1 => s.about(P1, all) || s.cat == Cat::Sud,
            View::NoHiv => matches!(s.cat, Cat::Hiv | Cat::Sud),
            View::NoPsy => matches!(s.cat, Cat::Psy | Cat::Sud),
        }
    }

    /// Whether the earlier version of `s` is hidden: judged itself and with
    /// the record's labels today.
    pub fn hides_prior(self, s: &Seed, all: &[Seed]) -> bool {
        self.hides(s, all) || s.prior.as_deref().is_some_and(|p| self.hides(p, all))
    }

    /// Whether `s` is released redacted.
    pub fn redacts(self, s: &Seed) -> bool {
        self == View::NoPsy && s.cat == Cat::PsyInline
    }

    /// The ids of `all` matching `pred` that this view releases, sorted
    /// (deleted ones left out).
    pub fn visible(self, all: &[Seed], pred: impl Fn(&Seed) -> bool) -> Vec<String> {
        self.visible_or_deleted(all, |s| !s.deleted && pred(s))
    }

    /// [`Self::visible`] with deleted ones (a history holds their versions).
    pub fn visible_or_deleted(self, all: &[Seed], pred: impl Fn(&Seed) -> bool) -> Vec<String> {
        let mut v: Vec<String> = all
            .iter()
            .filter(|s| pred(s) && !self.hides(s, all))
            .map(|s| s.id.to_owned())
            .collect();
        v.sort();
        v
    }
}

fn obs(id: &'static str, patient: &'static str, value: &'static str, by_dr: bool) -> Seed {
    let mut body = json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueString": value});
    if by_dr {
        body["performer"] = json!([{"reference": format!("Practitioner/{DR}")}]);
    }
    Seed {
        rtype: "Observation",
        id,
        patient: Some(patient),
        inherits: None,
        cat: Cat::Plain,
        secrets: vec![value],
        redactable: vec![],
        by_dr,
        paging: false,
        deleted: false,
        prior: None,
        body,
    }
}

fn cond(id: &'static str, cat: Cat, code: Value, secrets: Vec<&'static str>) -> Seed {
    let mut body = json!({"resourceType": "Condition", "id": id,
        "subject": {"reference": format!("Patient/{P1}")}, "code": code});
    if cat == Cat::Psy {
        body["meta"] = json!({"security": [{"system": ACT, "code": "PSY"}]});
    }
    Seed {
        rtype: "Condition",
        id,
        patient: Some(P1),
        inherits: None,
        cat,
        secrets,
        redactable: vec![],
        by_dr: false,
        paging: false,
        deleted: false,
        prior: None,
        body,
    }
}

fn plain(
    rtype: &'static str,
    id: &'static str,
    patient: Option<&'static str>,
    body: Value,
) -> Seed {
    Seed {
        rtype,
        id,
        patient,
        inherits: None,
        cat: Cat::Plain,
        secrets: vec![],
        redactable: vec![],
        by_dr: false,
        paging: false,
        deleted: false,
        prior: None,
        body,
    }
}

/// The seeded data, in load order.
pub fn seeds() -> Vec<Seed> {
    let mut out = vec![
        Seed {
            secrets: vec!["Onewell"],
            ..plain(
                "Patient",
                P1,
                Some(P1),
                json!({"resourceType": "Patient", "id": P1,
                "name": [{"family": "Onewell", "given": ["Ada"]}], "gender": "female"}),
            )
        },
        plain(
            "Patient",
            P2,
            Some(P2),
            json!({"resourceType": "Patient", "id": P2,
            "name": [{"family": "Twofold", "given": ["Bo"]}], "gender": "male"}),
        ),
        plain(
            "Practitioner",
            DR,
            None,
            json!({"resourceType": "Practitioner", "id": DR,
            "name": [{"family": "Lee"}]}),
        ),
        obs("obs-one-a", P1, "glucose-alpha-reading", true),
        obs("obs-one-b", P1, "glucose-beta-reading", true),
        obs("obs-two-a", P2, "twofold-alpha-reading", true),
        obs("obs-two-b", P2, "twofold-beta-reading", false),
        Seed {
            deleted: true,
            ..obs("obs-one-del", P1, "deleted-one-reading", false)
        },
        // v1 labelled PSY, v2 (current) not
        Seed {
            prior: Some(Box::new(Seed {
                cat: Cat::Psy,
                body: json!({"resourceType": "Observation", "id": "obs-one-ver", "status": "preliminary",
                    "meta": {"security": [{"system": ACT, "code": "PSY"}]},
                    "code": {"text": "versioned-observation"},
                    "subject": {"reference": format!("Patient/{P1}")},
                    "valueString": "first-version-psy-reading"}),
                ..obs("obs-one-ver", P1, "first-version-psy-reading", false)
            })),
            ..obs("obs-one-ver", P1, "second-version-reading", false)
        },
        // v1 unlabelled, v2 (current) labelled PSY: hidden whole where PSY is
        Seed {
            cat: Cat::Psy,
            prior: Some(Box::new(obs(
                "obs-one-relabel",
                P1,
                "relabel-first-reading",
                false,
            ))),
            body: json!({"resourceType": "Observation", "id": "obs-one-relabel", "status": "amended",
                "meta": {"security": [{"system": ACT, "code": "PSY"}]},
                "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                "subject": {"reference": format!("Patient/{P1}")},
                "valueString": "relabel-second-reading"}),
            ..obs("obs-one-relabel", P1, "relabel-second-reading", false)
        },
        Seed {
            cat: Cat::PsyInline,
            secrets: vec!["screening-form-text"],
            redactable: vec!["secret-inline-note"],
            ..plain(
                "Observation",
                "obs-one-inl",
                Some(P1),
                json!({"resourceType": "Observation",
                "id": "obs-one-inl", "status": "final", "code": {"text": "screening-form-text"},
                "subject": {"reference": format!("Patient/{P1}")},
                "note": [{"text": "secret-inline-note",
                    "extension": [{"url": INLINE, "valueCoding": {"system": ACT, "code": "PSY"}}]}]}),
            )
        },
        cond(
            "cnd-hiv",
            Cat::Hiv,
            json!({"coding": [{"system": ICD10, "code": "B20", "display": "HIV disease"}]}),
            vec!["B20", "HIV disease"],
        ),
        cond(
            "cnd-sud",
            Cat::Sud,
            json!({"coding": [{"system": ICD10, "code": "F11.20", "display": "Opioid dependence"}]}),
            vec!["F11.20", "Opioid dependence"],
        ),
        cond(
            "cnd-psy",
            Cat::Psy,
            json!({"text": "psy-condition-text"}),
            vec!["psy-condition-text"],
        ),
        Seed {
            inherits: Some("Condition/cnd-hiv"),
            secrets: vec!["hiv-provenance-reason"],
            ..plain(
                "Provenance",
                "prv-hiv",
                None,
                json!({"resourceType": "Provenance",
                "id": "prv-hiv", "recorded": "2024-01-01T00:00:00Z",
                "target": [{"reference": "Condition/cnd-hiv"}],
                "reason": [{"text": "hiv-provenance-reason"}],
                "agent": [{"who": {"reference": format!("Practitioner/{DR}")}}]}),
            )
        },
        Seed {
            inherits: Some("Observation/obs-one-a"),
            secrets: vec!["lab-provenance-reason"],
            ..plain(
                "Provenance",
                "prv-lab",
                None,
                json!({"resourceType": "Provenance",
                "id": "prv-lab", "recorded": "2024-01-01T00:00:00Z",
                "target": [{"reference": "Observation/obs-one-a"}],
                "reason": [{"text": "lab-provenance-reason"}],
                "agent": [{"who": {"reference": format!("Practitioner/{DR}")}}]}),
            )
        },
        Seed {
            inherits: Some("Condition/cnd-hiv"),
            // base64 of "hiv-report"
            secrets: vec!["aGl2LXJlcG9ydA"],
            ..plain(
                "Binary",
                "bin-hiv",
                None,
                json!({"resourceType": "Binary", "id": "bin-hiv",
                "contentType": "text/plain", "securityContext": {"reference": "Condition/cnd-hiv"},
                "data": "aGl2LXJlcG9ydA=="}),
            )
        },
    ];
    // Paging: P1 and P2 interleaved, so hidden matches sit between visible ones.
    for (i, (id, p, v)) in [
        ("pg-one-0", P1, "pgval-one-zero"),
        ("pg-two-0", P2, "pgval-two-zero"),
        ("pg-one-1", P1, "pgval-one-first"),
        ("pg-two-1", P2, "pgval-two-first"),
        ("pg-one-2", P1, "pgval-one-second"),
        ("pg-two-2", P2, "pgval-two-second"),
        ("pg-one-3", P1, "pgval-one-third"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = obs(id, p, v, false);
        s.body["code"] = json!({"coding": [{"system": "urn:lm", "code": "pgcode"}]});
        s.body["effectiveDateTime"] = json!(format!("2024-01-0{}T00:00:00Z", i + 1));
        s.paging = true;
        out.push(s);
    }
    out
}

/// A `patient-privacy` Consent of P1 with `provision`.
pub fn consent(id: &str, status: &str, provision: Value) -> Value {
    json!({"resourceType": "Consent", "id": id, "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{P1}")},
        "performer": [{"reference": format!("Patient/{P1}")}],
        "policyRule": {"coding": [{"system": ACT, "code": "OPTOUT"}]},
        "provision": provision})
}

/// The provisions of the matrix's policies.
pub mod provision {
    use serde_json::{json, Value};

    use super::{ACT, DR, ORG};

    /// Deny everything.
    pub fn deny_all() -> Value {
        json!({"type": "deny"})
    }

    /// Permit, except resources of a sensitivity category.
    pub fn deny_label(code: &str) -> Value {
        json!({"type": "permit", "provision": [{"type": "deny",
            "securityLabel": [{"system": ACT, "code": code}]}]})
    }

    /// Permit, except for Practitioner/dr-lee.
    pub fn deny_actor() -> Value {
        json!({"type": "permit", "provision": [{"type": "deny", "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
            "reference": {"reference": format!("Practitioner/{DR}")}}]}]})
    }

    /// Permit, except for the users of [`ORG`].
    pub fn deny_org() -> Value {
        json!({"type": "permit", "provision": [{"type": "deny", "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
            "reference": {"reference": ORG}}]}]})
    }

    /// Deny, except for payment (HPAYMT).
    pub fn only_purpose(code: &str) -> Value {
        json!({"type": "deny", "provision": [{"type": "permit", "purpose": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": code}]}]})
    }

    /// Deny everything, in a period that ended long ago.
    pub fn expired_deny() -> Value {
        json!({"type": "deny", "period": {"start": "2001-01-01", "end": "2002-01-01"}})
    }
}
