//! Sensitivity classification of one resource: confidentiality (high-water
//! mark of `meta.security` on the resource and its contained resources),
//! sensitivity categories from labels and from codes, DS4P inline labels,
//! and the facts provisions match on (codings, references, authors, date).
//!
//! Codes are always scanned, contained resources included: labels add
//! categories, they never hide one a code implies (stricter than "only when
//! unlabelled", and equal to it for correctly labelled data). A resource with
//! a code-implied category and no confidentiality label is raised to `R`.
//! The result is a pure function of the resource bytes, so callers may cache
//! it per resource version.

use std::collections::BTreeSet;

use serde_json::Value;

use super::codes::ValueSets;
use super::model::Code;
use super::time::parse_instant;

/// v3 Confidentiality system.
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// v3 ActCode system (sensitivity, obligation, refrain codes).
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// DS4P inline security label extension.
pub const INLINE_LABEL: &str =
    "http://hl7.org/fhir/uv/security-label-ds4p/StructureDefinition/extension-inline-sec-label";

/// Confidentiality, ordered from least to most restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidentiality {
    /// U unrestricted
    U,
    /// L low
    L,
    /// M moderate
    M,
    /// N normal (the default for unlabelled data)
    N,
    /// R restricted
    R,
    /// V very restricted
    V,
}

impl Confidentiality {
    /// Parse a v3-Confidentiality code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "U" => Self::U,
            "L" => Self::L,
            "M" => Self::M,
            "N" => Self::N,
            "R" => Self::R,
            "V" => Self::V,
            _ => return None,
        })
    }
}

/// Sensitivity categories (v3-ActCode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sensitivity {
    /// HIV
    Hiv,
    /// PSY psychiatry
    Psy,
    /// MH mental health
    Mh,
    /// BH behavioral health
    Bh,
    /// ETH substance abuse
    Eth,
    /// SUD substance use disorder
    Sud,
    /// OPIOIDUD opioid use disorder
    Opioidud,
    /// GDIS genetic disease
    Gdis,
    /// SDV sexual assault, abuse or domestic violence
    Sdv,
    /// STD sexually transmitted disease
    Std,
    /// SEX sexuality and reproductive health
    Sex,
}

impl Sensitivity {
    /// Every category.
    pub const ALL: [Sensitivity; 11] = [
        Self::Hiv,
        Self::Psy,
        Self::Mh,
        Self::Bh,
        Self::Eth,
        Self::Sud,
        Self::Opioidud,
        Self::Gdis,
        Self::Sdv,
        Self::Std,
        Self::Sex,
    ];

    /// The v3-ActCode code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Hiv => "HIV",
            Self::Psy => "PSY",
            Self::Mh => "MH",
            Self::Bh => "BH",
            Self::Eth => "ETH",
            Self::Sud => "SUD",
            Self::Opioidud => "OPIOIDUD",
            Self::Gdis => "GDIS",
            Self::Sdv => "SDV",
            Self::Std => "STD",
            Self::Sex => "SEX",
        }
    }

    /// Parse a v3-ActCode code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// What the engine knows about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// `resourceType`.
    pub resource_type: String,
    /// `Type/id`, when the resource has an id.
    pub self_ref: Option<String>,
    /// High-water confidentiality (N when unlabelled).
    pub confidentiality: Confidentiality,
    /// Categories from `meta.security` (resource and contained).
    pub labelled: BTreeSet<Sensitivity>,
    /// Categories implied by codes.
    pub inferred: BTreeSet<Sensitivity>,
    /// Categories labelled inline on sub-elements (DS4P extension).
    pub inline: BTreeSet<Sensitivity>,
    /// Every coding outside `meta`, contained resources included.
    pub codings: Vec<Code>,
    /// Every literal reference in the resource.
    pub references: BTreeSet<String>,
    /// References under author/recorder/asserter/requester/performer.
    pub authors: BTreeSet<String>,
    /// Clinically relevant time (first of effective/onset/recorded/...).
    pub clinical_time: Option<i64>,
}

