//! Clinical code tables for the seed generator: conditions (SNOMED CT with
//! ICD-10-CM), medications (RxNorm), allergens, vaccines (CVX), procedures
//! (SNOMED CT / CPT), encounter types and lab analytes (LOINC, UCUM).
//!
//! Sensitive codes (HIV, mental health, substance use, genetic) live in
//! `sensitive.rs`; everything here is ordinary clinical content.

/// A diagnosis coded in SNOMED CT and ICD-10-CM.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dx {
    pub(crate) snomed: &'static str,
    pub(crate) snomed_display: &'static str,
    pub(crate) icd: &'static str,
    pub(crate) icd_display: &'static str,
    pub(crate) text: &'static str,
}

#[rustfmt::skip]
const fn dx(
    snomed: &'static str,
    snomed_display: &'static str,
    icd: &'static str,
    icd_display: &'static str,
    text: &'static str,
) -> Dx {
    Dx { snomed, snomed_display, icd, icd_display, text }
}

/// A long-standing problem: minimum age, prevalence and its usual drug.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chronic {
    pub(crate) dx: Dx,
    pub(crate) min_age: i64,
    pub(crate) per_mille: u64,
    /// Index into [`MEDS`].
    pub(crate) med: Option<usize>,
}

pub(crate) const HYPERTENSION: usize = 0;
pub(crate) const DIABETES: usize = 1;

/// Problem-list conditions.
#[rustfmt::skip]
pub(crate) const CHRONIC: [Chronic; 10] = [
    Chronic { dx: dx("59621000", "Essential hypertension (disorder)", "I10", "Essential (primary) hypertension", "Hypertension"), min_age: 30, per_mille: 320, med: Some(0) },
    Chronic { dx: dx("44054006", "Diabetes mellitus type 2 (disorder)", "E11.9", "Type 2 diabetes mellitus without complications", "Type 2 diabetes"), min_age: 30, per_mille: 130, med: Some(3) },
    Chronic { dx: dx("55822004", "Hyperlipidemia (disorder)", "E78.5", "Hyperlipidemia, unspecified", "Hyperlipidemia"), min_age: 30, per_mille: 250, med: Some(4) },
    Chronic { dx: dx("195967001", "Asthma (disorder)", "J45.909", "Unspecified asthma, uncomplicated", "Asthma"), min_age: 2, per_mille: 90, med: Some(5) },
    Chronic { dx: dx("414916001", "Obesity (disorder)", "E66.9", "Obesity, unspecified", "Obesity"), min_age: 12, per_mille: 200, med: None },
    Chronic { dx: dx("40930008", "Hypothyroidism (disorder)", "E03.9", "Hypothyroidism, unspecified", "Hypothyroidism"), min_age: 25, per_mille: 60, med: Some(7) },
    Chronic { dx: dx("239873007", "Osteoarthritis of knee (disorder)", "M17.9", "Osteoarthritis of knee, unspecified", "Osteoarthritis of knee"), min_age: 50, per_mille: 150, med: Some(10) },
    Chronic { dx: dx("235595009", "Gastroesophageal reflux disease (disorder)", "K21.9", "Gastro-esophageal reflux disease without esophagitis", "GERD"), min_age: 18, per_mille: 120, med: None },
    Chronic { dx: dx("278860009", "Chronic low back pain (finding)", "M54.50", "Low back pain, unspecified", "Chronic low back pain"), min_age: 20, per_mille: 100, med: Some(9) },
    Chronic { dx: dx("714628002", "Prediabetes (finding)", "R73.03", "Prediabetes", "Prediabetes"), min_age: 25, per_mille: 90, med: None },
];

/// An acute problem diagnosed at a visit, with an optional drug.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acute {
    pub(crate) dx: Dx,
    pub(crate) med: Option<usize>,
    /// Whether it brings the patient to the emergency department.
    pub(crate) emergency: bool,
}

