//! Deployment policy: the base policy applied when no Consent provision
//! matches (IHE PCF implicit opt-in / opt-out), who may break the glass, who
//! is cleared to see which sensitivity tags, and jurisdiction packs.
//!
//! A jurisdiction pack is a list of [`Rule`]s. Every rule has one meaning,
//! "disclosing this data for this purpose needs the patient's explicit
//! consent": when a released resource has one of the rule's categories (or
//! any data, for an empty list) and the purpose of use is not exempt, a
//! permit stands only if a Consent provision produced it (and, when
//! `consent_must_name` is set, that provision or an ancestor names one of the
//! categories in `securityLabel` or by `code`); a permit from the base policy
//! becomes a deny. Rules apply to reads (disclosure) only; the patient's own
//! access is never restricted by them. Rule obligations (e.g. `NORDSCLCD`)
//! are added to every released resource in the rule's categories.
//!
//! Starter packs, simplified on purpose:
//! - **42 CFR Part 2** (federal, every patient): SUD/ETH/OPIOIDUD data needs a
//!   Consent that names the category for any purpose, and released data
//!   carries `NORDSCLCD` (§2.32 notice against redisclosure). Not modelled:
//!   whether a record comes from a Part 2 program (every SUD-classified
//!   record is treated as one), the 2024 single TPO consent's redisclosure
//!   rules, QSOAs, audit/research/court-order exceptions; the §2.51 medical
//!   emergency is break-the-glass.
//! - **Texas HB 300** (`TX`, Health & Safety Code ch. 181): electronic
//!   disclosure outside treatment, payment and operations needs the
//!   patient's authorization (§181.154). Not modelled: the notice duty, the
//!   ban on sale of PHI, training, access deadlines.
//! - **California CMIA** (`CA`, Civil Code §56.10): disclosure outside
//!   treatment, payment and operations needs authorization; HIV test results
//!   (Health & Safety Code §120980) need an authorization naming them for any
//!   purpose but treatment. Not modelled: LPS Act facility rules, minors,
//!   the many statutory exceptions of §56.10(c).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::classify::Sensitivity;
use super::codes::ValueSets;

/// IHE PCF implicit policy when no Consent provision matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasePolicy {
    /// Nothing is shared without a permitting Consent.
    OptIn,
    /// Everything is shared unless a Consent denies it.
    OptOut,
}

/// One "needs explicit consent" rule (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable id for explanations, e.g. `part2.sud`.
    pub id: String,
    /// Categories covered; empty = all data.
    pub categories: Vec<Sensitivity>,
    /// Purposes of use that need no consent (v3-ActReason codes).
    pub exempt_purposes: Vec<String>,
    /// Whether the permitting provision must name the category.
    pub consent_must_name: bool,
    /// Obligation codes added to released data in these categories.
    pub obligations: Vec<String>,
}

/// A named list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// Pack id, e.g. `us-tx-hb300`.
    pub id: String,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// The deployment's consent policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Applied when no Consent matches.
    pub base: BasePolicy,
    /// Packs applied to every patient.
    pub federal: Vec<Pack>,
    /// Packs keyed by `Patient.address.state` (upper-case postal code).
    pub states: BTreeMap<String, Vec<Pack>>,
    /// Roles whose purpose of use defaults to TREAT.
    pub clinician_roles: Vec<String>,
    /// Roles that may break the glass (purpose ETREAT or BTG).
    pub break_glass_roles: Vec<String>,
    /// Sensitivity tags each role may see on released resources.
    pub clearances: BTreeMap<String, BTreeSet<Sensitivity>>,
    /// Code → category value sets for classification.
    pub value_sets: ValueSets,
}

const TPO: [&str; 4] = ["TREAT", "ETREAT", "HPAYMT", "HOPERAT"];

fn rule(id: &str, cats: &[Sensitivity], exempt: &[&str], name: bool, obligations: &[&str]) -> Rule {
    Rule {
        id: id.into(),
        categories: cats.to_vec(),
        exempt_purposes: exempt.iter().map(|s| (*s).to_owned()).collect(),
        consent_must_name: name,
        obligations: obligations.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// 42 CFR Part 2 starter pack.
pub fn part2() -> Pack {
    use Sensitivity::*;
    Pack {
        id: "us-42cfr2".into(),
        rules: vec![rule(
            "part2.sud",
            &[Sud, Eth, Opioidud],
            &[],
            true,
            &["NORDSCLCD"],
        )],
    }
}

/// Texas HB 300 starter pack.
pub fn texas_hb300() -> Pack {
    Pack {
        id: "us-tx-hb300".into(),
        rules: vec![rule("tx181.154", &[], &TPO, false, &[])],
    }
}

/// California CMIA starter pack.
pub fn california_cmia() -> Pack {
    Pack {
        id: "us-ca-cmia".into(),
        rules: vec![
            rule("cmia56.10", &[], &TPO, false, &[]),
            rule(
                "hsc120980.hiv",
                &[Sensitivity::Hiv],
                &["TREAT", "ETREAT"],
                true,
                &[],
            ),
        ],
    }
}

impl Policy {
    /// The starter policy: the given base, Part 2 for everyone, TX and CA
    /// packs, clinicians default to TREAT, clinicians may break the glass,
    /// nobody is cleared for sensitivity tags, the starter value sets.
    pub fn starter(base: BasePolicy) -> Self {
        let mut states = BTreeMap::new();
        states.insert("TX".to_owned(), vec![texas_hb300()]);
        states.insert("CA".to_owned(), vec![california_cmia()]);
        Self {
            base,
            federal: vec![part2()],
            states,
            clinician_roles: vec!["clinician".into()],
            break_glass_roles: vec!["clinician".into()],
            clearances: BTreeMap::new(),
            value_sets: ValueSets::starter(),
        }
    }

    /// Packs that apply to a patient living in `state`.
    pub fn packs_for<'a>(&'a self, state: Option<&str>) -> impl Iterator<Item = &'a Pack> + 'a {
        let key = state.map(str::to_ascii_uppercase);
        let local = key.and_then(|k| self.states.get(&k)).into_iter().flatten();
        self.federal.iter().chain(local)
    }

    /// Sensitivity tags a role may see.
    pub fn clearance(&self, role: Option<&str>) -> BTreeSet<Sensitivity> {
        role.and_then(|r| self.clearances.get(r))
            .cloned()
            .unwrap_or_default()
    }
}

/// The key for [`Policy::packs_for`]: `Patient.address.state` of the
/// patient's `home` address, else of the first address with a state.
pub fn patient_state(patient: &Value) -> Option<String> {
    let addresses = patient.get("address").and_then(Value::as_array)?;
    let state = |a: &Value| {
        a.get("state")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
    };
    addresses
        .iter()
        .filter(|a| a.get("use").and_then(Value::as_str) == Some("home"))
        .find_map(state)
        .or_else(|| addresses.iter().find_map(state))
}
