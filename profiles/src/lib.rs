//! Profile constraints kept as data, and a small checker for them.
//!
//! A [`Profile`] is a list of element constraints (path, cardinality,
//! must-support, fixed value or pattern, required binding to a small value
//! set, allowed types of a choice element, slices by pattern) read from
//! JSON. One directory per implementation guide holds one file per profile:
//!
//! - `pas/`, `pas-2.2/`: Da Vinci PAS 2.0.1 and the 2.2 differences, used by
//!   `$submit`/`$inquire` through [`pas`] and [`pas_2_2`];
//! - `us-core/`, `carin-bb/`, `hrex/`: US Core 6.1.0, CARIN Blue Button
//!   2.0.0 and Da Vinci HRex 1.0.0, for `$validate` and the
//!   CapabilityStatement.
//!
//! Every embedded profile is listed once in the [`catalog`] (by canonical
//! URL and resource type). The checker lives in `check.rs`.
//!
//! Paths are dotted element names relative to the resource; each step walks
//! every repetition, and a choice step `value[x]` matches `valueQuantity`,
//! `valueString`, … Issues name the element FHIRPath-style from a caller
//! supplied root, e.g. `Bundle.entry[0].resource.ofType(Claim).insurance[0].coverage`,
//! `Observation.value.ofType(Quantity)`, `Observation.category:us-core`.

mod catalog;
mod check;

pub use catalog::{catalog, Catalog};
pub use check::walk;

use serde::Deserialize;
use serde_json::Value;

/// One profile: the resource type it applies to and its constraints.
#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    /// Canonical URL of the StructureDefinition.
    pub url: String,
    /// Computable name.
    pub name: String,
    /// The resource type constrained.
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    /// The IG package and version it comes from (`hl7.fhir.us.core#6.1.0`);
    /// optional so that profile files without it still parse.
    #[serde(default)]
    pub ig: Option<String>,
    /// Where the constraints were taken from (the IG page of the
    /// differential), for people reading the data.
    #[serde(default)]
    pub source: Option<String>,
    /// Element constraints, parents before children.
    pub elements: Vec<Element>,
}

/// The constraints on one element.
#[derive(Debug, Clone, Deserialize)]
pub struct Element {
    /// Dotted path relative to the resource (`insurance.coverage`,
    /// `value[x]`).
    pub path: String,
    /// Minimum occurrences per parent instance.
    #[serde(default)]
    pub min: u32,
    /// Maximum occurrences per parent instance (`*` for unbounded).
    #[serde(default = "star")]
    pub max: String,
    /// Must-support in the IG (never an error; see
    /// [`Profile::must_support_gaps`]).
    #[serde(default, rename = "mustSupport")]
    pub must_support: bool,
    /// Every value must equal this.
    #[serde(default)]
    pub fixed: Option<Value>,
    /// Every value must contain this (JSON subset).
    #[serde(default)]
    pub pattern: Option<Value>,
    /// A required binding to a small value set.
    #[serde(default)]
    pub binding: Option<Binding>,
    /// Allowed types: for a choice element the type suffix (`Quantity`,
    /// `string`); for a contained resource its `resourceType`.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Slices of the repetitions, each recognised by pattern and binding.
    #[serde(default)]
    pub slices: Vec<Slice>,
    /// Closed slicing: every repetition must belong to one of `slices`.
    #[serde(default)]
    pub closed: bool,
}

/// A required binding to an enumerated value set.
#[derive(Debug, Clone, Deserialize)]
pub struct Binding {
    /// Canonical of the value set (for messages).
    #[serde(rename = "valueSet")]
    pub value_set: String,
    /// Allowed codes: `system|code`, or a bare `code` for `code` elements.
    pub codes: Vec<String>,
}

