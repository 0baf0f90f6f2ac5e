//! Small JSON builders for FHIR R4 datatypes used by the seed generator:
//! code systems, Coding/CodeableConcept, Reference, Quantity, `meta` with
//! profiles and security labels, base64 and NPI check digits.

use serde_json::{json, Map, Value};

/// Code system and identifier system URIs.
pub(crate) mod sys {
    pub(crate) const LOINC: &str = "http://loinc.org";
    pub(crate) const SNOMED: &str = "http://snomed.info/sct";
    pub(crate) const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    pub(crate) const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
    pub(crate) const CVX: &str = "http://hl7.org/fhir/sid/cvx";
    pub(crate) const CPT: &str = "http://www.ama-assn.org/go/cpt";
    pub(crate) const UCUM: &str = "http://unitsofmeasure.org";
    pub(crate) const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
    pub(crate) const NUCC: &str = "http://nucc.org/provider-taxonomy";
    pub(crate) const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    pub(crate) const CONFIDENTIALITY: &str =
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    pub(crate) const OBS_CATEGORY: &str =
        "http://terminology.hl7.org/CodeSystem/observation-category";
    pub(crate) const INTERPRETATION: &str =
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
    pub(crate) const MRN: &str = "http://hospital.example.org/mrn";
    pub(crate) const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
}

/// Profile canonical URLs (US Core 6.1, CARIN BB).
pub(crate) fn us_core(name: &str) -> String {
    format!("http://hl7.org/fhir/us/core/StructureDefinition/{name}")
}

/// A code from a code system, usable in tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Code {
    pub(crate) system: &'static str,
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
}

impl Code {
    /// A `Coding`.
    pub(crate) fn coding(&self) -> Value {
        coding(self.system, self.code, self.display)
    }
}

/// A `Coding`.
pub(crate) fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

/// A `CodeableConcept` with one coding and the display as text.
pub(crate) fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [coding(system, code, display)], "text": display})
}

/// A `CodeableConcept` from several codes, with `text`.
pub(crate) fn cc_of(codes: &[Code], text: &str) -> Value {
    let codings: Vec<Value> = codes.iter().map(Code::coding).collect();
    json!({"coding": codings, "text": text})
}

/// A relative `Reference` (`Type/id`).
pub(crate) fn reference(target: &str) -> Value {
    json!({ "reference": target })
}

/// A relative `Reference` with a display.
pub(crate) fn reference_display(target: &str, display: &str) -> Value {
    json!({"reference": target, "display": display})
}

/// A JSON number: whole values are written without a fraction (`140`,
/// not `140.0`).
pub(crate) fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// A UCUM `Quantity`.
pub(crate) fn quantity(value: f64, unit: &str, code: &str) -> Value {
    json!({"value": number(value), "unit": unit, "system": sys::UCUM, "code": code})
}

/// `value` rounded to `decimals` places (0..=3).
pub(crate) fn round(value: f64, decimals: u32) -> f64 {
    let scale = f64::from(10u32.pow(decimals.min(3)));
    (value * scale).round() / scale
}

/// A sensitivity category, written as a v3-ActCode security label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    Hiv,
    Psy,
    Mh,
    Bh,
    Eth,
    Sud,
    Gdis,
}

impl Label {
    fn code(self) -> (&'static str, &'static str) {
        match self {
            Label::Hiv => ("HIV", "HIV/AIDS information sensitivity"),
            Label::Psy => ("PSY", "psychiatry information sensitivity"),
            Label::Mh => ("MH", "mental health information sensitivity"),
            Label::Bh => ("BH", "behavioral health information sensitivity"),
            Label::Eth => ("ETH", "substance abuse information sensitivity"),
            Label::Sud => ("SUD", "substance use disorder information sensitivity"),
            Label::Gdis => ("GDIS", "genetic disease information sensitivity"),
        }
    }
}

/// `meta.security`: the labels, then confidentiality `R` (restricted).
pub(crate) fn security(labels: &[Label]) -> Value {
    let mut out: Vec<Value> = labels
        .iter()
        .map(|l| {
            let (code, display) = l.code();
            coding(sys::ACT_CODE, code, display)
        })
        .collect();
    out.push(coding(sys::CONFIDENTIALITY, "R", "restricted"));
    Value::Array(out)
}

/// A resource skeleton: `resourceType`, `id`, `meta.profile` and, when
/// `labels` is non-empty, `meta.security`.
pub(crate) fn resource(
    kind: &str,
    id: &str,
    profile: &str,
    labels: &[Label],
) -> Map<String, Value> {
    let mut meta = Map::new();
    if !profile.is_empty() {
        meta.insert("profile".into(), json!([profile]));
    }
    if !labels.is_empty() {
        meta.insert("security".into(), security(labels));
    }
    let mut r = Map::new();
    r.insert("resourceType".into(), json!(kind));
    r.insert("id".into(), json!(id));
    if !meta.is_empty() {
        r.insert("meta".into(), Value::Object(meta));
    }
    r
}

/// Sets `key` on a resource skeleton (builder style).
pub(crate) fn set(mut r: Map<String, Value>, key: &str, value: Value) -> Map<String, Value> {
    r.insert(key.to_owned(), value);
    r
}

/// Standard base64 (RFC 4648, with padding).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A valid 10-digit NPI from a 9-digit base: the Luhn check digit is
/// computed over the `80840` prefix plus the base, as the NPI standard says.
pub(crate) fn npi(base: u32) -> String {
    let digits = format!("80840{:09}", base % 1_000_000_000);
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    let check = (10 - sum % 10) % 10;
    format!("{:09}{check}", base % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn npi_check_digit() {
        // The CMS example NPI 1234567893.
        assert_eq!(npi(123_456_789), "1234567893");
    }
}
