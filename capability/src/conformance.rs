//! `instantiates` and `implementationGuide`: the IG server
//! CapabilityStatements fhirgate claims to meet, each claimed only when
//! (a) the feature behind it is on and (b) the statement being built
//! declares everything the claim's checklist ([`Need`]) names, so a
//! configuration or store that loses a required capability loses the claim
//! with it.
//!
//! Claimed (see each constant for why):
//! - Bulk Data Access 2.0 server ([`BULK_DATA`]);
//! - Da Vinci PAS Intermediary ([`PAS`]);
//! - CARIN Blue Button server ([`CARIN_BB`]), only while the store declares
//!   the EOB searches and includes it requires (the embedded store today
//!   lacks `service-start-date`, so it is not claimed there).
//!
//! Not claimed, on purpose:
//! - US Core 6.1 server: the embedded table covers the US Core searches
//!   Inferno sends, but US Core also asks for types the table does not
//!   carry (e.g. MedicationDispense) and for must-support behaviour no test
//!   here checks; a claim would be unverified.
//! - PDex server: it imports US Core and HRex requirements beyond the
//!   operations fhirgate runs; same reason.
//! - UDAP is a security service (`rest.security`), not a server
//!   CapabilityStatement to instantiate; its IG is listed in
//!   `implementationGuide` when UDAP is on.

use crate::{model::Rest, operations::Features};

/// One thing a claimed statement requires of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A system-level operation of this name.
    SystemOperation(&'static str),
    /// A type/instance-level operation on the type.
    Operation(&'static str, &'static str),
    /// An interaction code on the type.
    Interaction(&'static str, &'static str),
    /// A search parameter on the type.
    Search(&'static str, &'static str),
    /// A `searchInclude` value on the type.
    Include(&'static str, &'static str),
    /// A SubscriptionTopic offered on `Subscription` (Backport extension).
    Topic(&'static str),
}

impl Need {
    /// Whether `rest` declares it.
    pub fn met_by(self, rest: &Rest) -> bool {
        match self {
            Self::SystemOperation(n) => rest.operations.iter().any(|o| o.name == n),
            Self::Operation(t, n) => rest
                .resource(t)
                .is_some_and(|r| r.operations.iter().any(|o| o.name == n)),
            Self::Interaction(t, c) => rest
                .resource(t)
                .is_some_and(|r| r.interactions.iter().any(|i| i == c)),
            Self::Search(t, n) => rest
                .resource(t)
                .is_some_and(|r| r.search.iter().any(|p| p.name == n)),
            Self::Include(t, v) => rest
                .resource(t)
                .is_some_and(|r| r.includes.iter().any(|i| i == v)),
            Self::Topic(url) => rest
                .resource("Subscription")
                .is_some_and(|r| r.topics.iter().any(|t| t == url)),
        }
    }
}

/// A server CapabilityStatement of an IG that fhirgate may instantiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The CapabilityStatement canonical (without version).
    pub canonical: &'static str,
    /// The IG's ImplementationGuide canonical (without version).
    pub ig: &'static str,
    /// The IG version fhirgate follows, if fixed here.
    pub version: Option<&'static str>,
    /// What must be declared for the claim to stand.
    pub needs: &'static [Need],
}

/// Bulk Data Access 2.0.0 server: `$export` at system, Patient and Group
/// level runs in the `bulk` module (async kick-off, status, manifest,
/// NDJSON files, delete), and SMART Backend Services (client_credentials
/// with `private_key_jwt`) is the authorization the IG requires.
pub const BULK_DATA: Claim = Claim {
    canonical: "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data",
    ig: "http://hl7.org/fhir/uv/bulkdata/ImplementationGuide/hl7.fhir.uv.bulkdata",
    version: Some("2.0.0"),
    needs: &[
        Need::SystemOperation("export"),
        Need::Operation("Patient", "export"),
        Need::Operation("Group", "export"),
    ],
};