/// A named slice of a repeating element: the repetitions that contain
/// `pattern` (JSON subset) and, if given, carry a code of `binding`.
#[derive(Debug, Clone, Deserialize)]
pub struct Slice {
    /// Slice name, reported as `path:name`.
    pub name: String,
    /// What a repetition must contain to belong to the slice.
    #[serde(default)]
    pub pattern: Option<Value>,
    /// What code a repetition must carry to belong to the slice.
    #[serde(default)]
    pub binding: Option<Binding>,
    /// Minimum repetitions in the slice per parent instance.
    #[serde(default)]
    pub min: u32,
    /// Maximum repetitions in the slice (`*` for unbounded).
    #[serde(default = "star")]
    pub max: String,
    /// Must-support in the IG.
    #[serde(default, rename = "mustSupport")]
    pub must_support: bool,
    /// Constraints on each repetition in the slice, relative to it.
    #[serde(default)]
    pub elements: Vec<Element>,
}

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// FHIR IssueType code: `required`, `structure`, `value`,
    /// `code-invalid`, `not-found`; `informational` for advice.
    pub code: &'static str,
    /// FHIRPath-like element path.
    pub path: String,
    /// Human-readable text.
    pub message: String,
}

impl Issue {
    /// The OperationOutcome severity: `information` for the
    /// `informational` code, `error` for every violation.
    pub fn severity(&self) -> &'static str {
        match self.code {
            "informational" => "information",
            _ => "error",
        }
    }

    /// Whether this issue is a violation (severity `error`).
    pub fn is_error(&self) -> bool {
        self.severity() == "error"
    }
}

fn star() -> String {
    "*".to_owned()
}

impl Profile {
    /// Parses a profile from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The embedded profile texts of Da Vinci PAS 2.0.1.
const PAS_SOURCES: &[&str] = &[
    include_str!("../pas/request-bundle.json"),
    include_str!("../pas/claim.json"),
    include_str!("../pas/claim-inquiry.json"),
    include_str!("../pas/beneficiary.json"),
    include_str!("../pas/coverage.json"),
    include_str!("../pas/insurer.json"),
    include_str!("../pas/requestor.json"),
    include_str!("../pas/practitionerrole.json"),
    include_str!("../pas/servicerequest.json"),
    include_str!("../pas/devicerequest.json"),
    include_str!("../pas/medicationrequest.json"),
    include_str!("../pas/claimresponse.json"),
    include_str!("../pas/response-bundle.json"),
];

/// The embedded profile texts of Da Vinci PAS 2.2 that differ from 2.0.1
/// (`profiles/pas-2.2/README.md` says what and where from).
const PAS_2_2_SOURCES: &[&str] = &[
    include_str!("../pas-2.2/claim.json"),
    include_str!("../pas-2.2/claim-update.json"),
];

/// A set of profiles, looked up by computable name.
#[derive(Debug, Clone)]
pub struct Profiles(Vec<Profile>);

impl Profiles {
    /// The profile named `name` (e.g. `PASClaim`).
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.0.iter().find(|p| p.name == name)
    }
    /// All profiles.
    pub fn all(&self) -> &[Profile] {
        &self.0
    }
}

/// The Da Vinci PAS 2.0.1 profiles (parsed once; a file that does not
/// parse is a build defect caught by this crate's tests, and skipped).
pub fn pas() -> &'static Profiles {
    static PAS: std::sync::OnceLock<Profiles> = std::sync::OnceLock::new();
    PAS.get_or_init(|| {
        Profiles(
            PAS_SOURCES
                .iter()
                .filter_map(|t| Profile::from_json(t).ok())
                .collect(),
        )
    })
}

/// The Da Vinci PAS 2.2 profiles: the 2.0.1 set with the 2.2 files
/// replacing profiles of the same name (or adding new ones).
pub fn pas_2_2() -> &'static Profiles {
    static PAS_2_2: std::sync::OnceLock<Profiles> = std::sync::OnceLock::new();
    PAS_2_2.get_or_init(|| {
        let newer: Vec<Profile> = PAS_2_2_SOURCES
            .iter()
            .filter_map(|t| Profile::from_json(t).ok())
            .collect();
        let mut all: Vec<Profile> = pas()
            .all()
            .iter()
            .filter(|p| newer.iter().all(|n| n.name != p.name))
            .cloned()
            .collect();
        all.extend(newer);
        Profiles(all)
    })
}

#[cfg(test)]
mod tests;
