//! Node kinds: the FHIR data type of a JSON node, inferred from its key, its
//! value and its parent object (no StructureDefinitions). Profile rules
//! select nodes by these kinds (`type = "HumanName"`).
//!
//! Objects: `Extension` (members of `extension`/`modifierExtension`),
//! `Narrative` (resource-level `text` with `div`), a `value[x]` typed by its
//! suffix (`valueHumanName`...), `Reference` (has a `reference` string),
//! `HumanName` (`name` with family/given/text/prefix/suffix), `Address`,
//! `ContactPoint` (`telecom`, or a `system` of phone/fax/...), `Identifier`,
//! `Attachment` (`photo`, `attachment`, `presentedForm`, or `contentType` /
//! `data`, or `url` with size/hash/title/creation), `Annotation` (`note`),
//! `Period`, `Age` (`onsetAge`...), `Quantity` (numeric `value` with a unit
//! or code); other objects have no kind and are walked.
//!
//! Strings: `id`; structural codes (`code`, `uri`: see [`CODE_KEYS`],
//! `system`, an extension's or canonical resource's `url`, Coding.display,
//! `value[x]` suffixes); `date`/`dateTime`/`instant` recognised by FHIR's
//! regexes on the value (a bare `YYYY` or `YYYY-MM` only under a date-like
//! key, an instant only under an instant key); `url` (`valueUrl`, other
//! `url`s); every other string is `string` (free text).

use serde_json::{Map, Value};

use super::dates::{self, DateShape};

/// The data type of a node, as profile rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    HumanName,
    Address,
    ContactPoint,
    Identifier,
    Attachment,
    Narrative,
    Annotation,
    Reference,
    Extension,
    Period,
    Age,
    Quantity,
    Id,
    Date,
    DateTime,
    Instant,
    Code,
    Uri,
    Url,
    String,
    Decimal,
    Integer,
    Boolean,
}

/// Every kind with its profile name.
pub(crate) const KINDS: &[(&str, Kind)] = &[
    ("HumanName", Kind::HumanName),
    ("Address", Kind::Address),
    ("ContactPoint", Kind::ContactPoint),
    ("Identifier", Kind::Identifier),
    ("Attachment", Kind::Attachment),
    ("Narrative", Kind::Narrative),
    ("Annotation", Kind::Annotation),
    ("Reference", Kind::Reference),
    ("Extension", Kind::Extension),
    ("Period", Kind::Period),
    ("Age", Kind::Age),
    ("Quantity", Kind::Quantity),
    ("id", Kind::Id),
    ("date", Kind::Date),
    ("dateTime", Kind::DateTime),
    ("instant", Kind::Instant),
    ("code", Kind::Code),
    ("uri", Kind::Uri),
    ("url", Kind::Url),
    ("string", Kind::String),
    ("decimal", Kind::Decimal),
    ("integer", Kind::Integer),
    ("boolean", Kind::Boolean),
];

impl Kind {
    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    pub(crate) fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    pub(crate) fn is_date(self) -> bool {
        matches!(self, Kind::Date | Kind::DateTime | Kind::Instant)
    }

    pub(crate) fn is_number(self) -> bool {
        matches!(self, Kind::Decimal | Kind::Integer)
    }

    /// A string-valued primitive.
    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            Kind::Id | Kind::Code | Kind::Uri | Kind::Url | Kind::String
        )
    }

    /// An object-valued (complex) kind.
    pub(crate) fn is_complex(self) -> bool {
        !(self.is_date() || self.is_number() || self.is_text() || self == Kind::Boolean)
    }
}

/// String leaves under these keys are structural codes (kept by profiles
/// that keep coded content).
pub(crate) const CODE_KEYS: &[&str] = &[
    "resourceType",
    "status",
    "code",
    "version",
    "use",
    "gender",
    "language",
    "contentType",
    "unit",
    "intent",
    "priority",
    "mode",
    "comparator",
    "kind",
    "severity",
    "criticality",
    "type",
    "linkId",
];

/// String leaves under these keys are URIs.
const URI_KEYS: &[&str] = &[
    "system",
    "profile",
    "questionnaire",
    "instantiatesCanonical",
    "instantiatesUri",
];

/// Keys whose values are never dates, whatever they look like.
const TEXT_KEYS: &[&str] = &[
    "text",
    "display",
    "div",
    "value",
    "comment",
    "description",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
    "name",
    "title",
    "alias",
];

/// Keys whose date-time values are FHIR `instant`s.
const INSTANT_KEYS: &[&str] = &[
    "lastUpdated",
    "issued",
    "recorded",
    "timestamp",
    "valueInstant",
];

/// What a node's kind depends on besides itself: facts about its parent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Parent {
    /// The parent is the resource itself.
    pub(crate) is_root: bool,
    /// The parent is an Extension.
    pub(crate) is_extension: bool,
    /// The parent has a `code` or `system` (a Coding or Quantity).
    pub(crate) has_code_or_system: bool,
    /// The node is an element of an `extension`/`modifierExtension` array.
    pub(crate) in_extension_array: bool,
}

impl Parent {
    /// Facts about `obj` as the parent of its members.
    pub(crate) fn of(obj: &Map<String, Value>, is_root: bool, is_extension: bool) -> Parent {
        Parent {
            is_root,
            is_extension,
            has_code_or_system: obj.contains_key("code") || obj.contains_key("system"),
            in_extension_array: false,
        }
    }
}