/// Da Vinci PAS Intermediary (server side of a PAS exchange). Checked
/// against the statement's full text (IG source `ClaimOperation.fsh`,
/// `IntermediaryCapabilities`): formats json and xml (always declared
/// here); `Claim` with `$submit` and `$inquire`; `Subscription` with
/// create, update and delete on `PASSubscriptionTopic`, named by the
/// Backport `capabilitystatement-subscriptiontopic-canonical` extension.
/// Nothing else is required. `Claim/$submit` and `Claim/$inquire`
/// validate against the PAS profiles of the configured version,
/// adjudicate, pend and answer PAS Response Bundles (`prior_auth`); the
/// topic's subscriptions notify on pended decisions (`subscriptions`).
/// One revision of the IG source also `imports` the US Core server
/// statement; that revision's claim would need US Core, which is not
/// claimed here (see the module docs), so the checklist is the one the
/// current source carries. The version is the configured `pas_version`
/// (see [`claims`]).
pub const PAS: Claim = Claim {
    canonical: "http://hl7.org/fhir/us/davinci-pas/CapabilityStatement/IntermediaryCapabilities",
    ig: "http://hl7.org/fhir/us/davinci-pas/ImplementationGuide/hl7.fhir.us.davinci-pas",
    version: None,
    needs: &[
        Need::Operation("Claim", "submit"),
        Need::Operation("Claim", "inquire"),
        Need::Interaction("Subscription", "create"),
        Need::Interaction("Subscription", "update"),
        Need::Interaction("Subscription", "delete"),
        Need::Topic(crate::local::PAS_TOPIC),
    ],
};

/// CARIN Blue Button 2.0.0 server (`c4bb`): the EOB searches and
/// `_include`s its CapabilityStatement makes SHALL, plus read of the
/// reference resources. Claimed only when all are declared.
pub const CARIN_BB: Claim = Claim {
    canonical: "http://hl7.org/fhir/us/carin-bb/CapabilityStatement/c4bb",
    ig: "http://hl7.org/fhir/us/carin-bb/ImplementationGuide/hl7.fhir.us.carin-bb",
    version: Some("2.0.0"),
    needs: &[
        Need::Search("ExplanationOfBenefit", "_id"),
        Need::Search("ExplanationOfBenefit", "_lastUpdated"),
        Need::Search("ExplanationOfBenefit", "identifier"),
        Need::Search("ExplanationOfBenefit", "patient"),
        Need::Search("ExplanationOfBenefit", "type"),
        Need::Search("ExplanationOfBenefit", "service-date"),
        Need::Search("ExplanationOfBenefit", "service-start-date"),
        Need::Search("ExplanationOfBenefit", "billable-period-start"),
        Need::Include("ExplanationOfBenefit", "ExplanationOfBenefit:patient"),
        Need::Include("ExplanationOfBenefit", "ExplanationOfBenefit:provider"),
        Need::Include("ExplanationOfBenefit", "ExplanationOfBenefit:care-team"),
        Need::Include("ExplanationOfBenefit", "ExplanationOfBenefit:coverage"),
        Need::Include("ExplanationOfBenefit", "ExplanationOfBenefit:insurer"),
        Need::Include("ExplanationOfBenefit", "ExplanationOfBenefit:payee"),
        Need::Include("ExplanationOfBenefit", "ExplanationOfBenefit:*"),
        Need::Include("Coverage", "Coverage:payor"),
        Need::Interaction("Patient", "read"),
        Need::Interaction("Coverage", "read"),
        Need::Interaction("Organization", "read"),
        Need::Interaction("Practitioner", "read"),
    ],
};

/// SMART App Launch 2.2.0: the security block and discovery document.
pub const SMART_IG: &str =
    "http://hl7.org/fhir/smart-app-launch/ImplementationGuide/hl7.fhir.uv.smart-app-launch|2.2.0";

/// UDAP Security (HL7 FAST), listed when UDAP is on.
pub const UDAP_IG: &str =
    "http://hl7.org/fhir/us/udap-security/ImplementationGuide/hl7.fhir.us.udap-security";

/// The claims `features` make candidates (CARIN BB depends on the store only).
pub fn candidates(features: &Features) -> Vec<Claim> {
    let mut out = Vec::new();
    if features.bulk_export {
        out.push(BULK_DATA);
    }
    if features.prior_auth && features.subscriptions {
        out.push(PAS);
    }
    out.push(CARIN_BB);
    out
}

