//! The codes the portal offers and reads, with their plain names: the
//! sensitive categories (v3-ActCode, `provision.securityLabel`), the
//! purposes of use (v3-ActReason, `provision.purpose`), the confidentiality
//! codes a Consent written elsewhere may name, and friendly names of the
//! resource types the access history mentions.

/// v3-ActCode (sensitivity categories, policy rules OPTIN/OPTOUT).
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// v3-ActReason (purposes of use).
pub const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// v3-Confidentiality.
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// Consent scopes.
pub const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
/// v3-ParticipationType (`provision.actor.role`).
pub const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
/// LOINC.
pub const LOINC: &str = "http://loinc.org";

/// One code with its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// The code.
    pub code: &'static str,
    /// The form label.
    pub label: &'static str,
    /// How a sentence says it (`mental-health` in "your mental-health records",
    /// `for treatment` for purposes).
    pub words: &'static str,
    /// The code system's display.
    pub display: &'static str,
}

const fn term(
    code: &'static str,
    label: &'static str,
    words: &'static str,
    display: &'static str,
) -> Term {
    Term {
        code,
        label,
        words,
        display,
    }
}

/// The sensitive categories a patient can pick (the classifier's categories).
pub const CATEGORIES: [Term; 11] = [
    term(
        "HIV",
        "HIV and AIDS",
        "HIV",
        "HIV/AIDS information sensitivity",
    ),
    term(
        "MH",
        "Mental health",
        "mental-health",
        "mental health information sensitivity",
    ),
    term(
        "PSY",
        "Psychiatry",
        "psychiatric",
        "psychiatry information sensitivity",
    ),
    term(
        "BH",
        "Behavioral health",
        "behavioral-health",
        "behavioral health information sensitivity",
    ),
    term(
        "SUD",
        "Substance use (drugs and alcohol)",
        "substance-use",
        "substance use disorder information sensitivity",
    ),
    term(
        "ETH",
        "Alcohol and drug abuse",
        "alcohol and drug abuse",
        "substance abuse information sensitivity",
    ),
    term(
        "OPIOIDUD",
        "Opioid use",
        "opioid-use",
        "opioid use disorder information sensitivity",
    ),
    term(
        "STD",
        "Sexually transmitted infections",
        "sexually transmitted infection",
        "sexually transmitted disease information sensitivity",
    ),
    term(
        "SEX",
        "Sexuality and reproductive health",
        "sexual and reproductive health",
        "sexuality and reproductive health information sensitivity",
    ),
    term(
        "SDV",
        "Sexual assault, abuse or domestic violence",
        "sexual assault, abuse and domestic violence",
        "sexual assault, abuse, or domestic violence information sensitivity",
    ),
    term(
        "GDIS",
        "Genetic conditions",
        "genetic",
        "genetic disease information sensitivity",
    ),
];

/// The purposes of use a patient can pick.
pub const PURPOSES: [Term; 4] = [
    term(
        "TREAT",
        "Treatment: your care",
        "for treatment",
        "treatment",
    ),
    term(
        "HPAYMT",
        "Payment: billing and insurance",
        "for payment",
        "healthcare payment",
    ),
    term(
        "HOPERAT",
        "Operations: running the practice (quality checks, audits, training)",
        "for running the practice",
        "healthcare operations",
    ),
    term("HRESCH", "Research", "for research", "healthcare research"),
];

/// Purposes a Consent written elsewhere may name (read, never offered).
const OTHER_PURPOSES: [Term; 5] = [
    term(
        "ETREAT",
        "Emergency treatment",
        "for emergency treatment",
        "emergency treatment",
    ),
    term(
        "BTG",
        "Emergency access",
        "for emergency access",
        "break the glass",
    ),
    term(
        "PUBHLTH",
        "Public health",
        "for public health",
        "public health",
    ),
    term(
        "HMARKT",
        "Marketing",
        "for marketing",
        "healthcare marketing",
    ),
    term("HLEGAL", "Legal", "for legal reasons", "healthcare legal"),
];