impl Classification {
    /// Resource-level categories: labelled ∪ inferred.
    pub fn categories(&self) -> BTreeSet<Sensitivity> {
        self.labelled.union(&self.inferred).copied().collect()
    }
}

const AUTHOR_KEYS: [&str; 6] = [
    "author",
    "recorder",
    "asserter",
    "requester",
    "performer",
    "informant",
];
const TIME_KEYS: [&str; 12] = [
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod",
    "onsetDateTime",
    "onsetPeriod",
    "performedDateTime",
    "performedPeriod",
    "recordedDate",
    "authoredOn",
    "issued",
    "period",
    "date",
];

/// Classify a resource.
pub fn classify(resource: &Value, sets: &ValueSets) -> Classification {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let self_ref = resource
        .get("id")
        .and_then(Value::as_str)
        .map(|id| format!("{resource_type}/{id}"));
    let mut c = Classification {
        resource_type,
        self_ref,
        confidentiality: Confidentiality::N,
        labelled: BTreeSet::new(),
        inferred: BTreeSet::new(),
        inline: BTreeSet::new(),
        codings: Vec::new(),
        references: BTreeSet::new(),
        authors: BTreeSet::new(),
        clinical_time: None,
    };
    let mut conf: Option<Confidentiality> = None;
    let mut labelled_resources = vec![resource];
    if let Some(Value::Array(contained)) = resource.get("contained") {
        labelled_resources.extend(contained.iter());
    }
    for r in labelled_resources {
        for label in r
            .pointer("/meta/security")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let code = label
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(k) = Confidentiality::from_code(code) {
                conf = conf.max(Some(k));
            } else if let Some(s) = Sensitivity::from_code(code) {
                c.labelled.insert(s);
            }
        }
    }
    walk(resource, false, &mut c);
    for code in &c.codings {
        c.inferred
            .extend(sets.categories(code.system.as_deref(), &code.code));
    }
    for key in AUTHOR_KEYS {
        if let Some(v) = resource.get(key) {
            collect_refs(v, &mut c.authors);
        }
    }
    c.clinical_time = TIME_KEYS.iter().find_map(|k| {
        let v = resource.get(*k)?;
        let s = v
            .as_str()
            .or_else(|| v.get("start").and_then(Value::as_str))?;
        parse_instant(s).ok().map(|(t, _)| t)
    });
    c.confidentiality = match conf {
        Some(k) => k,
        None if !c.inferred.is_empty() => Confidentiality::R,
        None => Confidentiality::N,
    };
    c
}

fn walk(v: &Value, in_meta: bool, c: &mut Classification) {
    match v {
        Value::Object(map) => {
            if !in_meta {
                if let (Some(Value::String(code)), Some(system)) =
                    (map.get("code"), map.get("system"))
                {
                    c.codings.push(Code {
                        system: system.as_str().map(str::to_owned),
                        code: code.clone(),
                    });
                }
            }
            if let Some(Value::String(r)) = map.get("reference") {
                c.references.insert(r.clone());
            }
            for ext in map
                .get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if ext.get("url").and_then(Value::as_str) == Some(INLINE_LABEL) {
                    let code = ext
                        .pointer("/valueCoding/code")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if let Some(s) = Sensitivity::from_code(code) {
                        c.inline.insert(s);
                    }
                }
            }
            for (k, child) in map {
                walk(child, in_meta || k == "meta", c);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, in_meta, c)),
        _ => {}
    }
}

fn collect_refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("reference") {
                out.insert(r.clone());
            }
            map.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// Whether replacing a resource classified `old` by one classified `new`
/// would lower its labels (a lower confidentiality or a dropped sensitivity
/// label): such writes are refused.
pub fn lowers_label(old: &Classification, new: &Classification) -> bool {
    new.confidentiality < old.confidentiality || !old.labelled.is_subset(&new.labelled)
}

/// Whether a resource is a redacted copy (tagged `REDACTED`): never saved
/// over the full record.
pub fn is_redacted(resource: &Value) -> bool {
    resource
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter()
                .any(|c| c.get("code").and_then(Value::as_str) == Some("REDACTED"))
        })
}