fn versioned(url: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{url}|{v}"),
        None => url.to_owned(),
    }
}

/// `(instantiates, implementationGuide)` for the statement `rest`.
pub fn claims(rest: &Rest, features: &Features, pas_version: &str) -> (Vec<String>, Vec<String>) {
    let mut instantiates = Vec::new();
    let mut guides = vec![SMART_IG.to_owned()];
    for c in candidates(features) {
        if c.needs.iter().all(|n| n.met_by(rest)) {
            let v = c
                .version
                .or((c.canonical == PAS.canonical).then_some(pas_version));
            instantiates.push(versioned(c.canonical, v));
            guides.push(versioned(c.ig, v));
        }
    }
    if features.udap {
        guides.push(UDAP_IG.to_owned());
    }
    (instantiates, guides)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Operation, Resource};

    fn with_ops(ops: &[(&str, &str)]) -> Rest {
        let mut rest = Rest::default();
        for (t, n) in ops {
            let op = Operation {
                name: (*n).into(),
                definition: "http://d".into(),
            };
            if t.is_empty() {
                rest.operations.push(op);
            } else {
                rest.resource_mut(t).add_operation(op);
            }
        }
        rest
    }

    #[test]
    fn a_claim_needs_its_feature_and_every_requirement() {
        let on = Features {
            bulk_export: true,
            prior_auth: true,
            ..Features::default()
        };
        let full = with_ops(&[("", "export"), ("Patient", "export"), ("Group", "export")]);
        let (inst, guides) = claims(&full, &on, "2.0.1");
        assert_eq!(inst, vec![format!("{}|2.0.0", BULK_DATA.canonical)]);
        assert!(guides.iter().any(|g| g.starts_with(BULK_DATA.ig)));
        // one export level missing: no claim
        let partial = with_ops(&[("", "export"), ("Patient", "export")]);
        assert!(claims(&partial, &on, "2.0.1").0.is_empty());
        // feature off: no claim even when declared
        let off = Features::default();
        assert!(claims(&full, &off, "2.0.1").0.is_empty());
    }

    #[test]
    fn pas_is_versioned_by_configuration_and_udap_listed_when_on() {
        let f = Features {
            prior_auth: true,
            subscriptions: true,
            udap: true,
            ..Features::default()
        };
        let mut rest = with_ops(&[("Claim", "submit"), ("Claim", "inquire")]);
        // the operations alone do not meet the Intermediary statement
        assert!(claims(&rest, &f, "2.2").0.is_empty());
        let sub = rest.resource_mut("Subscription");
        for c in ["create", "update", "delete"] {
            sub.interactions.push(c.into());
        }
        // nor without the PAS topic named
        assert!(claims(&rest, &f, "2.2").0.is_empty());
        rest.resource_mut("Subscription")
            .topics
            .push(crate::local::PAS_TOPIC.into());
        let (inst, guides) = claims(&rest, &f, "2.2");
        assert_eq!(inst, vec![format!("{}|2.2", PAS.canonical)]);
        assert!(guides.contains(&UDAP_IG.to_owned()));
        assert_eq!(guides[0], SMART_IG);
        // a Subscription that cannot be deleted loses the claim
        rest.resource_mut("Subscription")
            .interactions
            .retain(|c| c != "delete");
        assert!(claims(&rest, &f, "2.2").0.is_empty());
    }

    #[test]
    fn carin_needs_every_eob_search() {
        let mut rest = Rest::default();
        for n in CARIN_BB.needs {
            match *n {
                Need::Search(t, p) => rest.resource_mut(t).search.push(crate::model::SearchParam {
                    name: p.into(),
                    definition: None,
                    kind: "token".into(),
                }),
                Need::Include(t, v) => rest.resource_mut(t).includes.push(v.into()),
                Need::Interaction(t, c) => rest.resource_mut(t).interactions.push(c.into()),
                _ => {}
            }
        }
        let f = Features::default();
        assert_eq!(claims(&rest, &f, "2.0.1").0.len(), 1);
        let eob: &mut Resource = rest.resource_mut("ExplanationOfBenefit");
        eob.search.retain(|p| p.name != "service-start-date");
        assert!(claims(&rest, &f, "2.0.1").0.is_empty());
    }
}