/// Encounter diagnoses.
#[rustfmt::skip]
pub(crate) const ACUTE: [Acute; 8] = [
    Acute { dx: dx("195662009", "Acute viral pharyngitis (disorder)", "J02.9", "Acute pharyngitis, unspecified", "Acute viral pharyngitis"), med: Some(11), emergency: false },
    Acute { dx: dx("10509002", "Acute bronchitis (disorder)", "J20.9", "Acute bronchitis, unspecified", "Acute bronchitis"), med: Some(11), emergency: false },
    Acute { dx: dx("444814009", "Viral sinusitis (disorder)", "J01.90", "Acute sinusitis, unspecified", "Viral sinusitis"), med: None, emergency: false },
    Acute { dx: dx("68566005", "Urinary tract infectious disease (disorder)", "N39.0", "Urinary tract infection, site not specified", "Urinary tract infection"), med: Some(11), emergency: false },
    Acute { dx: dx("65363002", "Otitis media (disorder)", "H66.90", "Otitis media, unspecified, unspecified ear", "Otitis media"), med: Some(11), emergency: false },
    Acute { dx: dx("44465007", "Sprain of ankle (disorder)", "S93.409A", "Sprain of unspecified ligament of unspecified ankle, initial encounter", "Ankle sprain"), med: Some(8), emergency: true },
    Acute { dx: dx("29857009", "Chest pain (finding)", "R07.9", "Chest pain, unspecified", "Chest pain"), med: None, emergency: true },
    Acute { dx: dx("385093006", "Community acquired pneumonia (disorder)", "J18.9", "Pneumonia, unspecified organism", "Community acquired pneumonia"), med: Some(11), emergency: true },
];

/// Route of administration (SNOMED CT).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Route {
    Oral,
    Inhaled,
    Sublingual,
}

impl Route {
    pub(crate) fn code(self) -> (&'static str, &'static str) {
        match self {
            Route::Oral => ("26643006", "Oral route"),
            Route::Inhaled => ("447694001", "Respiratory tract route"),
            Route::Sublingual => ("37839007", "Sublingual route"),
        }
    }
}

/// A drug product (RxNorm SCD) and its usual sig.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Med {
    pub(crate) rxnorm: &'static str,
    pub(crate) display: &'static str,
    pub(crate) sig: &'static str,
    pub(crate) per_day: u32,
    pub(crate) dose_unit: &'static str,
    pub(crate) route: Route,
    /// Short course (days) or long-term (`None`).
    pub(crate) days: Option<i64>,
}

#[rustfmt::skip]
const fn med(rxnorm: &'static str, display: &'static str, sig: &'static str, per_day: u32, dose_unit: &'static str, route: Route, days: Option<i64>) -> Med {
    Med { rxnorm, display, sig, per_day, dose_unit, route, days }
}