/// The kind of the node `value` found under `key` (for array elements, the
/// array's key). `None`: an untyped object (BackboneElement...), walked.
pub(crate) fn infer(key: &str, value: &Value, parent: Parent) -> Option<Kind> {
    match value {
        Value::Object(obj) => infer_object(key, obj, parent),
        Value::String(s) => Some(infer_string(key, s, parent)),
        Value::Number(n) => Some(if is_integer_text(&n.to_string()) {
            Kind::Integer
        } else {
            Kind::Decimal
        }),
        Value::Bool(_) => Some(Kind::Boolean),
        Value::Array(_) | Value::Null => None,
    }
}

fn is_integer_text(s: &str) -> bool {
    !s.contains(['.', 'e', 'E'])
}

/// The type named by a choice element's suffix (`valueString` → `String`).
fn choice_suffix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("value")?;
    rest.starts_with(|c: char| c.is_ascii_uppercase())
        .then_some(rest)
}

fn infer_object(key: &str, obj: &Map<String, Value>, parent: Parent) -> Option<Kind> {
    if parent.in_extension_array {
        return Some(Kind::Extension);
    }
    if parent.is_root && key == "text" && obj.contains_key("div") {
        return Some(Kind::Narrative);
    }
    if let Some(suffix) = choice_suffix(key) {
        if let Some(kind) = Kind::from_name(suffix).filter(|k| k.is_complex()) {
            return Some(kind);
        }
    }
    if obj.get("reference").is_some_and(Value::is_string) {
        return Some(Kind::Reference);
    }
    let has = |k: &str| obj.contains_key(k);
    if key == "name"
        && ["family", "given", "text", "prefix", "suffix"]
            .iter()
            .any(|k| has(k))
    {
        return Some(Kind::HumanName);
    }
    if key == "address" || key.ends_with("Address") {
        return Some(Kind::Address);
    }
    let telecom_system = obj
        .get("system")
        .and_then(Value::as_str)
        .is_some_and(|s| ["phone", "fax", "email", "pager", "url", "sms", "other"].contains(&s));
    if key == "telecom" || (telecom_system && has("value")) {
        return Some(Kind::ContactPoint);
    }
    if key == "identifier" || key == "masterIdentifier" || key.ends_with("Identifier") {
        return Some(Kind::Identifier);
    }
    let attachment_meta = ["size", "hash", "title", "creation"].iter().any(|k| has(k));
    if ["photo", "attachment", "presentedForm"].contains(&key)
        || has("contentType")
        || (has("data") && !has("origin"))
        || (has("url") && attachment_meta)
    {
        return Some(Kind::Attachment);
    }
    if key == "note" {
        return Some(Kind::Annotation);
    }
    if (key == "period" || key.ends_with("Period")) && (has("start") || has("end")) {
        return Some(Kind::Period);
    }
    let numeric_value = obj.get("value").is_some_and(Value::is_number);
    if key.ends_with("Age") && numeric_value {
        return Some(Kind::Age);
    }
    if numeric_value && (key.ends_with("Quantity") || has("unit") || has("code")) {
        return Some(Kind::Quantity);
    }
    None
}

fn infer_string(key: &str, s: &str, parent: Parent) -> Kind {
    if key == "id" {
        return Kind::Id;
    }
    if let Some(suffix) = choice_suffix(key) {
        if let Some(kind) = primitive_suffix(suffix, s) {
            return kind;
        }
    }
    if key == "url" {
        return if parent.is_extension || parent.is_root {
            Kind::Uri
        } else {
            Kind::Url
        };
    }
    if URI_KEYS.contains(&key) {
        return Kind::Uri;
    }
    if CODE_KEYS.contains(&key) || (key == "display" && parent.has_code_or_system) {
        return Kind::Code;
    }
    if !TEXT_KEYS.contains(&key) {
        if let Some(shape) = dates::shape(s) {
            let partial = matches!(shape, DateShape::Year | DateShape::YearMonth);
            if !partial || date_key(key) {
                return date_kind(shape, INSTANT_KEYS.contains(&key));
            }
        }
    }
    Kind::String
}

/// The kind of a primitive `value[x]` by its suffix.
fn primitive_suffix(suffix: &str, s: &str) -> Option<Kind> {
    Some(match suffix {
        "Code" => Kind::Code,
        "Uri" | "Canonical" => Kind::Uri,
        "Url" => Kind::Url,
        "Id" | "Oid" | "Uuid" => Kind::Id,
        "Date" | "DateTime" | "Instant" => match dates::shape(s) {
            Some(shape) => date_kind(shape, suffix == "Instant"),
            None => Kind::String,
        },
        _ => Kind::String,
    })
}

fn date_kind(shape: DateShape, instant_key: bool) -> Kind {
    match shape {
        DateShape::Year | DateShape::YearMonth | DateShape::Date => Kind::Date,
        DateShape::DateTime => Kind::DateTime,
        DateShape::Instant if instant_key => Kind::Instant,
        DateShape::Instant => Kind::DateTime,
    }
}

/// Keys under which a bare year or year-month is a date.
fn date_key(key: &str) -> bool {
    [
        "date",
        "start",
        "end",
        "created",
        "authoredOn",
        "issued",
        "recorded",
    ]
    .contains(&key)
        || key.ends_with("Date")
        || key.ends_with("DateTime")
        || key.ends_with("Instant")
}
