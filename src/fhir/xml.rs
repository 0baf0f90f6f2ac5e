//! FHIR R4 XML (`application/fhir+xml`, R4 xml.html) at the edge of the
//! `/fhir` handler, and nowhere else. [`from_xml`] turns an XML request
//! body into the same `serde_json::Value` a JSON body gives, right after
//! the body is read, so authorization, consent, routing and audit never
//! see XML. [`to_xml`] turns an answer (resource, Bundle, OperationOutcome)
//! into XML as the very last step before bytes leave, after consent
//! filtering and `_summary`/`_elements` were applied to the JSON.
//!
//! The conversion is fhirbolt's generic element model
//! (`Element<{FhirReleases::R4}>`, no typed model compiled) in **strict**
//! mode: an element R4 does not define is refused, in either direction,
//! never dropped (STYLE: Lax/Compatibility output is never sent back).
//! fhirbolt brings `serde_json/arbitrary_precision` into the build, so a
//! decimal keeps its digits (`1.50` stays `1.50`) in JSON and XML alike.
//!
//! Limits: the byte size is the caller's (the handler reads at most
//! `limits.max_body_bytes`, as for JSON); here the document must be UTF-8
//! (a declared encoding other than UTF-8 is refused), at most [`MAX_DEPTH`]
//! elements deep (checked before fhirbolt's recursive parser runs), with
//! no DOCTYPE, entity declarations, CDATA or processing instructions. A
//! panic inside fhirbolt is caught here and reported as an error.
//!
//! What fhirbolt does not do, [`markup`] adds: narrative whitespace kept
//! (its reader and writer trim text nodes), a narrative must be one XHTML
//! `div` (the namespace is added when JSON forgot it), line breaks inside
//! attribute values escaped. Known differences from the JSON: attributes on
//! the narrative's root `div` other than `xmlns` are dropped by fhirbolt's
//! reader; a whitespace-only narrative text holding a line break is taken as
//! indentation.

mod markup;

use fhirbolt::{
    element::Element,
    serde::{DeserializationConfig, DeserializationMode, SerializationConfig},
    FhirReleases,
};
use serde_json::Value;

/// The deepest element nesting accepted in an XML body: one XML level can
/// become two JSON levels (an object in an array), and serde_json, which
/// reads the stored JSON back, allows 128. Real resources stay far below
/// (a Claim's `item.detail.subDetail.extension.valueCoding` is about 12).
pub const MAX_DEPTH: usize = 64;

type R4Element = Element<{ FhirReleases::R4 }>;

/// Why a conversion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The XML is not well-formed, or not an R4 resource fhirbolt accepts
    /// (unknown element, wrong namespace, a value of the wrong type).
    #[error("invalid FHIR XML: {0}")]
    Invalid(String),
    /// The XML nests deeper than the limit.
    #[error("the XML nests deeper than {0} elements")]
    TooDeep(usize),
    /// The JSON cannot be expressed as FHIR R4 XML (not a resource, an
    /// element R4 does not define, a narrative that is not one `div`).
    #[error("cannot be expressed as FHIR XML: {0}")]
    Unrepresentable(String),
    /// fhirbolt panicked; nothing was produced.
    #[error("the XML converter failed")]
    Internal,
}

fn strict() -> Option<DeserializationConfig> {
    Some(DeserializationConfig {
        mode: DeserializationMode::Strict,
    })
}

/// Runs `f`, turning a panic inside fhirbolt into [`XmlError::Internal`].
fn guarded<T>(f: impl FnOnce() -> Result<T, XmlError>) -> Result<T, XmlError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(Err(XmlError::Internal))
}

/// FHIR JSON (a resource with `resourceType`) as a FHIR XML document.
pub fn to_xml(resource: &Value) -> Result<String, XmlError> {
    if resource
        .get("resourceType")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(XmlError::Unrepresentable(
            "not a resource (no resourceType)".into(),
        ));
    }
    let mut prepared = resource.clone();
    map_divs(&mut prepared, &mut markup::div_for_xml)?;
    let xml = guarded(|| {
        let element: R4Element = fhirbolt::json::from_json_value(prepared, strict())
            .map_err(|e| XmlError::Unrepresentable(e.to_string()))?;
        fhirbolt::xml::to_string(&element, None)
            .map_err(|e| XmlError::Unrepresentable(e.to_string()))
    })?;
    Ok(markup::escape_attribute_whitespace(xml))
}

/// A FHIR XML document as FHIR JSON.
pub fn from_xml(bytes: &[u8]) -> Result<Value, XmlError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| XmlError::Invalid(format!("the body is not UTF-8: {e}")))?;
    let text = without_declaration(text.strip_prefix('\u{feff}').unwrap_or(text))?;
    let prepared = markup::prepare_input(text, MAX_DEPTH)?;
    let mut value = guarded(|| {
        let element: R4Element = fhirbolt::xml::from_str(&prepared, strict())
            .map_err(|e| XmlError::Invalid(e.to_string()))?;
        let keep_order = Some(SerializationConfig { always_sort: false });
        fhirbolt::json::to_json_value(element, keep_order)
            .map_err(|e| XmlError::Invalid(e.to_string()))
    })?;
    map_divs(&mut value, &mut |div| Ok(markup::div_from_xml(div)))?;
    Ok(value)
}

/// The text after its XML declaration, which must not name an encoding
/// other than UTF-8 (fhirbolt accepts only the exact spelling `UTF-8`; the
/// bytes were checked to be UTF-8 already, so the declaration can go).
fn without_declaration(text: &str) -> Result<&str, XmlError> {
    let Some(decl) = text.strip_prefix("<?xml") else {
        return Ok(text);
    };
    let end = decl
        .find("?>")
        .ok_or_else(|| XmlError::Invalid("unterminated XML declaration".into()))?;
    let attrs = &decl[..end];
    if let Some(at) = attrs.find("encoding") {
        let value = attrs[at + "encoding".len()..]
            .trim_start()
            .trim_start_matches('=')
            .trim_start();
        let value = value.trim_start_matches(['"', '\'']);
        let name = value.split(['"', '\'']).next().unwrap_or("");
        if !name.eq_ignore_ascii_case("utf-8") {
            return Err(XmlError::Invalid(format!(
                "only UTF-8 is accepted, not encoding '{name}'"
            )));
        }
    }
    Ok(&decl[end + 2..])
}

/// Applies `f` to every narrative `div` (the only R4 element named `div`).
fn map_divs(
    value: &mut Value,
    f: &mut dyn FnMut(&str) -> Result<String, XmlError>,
) -> Result<(), XmlError> {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(div) if key == "div" => *div = f(div)?,
                    _ => map_divs(v, f)?,
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                map_divs(v, f)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