/// The formulary (also seeded as shared Medication resources).
#[rustfmt::skip]
pub(crate) const MEDS: [Med; 12] = [
    med("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth once daily", 1, "tablet", Route::Oral, None),
    med("197361", "amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth once daily", 1, "tablet", Route::Oral, None),
    med("310798", "hydrochlorothiazide 25 MG Oral Tablet", "Take 1 tablet by mouth every morning", 1, "tablet", Route::Oral, None),
    med("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet", "Take 1 tablet by mouth twice daily with meals", 2, "tablet", Route::Oral, None),
    med("312961", "simvastatin 20 MG Oral Tablet", "Take 1 tablet by mouth at bedtime", 1, "tablet", Route::Oral, None),
    med("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "Inhale 2 puffs every 4 to 6 hours as needed for wheezing", 4, "puff", Route::Inhaled, None),
    med("895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "Inhale 2 puffs twice daily", 2, "puff", Route::Inhaled, None),
    med("966222", "levothyroxine sodium 0.075 MG Oral Tablet", "Take 1 tablet by mouth every morning before breakfast", 1, "tablet", Route::Oral, None),
    med("313782", "acetaminophen 325 MG Oral Tablet", "Take 2 tablets by mouth every 6 hours as needed for pain", 4, "tablet", Route::Oral, Some(14)),
    med("849574", "naproxen sodium 220 MG Oral Tablet", "Take 1 tablet by mouth twice daily with food as needed for pain", 2, "tablet", Route::Oral, None),
    med("310965", "ibuprofen 200 MG Oral Tablet", "Take 2 tablets by mouth three times daily with food as needed", 3, "tablet", Route::Oral, None),
    med("308182", "amoxicillin 250 MG Oral Capsule", "Take 2 capsules by mouth three times daily for 10 days", 3, "capsule", Route::Oral, Some(10)),
];

/// An allergen with its AllergyIntolerance category and likely reactions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allergen {
    pub(crate) system: &'static str,
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
    pub(crate) category: &'static str,
}

#[rustfmt::skip]
pub(crate) const ALLERGENS: [Allergen; 8] = [
    Allergen { system: super::fhir::sys::RXNORM, code: "70618", display: "penicillin", category: "medication" },
    Allergen { system: super::fhir::sys::RXNORM, code: "1191", display: "aspirin", category: "medication" },
    Allergen { system: super::fhir::sys::RXNORM, code: "10180", display: "sulfamethoxazole", category: "medication" },
    Allergen { system: super::fhir::sys::SNOMED, code: "256349002", display: "Peanut - dietary (substance)", category: "food" },
    Allergen { system: super::fhir::sys::SNOMED, code: "44027008", display: "Seafood (substance)", category: "food" },
    Allergen { system: super::fhir::sys::SNOMED, code: "111088007", display: "Latex (substance)", category: "environment" },
    Allergen { system: super::fhir::sys::SNOMED, code: "256259004", display: "Pollen (substance)", category: "environment" },
    Allergen { system: super::fhir::sys::SNOMED, code: "264287008", display: "Animal dander (substance)", category: "environment" },
];

/// Reaction manifestations (SNOMED CT).
#[rustfmt::skip]
pub(crate) const REACTIONS: [(&str, &str); 7] = [
    ("247472004", "Wheal (finding)"),
    ("271807003", "Eruption of skin (disorder)"),
    ("418290006", "Itching (finding)"),
    ("267036007", "Dyspnea (finding)"),
    ("422587007", "Nausea (finding)"),
    ("39579001", "Anaphylaxis (disorder)"),
    ("49727002", "Cough (finding)"),
];

/// Vaccines (CVX) with the minimum age in years.
#[rustfmt::skip]
pub(crate) const VACCINES: [(&str, &str, i64); 10] = [
    ("140", "Influenza, seasonal, injectable, preservative free", 0),
    ("208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose", 12),
    ("115", "Tdap", 11),
    ("113", "Td (adult), 5 Lf tetanus toxoid, preservative free, adsorbed", 19),
    ("133", "Pneumococcal conjugate PCV 13", 65),
    ("33", "pneumococcal polysaccharide PPV23", 65),
    ("187", "zoster vaccine recombinant", 50),
    ("43", "Hep B, adult", 19),
    ("62", "HPV, quadrivalent", 9),
    ("03", "MMR", 1),
];

/// A procedure: SNOMED CT code, optional CPT code, and whether it is
/// done in the emergency department/hospital.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Proc {
    pub(crate) snomed: &'static str,
    pub(crate) display: &'static str,
    pub(crate) cpt: Option<(&'static str, &'static str)>,
    pub(crate) acute_care: bool,
    pub(crate) min_age: i64,
}

#[rustfmt::skip]
pub(crate) const PROCEDURES: [Proc; 8] = [
    Proc { snomed: "430193006", display: "Medication reconciliation (procedure)", cpt: None, acute_care: false, min_age: 0 },
    Proc { snomed: "171207006", display: "Depression screening (procedure)", cpt: None, acute_care: false, min_age: 12 },
    Proc { snomed: "73761001", display: "Colonoscopy (procedure)", cpt: Some(("45378", "Colonoscopy, flexible; diagnostic")), acute_care: false, min_age: 45 },
    Proc { snomed: "71651007", display: "Mammography (procedure)", cpt: Some(("77067", "Screening mammography, bilateral")), acute_care: false, min_age: 40 },
    Proc { snomed: "396550006", display: "Blood test (procedure)", cpt: Some(("36415", "Collection of venous blood by venipuncture")), acute_care: false, min_age: 0 },
    Proc { snomed: "29303009", display: "Electrocardiographic procedure (procedure)", cpt: Some(("93000", "Electrocardiogram, routine ECG with at least 12 leads; with interpretation and report")), acute_care: true, min_age: 0 },
    Proc { snomed: "399208008", display: "Plain X-ray of chest (procedure)", cpt: Some(("71046", "Radiologic examination, chest; 2 views")), acute_care: true, min_age: 0 },
    Proc { snomed: "18949003", display: "Change of dressing (procedure)", cpt: None, acute_care: true, min_age: 0 },
];

