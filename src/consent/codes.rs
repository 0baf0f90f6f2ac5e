//! The code → sensitivity value sets used when a resource carries no
//! sensitivity label. Data, not logic: deployments replace or extend
//! [`ValueSets::starter`]. Ranges compare the ICD-10 three-character
//! category (`F11.20` → `F11`), so `F10`..=`F19` covers every F1x code.
//!
//! Starter table (ICD-10 and ICD-10-CM):
//! - F10–F19 mental and behavioural disorders due to psychoactive substance
//!   use → SUD; F11 (opioid related) also → OPIOIDUD.
//! - B20–B24 HIV disease, Z21 asymptomatic HIV infection status → HIV.
//! - F20–F48 (schizophrenia, mood, anxiety disorders) → MH + PSY.
//! - F50–F99 (eating, personality, developmental, behavioural) → MH.
//! - A50–A64 infections with a predominantly sexual mode of transmission → STD.
//! - Z15 genetic susceptibility to disease → GDIS.
//!
//! SNOMED CT, LOINC and RxNorm exact codes, the concepts the demo
//! population carries (see `seed/sensitive.rs`): 86406008 HIV infection,
//! LOINC 20447-9 HIV-1 RNA viral load and RxNorm 1999667 (Biktarvy) → HIV;
//! 75544000 opioid dependence and RxNorm 1010600 (buprenorphine/naloxone)
//! → SUD + OPIOIDUD; 66590003 alcohol dependence, 37344009 cannabis abuse,
//! RxNorm 1483744 (naltrexone) → SUD; 832007 and 35489007 depression →
//! MH + PSY; 21897009 generalized anxiety disorder → MH + BH;
//! 412734009 BRCA1 mutation and LOINC 69548-6 genetic variant assessment → GDIS.

use super::classify::Sensitivity;

/// ICD-10 (WHO) system URI.
pub const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
/// ICD-10-CM system URI.
pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
/// SNOMED CT system URI.
pub const SNOMED: &str = "http://snomed.info/sct";
/// LOINC system URI.
pub const LOINC: &str = "http://loinc.org";
/// RxNorm system URI.
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

/// One rule: codes of `systems` in `from..=to` imply `categories`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRule {
    /// Code systems the rule applies to.
    pub systems: Vec<String>,
    /// First code (ICD-10: three-character category).
    pub from: String,
    /// Last code, inclusive.
    pub to: String,
    /// Whether codes compare by ICD-10 category (first three characters).
    pub icd_category: bool,
    /// Categories implied.
    pub categories: Vec<Sensitivity>,
}

/// A configurable set of [`CodeRule`]s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValueSets {
    /// The rules, all consulted.
    pub rules: Vec<CodeRule>,
}

impl ValueSets {
    /// Categories implied by one coding.
    pub fn categories(&self, system: Option<&str>, code: &str) -> Vec<Sensitivity> {
        let Some(system) = system else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for r in &self.rules {
            if !r.systems.iter().any(|s| s == system) {
                continue;
            }
            let key = if r.icd_category {
                code.get(..3).unwrap_or(code)
            } else {
                code
            };
            if r.from.as_str() <= key && key <= r.to.as_str() {
                out.extend(r.categories.iter().copied());
            }
        }
        out
    }

    /// The documented starter table.
    pub fn starter() -> Self {
        use Sensitivity::*;
        let icd = |from: &str, to: &str, c: &[Sensitivity]| CodeRule {
            systems: vec![ICD10.into(), ICD10CM.into()],
            from: from.into(),
            to: to.into(),
            icd_category: true,
            categories: c.to_vec(),
        };
        let exact = |system: &str, code: &str, c: &[Sensitivity]| CodeRule {
            systems: vec![system.into()],
            from: code.into(),
            to: code.into(),
            icd_category: false,
            categories: c.to_vec(),
        };
        Self {
            rules: vec![
                icd("F10", "F19", &[Sud]),
                icd("F11", "F11", &[Opioidud]),
                icd("B20", "B24", &[Hiv]),
                icd("Z21", "Z21", &[Hiv]),
                icd("F20", "F48", &[Mh, Psy]),
                icd("F50", "F99", &[Mh]),
                icd("A50", "A64", &[Std]),
                icd("Z15", "Z15", &[Gdis]),
                exact(SNOMED, "86406008", &[Hiv]),
                exact(LOINC, "20447-9", &[Hiv]),
                exact(RXNORM, "1999667", &[Hiv]),
                exact(SNOMED, "75544000", &[Sud, Opioidud]),
                exact(RXNORM, "1010600", &[Sud, Opioidud]),
                exact(SNOMED, "66590003", &[Sud]),
                exact(SNOMED, "37344009", &[Sud]),
                exact(RXNORM, "1483744", &[Sud]),
                exact(SNOMED, "832007", &[Mh, Psy]),
                exact(SNOMED, "35489007", &[Mh, Psy]),
                exact(SNOMED, "21897009", &[Mh, Bh]),
                exact(SNOMED, "412734009", &[Gdis]),
                exact(LOINC, "69548-6", &[Gdis]),
            ],
        }
    }
}
