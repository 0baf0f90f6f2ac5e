//! Every profile fhirgate embeds, looked up by canonical URL or resource
//! type: what the CapabilityStatement lists as `supportedProfile` and what
//! `$validate?profile=` resolves against.
//!
//! The catalog holds Da Vinci PAS 2.0.1 (plus the 2.2-only Claim Update),
//! US Core 6.1.0, CARIN Blue Button 2.0.0, Da Vinci HRex 1.0.0 and the
//! Subscriptions R5 Backport 1.1.0 Subscription, one profile per canonical
//! URL. The PAS 2.2 variants of 2.0.1 profiles share
//! their URLs and stay reachable through [`crate::pas_2_2`] only.

use std::sync::OnceLock;

use serde_json::Value;

use crate::{pas, pas_2_2, Profile};

/// US Core 6.1.0 (`profiles/us-core/README.md` says what was taken).
pub(crate) const US_CORE_SOURCES: &[&str] = &[
    include_str!("../us-core/patient.json"),
    include_str!("../us-core/practitioner.json"),
    include_str!("../us-core/practitionerrole.json"),
    include_str!("../us-core/organization.json"),
    include_str!("../us-core/location.json"),
    include_str!("../us-core/encounter.json"),
    include_str!("../us-core/condition-problems-health-concerns.json"),
    include_str!("../us-core/condition-encounter-diagnosis.json"),
    include_str!("../us-core/observation-lab.json"),
    include_str!("../us-core/vital-signs.json"),
    include_str!("../us-core/blood-pressure.json"),
    include_str!("../us-core/body-weight.json"),
    include_str!("../us-core/bmi.json"),
    include_str!("../us-core/body-height.json"),
    include_str!("../us-core/body-temperature.json"),
    include_str!("../us-core/heart-rate.json"),
    include_str!("../us-core/respiratory-rate.json"),
    include_str!("../us-core/pulse-oximetry.json"),
    include_str!("../us-core/smokingstatus.json"),
    include_str!("../us-core/allergyintolerance.json"),
    include_str!("../us-core/medicationrequest.json"),
    include_str!("../us-core/medication.json"),
    include_str!("../us-core/immunization.json"),
    include_str!("../us-core/procedure.json"),
    include_str!("../us-core/diagnosticreport-lab.json"),
    include_str!("../us-core/diagnosticreport-note.json"),
    include_str!("../us-core/documentreference.json"),
    include_str!("../us-core/coverage.json"),
    include_str!("../us-core/provenance.json"),
];

/// CARIN Blue Button 2.0.0 (`profiles/carin-bb/README.md`).
pub(crate) const CARIN_BB_SOURCES: &[&str] = &[
    include_str!("../carin-bb/coverage.json"),
    include_str!("../carin-bb/organization.json"),
    include_str!("../carin-bb/eob.json"),
    include_str!("../carin-bb/eob-professional-nonclinician.json"),
    include_str!("../carin-bb/eob-pharmacy.json"),
];

/// Da Vinci HRex 1.0.0 (`profiles/hrex/README.md`).
pub(crate) const HREX_SOURCES: &[&str] = &[
    include_str!("../hrex/member-match-in.json"),
    include_str!("../hrex/member-match-out.json"),
];

/// Subscriptions R5 Backport 1.1.0 (`profiles/backport/README.md`).
pub(crate) const BACKPORT_SOURCES: &[&str] = &[include_str!("../backport/subscription.json")];

/// Every embedded profile, one per canonical URL.
#[derive(Debug, Clone)]
pub struct Catalog {
    profiles: Vec<Profile>,
}

impl Catalog {
    /// All profiles, PAS first, then US Core, CARIN BB, HRex and Backport.
    pub fn all(&self) -> &[Profile] {
        &self.profiles
    }

    /// The profile with canonical `url`; a `|version` suffix (as in
    /// `meta.profile` or `$validate?profile=`) is ignored.
    pub fn by_url(&self, url: &str) -> Option<&Profile> {
        let url = url.split_once('|').map_or(url, |(u, _)| u);
        self.profiles.iter().find(|p| p.url == url)
    }

    /// Every profile constraining `resource_type`.
    pub fn for_type<'a>(
        &'a self,
        resource_type: &'a str,
    ) -> impl Iterator<Item = &'a Profile> + 'a {
        self.profiles
            .iter()
            .filter(move |p| p.resource_type == resource_type)
    }

    /// The catalog profiles `resource` claims in `meta.profile` (unknown
    /// canonicals are skipped; the caller decides whether that matters).
    pub fn claimed_by<'a>(&'a self, resource: &'a Value) -> impl Iterator<Item = &'a Profile> + 'a {
        resource["meta"]["profile"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|url| self.by_url(url))
    }

    /// Every profile from the IG package `ig` (`hl7.fhir.us.core#6.1.0`).
    pub fn for_ig<'a>(&'a self, ig: &'a str) -> impl Iterator<Item = &'a Profile> + 'a {
        self.profiles
            .iter()
            .filter(move |p| p.ig.as_deref() == Some(ig))
    }
}

/// The catalog of embedded profiles (parsed once; a file that does not
/// parse is a build defect caught by this crate's tests, and skipped).
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut profiles: Vec<Profile> = pas().all().to_vec();
        let newer = pas_2_2().all().iter();
        let added: Vec<Profile> = newer
            .filter(|n| profiles.iter().all(|p| p.url != n.url))
            .cloned()
            .collect();
        profiles.extend(added);
        for sources in [
            US_CORE_SOURCES,
            CARIN_BB_SOURCES,
            HREX_SOURCES,
            BACKPORT_SOURCES,
        ] {
            profiles.extend(sources.iter().filter_map(|t| Profile::from_json(t).ok()));
        }
        Catalog { profiles }
    })
}