/// A lab analyte (LOINC) with its UCUM unit, reference range and the
/// population's typical value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Analyte {
    pub(crate) loinc: &'static str,
    pub(crate) display: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) mean: f64,
    pub(crate) sd: f64,
    pub(crate) decimals: u32,
}

/// Table-row constructor (one argument per column).
#[allow(clippy::too_many_arguments)]
#[rustfmt::skip]
const fn an(loinc: &'static str, display: &'static str, unit: &'static str, low: f64, high: f64, mean: f64, sd: f64, decimals: u32) -> Analyte {
    Analyte { loinc, display, unit, low, high, mean, sd, decimals }
}

/// A lab panel: the DiagnosticReport code and its analytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Panel {
    pub(crate) loinc: &'static str,
    pub(crate) display: &'static str,
    pub(crate) analytes: &'static [Analyte],
}

#[rustfmt::skip]
pub(crate) const CBC: Panel = Panel {
    loinc: "58410-2",
    display: "CBC panel - Blood by Automated count",
    analytes: &[
        an("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 11.0, 7.2, 1.8, 1),
        an("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 4.2, 5.9, 4.9, 0.4, 2),
        an("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 14.2, 1.3, 1),
        an("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36.0, 50.0, 42.5, 3.5, 1),
        an("787-2", "MCV [Entitic volume] by Automated count", "fL", 80.0, 100.0, 89.0, 4.5, 1),
        an("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150.0, 400.0, 260.0, 55.0, 0),
    ],
};

#[rustfmt::skip]
pub(crate) const BMP: Panel = Panel {
    loinc: "51990-0",
    display: "Basic metabolic panel - Blood",
    analytes: &[
        an("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70.0, 99.0, 92.0, 12.0, 0),
        an("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7.0, 20.0, 14.0, 3.5, 0),
        an("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3, 0.95, 0.18, 2),
        an("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136.0, 145.0, 140.0, 2.2, 0),
        an("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 4.2, 0.35, 1),
        an("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98.0, 107.0, 102.0, 2.5, 0),
        an("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22.0, 29.0, 25.0, 2.0, 0),
        an("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.6, 10.3, 9.4, 0.4, 1),
    ],
};

#[rustfmt::skip]
pub(crate) const LIPIDS: Panel = Panel {
    loinc: "57698-3",
    display: "Lipid panel with direct LDL - Serum or Plasma",
    analytes: &[
        an("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 100.0, 199.0, 190.0, 30.0, 0),
        an("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 0.0, 149.0, 130.0, 45.0, 0),
        an("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40.0, 100.0, 52.0, 12.0, 0),
        an("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "mg/dL", 0.0, 99.0, 112.0, 28.0, 0),
    ],
};

#[rustfmt::skip]
pub(crate) const HBA1C: Panel = Panel {
    loinc: "4548-4",
    display: "Hemoglobin A1c/Hemoglobin.total in Blood",
    analytes: &[an("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 5.4, 0.35, 1)],
};

/// Encounter types (SNOMED CT).
pub(crate) const CHECKUP: (&str, &str) = ("185349003", "Encounter for check up (procedure)");
pub(crate) const FOLLOW_UP: (&str, &str) = ("390906007", "Follow-up encounter (procedure)");
pub(crate) const SYMPTOM_VISIT: (&str, &str) = ("185345009", "Encounter for symptom (procedure)");
pub(crate) const ED_VISIT: (&str, &str) =
    ("4525004", "Emergency department patient visit (procedure)");
pub(crate) const ADMISSION: (&str, &str) = ("32485007", "Hospital admission (procedure)");