/// Confidentiality codes (high-water mark labels) in sentence words.
const CONFIDENTIALITY_WORDS: [(&str, &str); 5] = [
    ("U", "unrestricted"),
    ("L", "low-sensitivity"),
    ("M", "moderately sensitive"),
    ("R", "restricted"),
    ("V", "very restricted"),
];

/// The category with this code.
pub fn category(code: &str) -> Option<&'static Term> {
    CATEGORIES.iter().find(|t| t.code == code)
}

/// The offered purpose with this code.
pub fn purpose(code: &str) -> Option<&'static Term> {
    PURPOSES.iter().find(|t| t.code == code)
}

/// Any known purpose (offered or not) with this code.
pub fn any_purpose(code: &str) -> Option<&'static Term> {
    purpose(code).or_else(|| OTHER_PURPOSES.iter().find(|t| t.code == code))
}

/// How a sentence names records labelled `code`: `mental-health`,
/// `restricted`, or the code itself.
pub fn label_words(code: &str) -> String {
    if let Some(t) = category(code) {
        return t.words.to_owned();
    }
    if let Some((_, w)) = CONFIDENTIALITY_WORDS.iter().find(|(c, _)| *c == code) {
        return (*w).to_owned();
    }
    format!("“{code}”-labelled")
}

/// `for treatment`, or `for purpose “X”`.
pub fn purpose_words(code: &str) -> String {
    match any_purpose(code) {
        Some(t) => t.words.to_owned(),
        None => format!("for purpose “{code}”"),
    }
}

/// A resource type in words (`test results and measurements`), plural.
pub fn type_words(resource_type: &str) -> String {
    let w = match resource_type {
        "Patient" => "your personal details",
        "Observation" => "test results and measurements",
        "Condition" => "conditions and diagnoses",
        "MedicationRequest" => "prescriptions",
        "MedicationStatement" => "medications",
        "MedicationDispense" => "dispensed medications",
        "MedicationAdministration" => "medications given",
        "Encounter" => "visits",
        "AllergyIntolerance" => "allergies",
        "Immunization" => "vaccinations",
        "Procedure" => "procedures",
        "DiagnosticReport" => "reports",
        "DocumentReference" => "documents",
        "Binary" => "attached files",
        "CarePlan" => "care plans",
        "CareTeam" => "care teams",
        "Goal" => "goals",
        "Coverage" => "insurance coverage",
        "Claim" => "claims",
        "ExplanationOfBenefit" => "claims and benefits",
        "Consent" => "privacy choices",
        "Provenance" => "record histories",
        "AuditEvent" => "access records",
        "Communication" => "messages",
        "ServiceRequest" => "orders and referrals",
        other => return other.to_owned(),
    };
    w.to_owned()
}

/// `a`, `a and b`, `a, b and c` (`joiner` = `and` / `or`).
pub fn list(items: &[String], joiner: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {joiner} {last}", init.join(", ")),
    }
}

/// The first letter in upper case.
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_classifier_category_has_a_plain_name() {
        for s in crate::consent::Sensitivity::ALL {
            assert!(category(s.code()).is_some(), "{}", s.code());
        }
        assert_eq!(label_words("MH"), "mental-health");
        assert_eq!(label_words("R"), "restricted");
        assert_eq!(purpose_words("TREAT"), "for treatment");
        assert_eq!(purpose_words("BTG"), "for emergency access");
        assert_eq!(purpose_words("XYZ"), "for purpose “XYZ”");
    }

    #[test]
    fn lists_read_as_sentences() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(list(&s(&[]), "and"), "");
        assert_eq!(list(&s(&["a"]), "and"), "a");
        assert_eq!(list(&s(&["a", "b"]), "or"), "a or b");
        assert_eq!(list(&s(&["a", "b", "c"]), "and"), "a, b and c");
        assert_eq!(capitalize("the app"), "The app");
    }
}
