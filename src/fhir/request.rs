//! `FhirRequest`: an HTTP request normalised into a FHIR RESTful interaction
//! (R4 http.html §3.1.0). Stages judge the interaction, never the HTTP method,
//! so `POST Type/_search` gets exactly the checks of `GET Type?…`.

use axum::http::Method;
use serde_json::Value;

use super::types::{is_resource_type, is_valid_id};
use crate::error::{FhirError, FhirResult};

/// The RESTful interaction (R4 http.html, "Interactions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// `GET [base]/metadata`.
    Capabilities,
    /// `GET [base]/[type]/[id]`.
    Read,
    /// `GET [base]/[type]/[id]/_history/[vid]`.
    Vread,
    /// `PUT [base]/[type]/[id]`.
    Update,
    /// `PUT [base]/[type]?[search]`.
    ConditionalUpdate,
    /// `DELETE [base]/[type]/[id]`.
    Delete,
    /// `DELETE [base]/[type]?[search]`.
    ConditionalDelete,
    /// `POST [base]/[type]` (conditional with `If-None-Exist`).
    Create,
    /// `GET [base]/[type]?…` or `POST [base]/[type]/_search`.
    SearchType,
    /// `GET [base]?…` or `POST [base]/_search`.
    SearchSystem,
    /// `GET [base]/[compartment]/[id]/[type]?…`.
    SearchCompartment,
    /// `GET [base]/[type]/[id]/_history`.
    HistoryInstance,
    /// `GET [base]/[type]/_history`.
    HistoryType,
    /// `GET [base]/_history`.
    HistorySystem,
    /// `POST [base]` with a Bundle of type `batch` or `transaction`.
    BatchOrTransaction,
    /// `[base]/($op | [type]/$op | [type]/[id]/$op)`.
    Operation,
}

impl Interaction {
    /// Whether the interaction can change data.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Self::Update
                | Self::ConditionalUpdate
                | Self::Delete
                | Self::ConditionalDelete
                | Self::Create
                | Self::BatchOrTransaction
        )
    }
    /// Whether the interaction answers with a searchset Bundle.
    pub fn is_search(self) -> bool {
        matches!(
            self,
            Self::SearchType | Self::SearchSystem | Self::SearchCompartment
        )
    }
}

/// `Prefer: return=…` (R4 http.html §3.1.0.8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferReturn {
    /// Empty body.
    Minimal,
    /// The resource.
    Representation,
    /// An OperationOutcome.
    OperationOutcome,
}

/// `Prefer: handling=…` (R4 search.html §3.1.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferHandling {
    /// Unknown or unsupported parameters are an error.
    Strict,
    /// Unknown or unsupported parameters are ignored (and reported).
    Lenient,
}

/// The parts of a `Prefer` header fhirgate honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefer {
    /// `return=`.
    pub return_: Option<PreferReturn>,
    /// `handling=`.
    pub handling: Option<PreferHandling>,
    /// `respond-async` (bulk data).
    pub respond_async: bool,
}

impl Prefer {
    /// Parses every `Prefer` header value; unknown tokens are ignored (RFC 7240 §2).
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut p = Prefer::default();
        for value in values {
            for token in value.split([',', ';']) {
                let token = token.trim();
                let (k, v) = match token.split_once('=') {
                    Some((k, v)) => (k.trim(), v.trim().trim_matches('"')),
                    None => (token, ""),
                };
                match (k.to_ascii_lowercase().as_str(), v) {
                    ("return", "minimal") => p.return_ = Some(PreferReturn::Minimal),
                    ("return", "representation") => p.return_ = Some(PreferReturn::Representation),
                    ("return", "OperationOutcome") => {
                        p.return_ = Some(PreferReturn::OperationOutcome)
                    }
                    ("handling", "strict") => p.handling = Some(PreferHandling::Strict),
                    ("handling", "lenient") => p.handling = Some(PreferHandling::Lenient),
                    ("respond-async", _) => p.respond_async = true,
                    _ => {}
                }
            }
        }
        p
    }
}

/// A FHIR request as every stage and upstream sees it.
#[derive(Debug, Clone)]
pub struct FhirRequest {
    /// What is being done.
    pub interaction: Interaction,
    /// Resource type in the path (for compartment searches: the searched type, if any).
    pub resource_type: Option<String>,
    /// Logical id in the path.
    pub id: Option<String>,
    /// Version id for vread.
    pub version: Option<String>,
    /// `(type, id)` of the compartment for compartment searches.
    pub compartment: Option<(String, String)>,
    /// Operation name without `$`.
    pub operation: Option<String>,
    /// Query (and, for `_search`, form body) parameters in order, percent-decoded.
    pub params: Vec<(String, String)>,
    /// Parsed JSON body.
    pub body: Option<Value>,
    /// `If-Match`, normalised to `W/"n"` (the version is checked by `request::parse_etag`).
    pub if_match: Option<String>,
    /// `If-None-Exist` query (conditional create).
    pub if_none_exist: Option<String>,
    /// `If-None-Match` raw value (conditional read).
    pub if_none_match: Option<String>,
    /// `If-Modified-Since` raw value (conditional read).
    pub if_modified_since: Option<String>,
    /// The `Prefer` header.
    pub prefer: Prefer,
    /// `X-Purpose-Of-Use` (a v3-ActReason code such as `BTG` or `ETREAT`):
    /// the purpose stated for this request, overriding the token's.
    pub purpose_of_use: Option<String>,
    /// `X-Break-Glass-Reason`: the mandatory reason for break-the-glass.
    pub break_glass_reason: Option<String>,
}

impl FhirRequest {
    /// A request with only the interaction set; fill the rest by field.
    pub fn new(interaction: Interaction) -> Self {
        Self {
            interaction,
            resource_type: None,
            id: None,
            version: None,
            compartment: None,
            operation: None,
            params: Vec::new(),
            body: None,
            if_match: None,
            if_none_exist: None,
            if_none_match: None,
            if_modified_since: None,
            prefer: Prefer::default(),
            purpose_of_use: None,
            break_glass_reason: None,
        }
    }

    /// Classifies `method` + path segments below the FHIR base.
    pub fn route(method: &Method, segments: &[&str]) -> FhirResult<Self> {
        let not_allowed =
            || FhirError::method_not_allowed(format!("{method} is not supported on this path"));
        let check_type = |t: &str| -> FhirResult<String> {
            if is_resource_type(t) {
                Ok(t.to_owned())
            } else {
                Err(FhirError::not_found(format!("unknown resource type '{t}'")))
            }
        };
        let check_id = |id: &str| -> FhirResult<String> {
            if is_valid_id(id) {
                Ok(id.to_owned())
            } else {
                Err(FhirError::bad_request(format!(
                    "'{id}' is not a valid resource id ([A-Za-z0-9-.]{{1,64}})"
                )))
            }
        };
        let op = |s: &str| s.strip_prefix('$').map(str::to_owned);
        let is_get = method == Method::GET || method == Method::HEAD;
        let mut r;
        match segments {
            [] => {
                r = if is_get {
                    Self::new(Interaction::SearchSystem)
                } else if method == Method::POST {
                    Self::new(Interaction::BatchOrTransaction)
                } else {
                    return Err(not_allowed());
                };
            }
            ["metadata"] if is_get => r = Self::new(Interaction::Capabilities),
            ["metadata"] => return Err(not_allowed()),
            ["_search"] if method == Method::POST => r = Self::new(Interaction::SearchSystem),
            ["_history"] if is_get => r = Self::new(Interaction::HistorySystem),
            [o] if o.starts_with('$') => {
                if !(is_get || method == Method::POST) {
                    return Err(not_allowed());
                }
                r = Self::new(Interaction::Operation);
                r.operation = op(o);
            }
            [t] => {
                let t = check_type(t)?;
                r = match *method {
                    Method::GET | Method::HEAD => Self::new(Interaction::SearchType),
                    Method::POST => Self::new(Interaction::Create),
                    Method::PUT => Self::new(Interaction::ConditionalUpdate),
                    Method::DELETE => Self::new(Interaction::ConditionalDelete),
                    _ => return Err(not_allowed()),
                };
                r.resource_type = Some(t);
            }
            [t, "_search"] if method == Method::POST => {
                r = Self::new(Interaction::SearchType);
                r.resource_type = Some(check_type(t)?);
            }
            [t, "_history"] if is_get => {
                r = Self::new(Interaction::HistoryType);
                r.resource_type = Some(check_type(t)?);
            }
            [t, o] if o.starts_with('$') => {
                if !(is_get || method == Method::POST) {
                    return Err(not_allowed());
                }
                r = Self::new(Interaction::Operation);
                r.resource_type = Some(check_type(t)?);
                r.operation = op(o);
            }
            [t, id] => {
                let t = check_type(t)?;
                let id = check_id(id)?;
                r = match *method {
                    Method::GET | Method::HEAD => Self::new(Interaction::Read),
                    Method::PUT => Self::new(Interaction::Update),
                    Method::DELETE => Self::new(Interaction::Delete),
                    _ => return Err(not_allowed()),
                };
                r.resource_type = Some(t);
                r.id = Some(id);
            }
            [t, id, "_history"] if is_get => {
                r = Self::new(Interaction::HistoryInstance);
                r.resource_type = Some(check_type(t)?);
                r.id = Some(check_id(id)?);
            }
            [t, id, "_history", vid] if is_get => {
                r = Self::new(Interaction::Vread);
                r.resource_type = Some(check_type(t)?);
                r.id = Some(check_id(id)?);
                r.version = Some(check_id(vid)?);
            }
            [t, id, o] if o.starts_with('$') => {
                if !(is_get || method == Method::POST) {
                    return Err(not_allowed());
                }
                r = Self::new(Interaction::Operation);
                r.resource_type = Some(check_type(t)?);
                r.id = Some(check_id(id)?);
                r.operation = op(o);
            }
            [c, id, t] if is_get => {
                r = Self::new(Interaction::SearchCompartment);
                r.compartment = Some((check_type(c)?, check_id(id)?));
                r.resource_type = Some(check_type(t)?);
            }
            [_, _, "_history"] | [_, _, "_history", _] | [_, _, _] => return Err(not_allowed()),
            _ => return Err(FhirError::not_found("no such FHIR endpoint")),
        }
        Ok(r)
    }

    /// First value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Classifies one `Bundle.entry` of a batch or transaction like an HTTP
/// request (R4 http.html §3.1.0.11.1): `request.method` + `request.url`
/// (relative, with an optional query), `resource`, and the conditional
/// headers `ifMatch`, `ifNoneExist`, `ifNoneMatch`, `ifModifiedSince`.
/// Nested batches are refused. Returns the HTTP method too (transactions
/// order their entries by it).
pub fn bundle_entry_request(entry: &Value) -> FhirResult<(Method, FhirRequest)> {
    let method_text = entry["request"]["method"]
        .as_str()
        .ok_or_else(|| FhirError::bad_request("request.method is required"))?;
    let method = match method_text {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        other => {
            return Err(FhirError::method_not_allowed(format!(
                "request.method {other} is not supported in Bundles"
            )))
        }
    };
    let url = entry["request"]["url"]
        .as_str()
        .ok_or_else(|| FhirError::bad_request("request.url is required"))?;
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return Err(FhirError::bad_request(
            "nested batches and transactions are not supported",
        ));
    }
    let mut req = FhirRequest::route(&method, &segments)?;
    req.params = url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    req.body = entry.get("resource").cloned();
    let text = |k: &str| entry["request"][k].as_str().map(str::to_owned);
    req.if_match = text("ifMatch");
    req.if_none_exist = text("ifNoneExist");
    req.if_none_match = text("ifNoneMatch");
    req.if_modified_since = text("ifModifiedSince");
    Ok((method, req))
}

/// Parses an `If-Match` value `W/"3"` (or `"3"`, or `3`) into the version id.
pub fn parse_etag(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    let v = v.trim_matches('"');
    if is_valid_id(v) {
        Some(v.to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(m: Method, p: &str) -> FhirResult<FhirRequest> {
        let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        FhirRequest::route(&m, &segs)
    }

    #[test]
    fn interactions_are_classified_by_path_and_method() {
        use Interaction::*;
        let cases = [
            (Method::GET, "metadata", Capabilities),
            (Method::GET, "Patient/1", Read),
            (Method::GET, "Patient/1/_history/2", Vread),
            (Method::PUT, "Patient/1", Update),
            (Method::PUT, "Patient", ConditionalUpdate),
            (Method::DELETE, "Patient/1", Delete),
            (Method::POST, "Patient", Create),
            (Method::GET, "Patient", SearchType),
            (Method::POST, "Patient/_search", SearchType),
            (Method::GET, "", SearchSystem),
            (Method::POST, "_search", SearchSystem),
            (Method::GET, "Patient/1/_history", HistoryInstance),
            (Method::GET, "Patient/_history", HistoryType),
            (Method::GET, "_history", HistorySystem),
            (Method::POST, "", BatchOrTransaction),
            (Method::GET, "Patient/1/$everything", Operation),
            (Method::GET, "Patient/1/Observation", SearchCompartment),
        ];
        for (m, p, want) in cases {
            assert_eq!(route(m.clone(), p).unwrap().interaction, want, "{m} {p}");
        }
        let e = route(Method::GET, "Patient/1/$everything").unwrap();
        assert_eq!(e.operation.as_deref(), Some("everything"));
    }

    #[test]
    fn bad_paths_get_the_right_status() {
        assert_eq!(
            route(Method::GET, "Foo/1").unwrap_err().status.as_u16(),
            404
        );
        assert_eq!(
            route(Method::GET, "Patient/a_b")
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
        assert_eq!(
            route(Method::PATCH, "Patient/1")
                .unwrap_err()
                .status
                .as_u16(),
            405
        );
        assert_eq!(
            route(Method::DELETE, "metadata")
                .unwrap_err()
                .status
                .as_u16(),
            405
        );
        assert_eq!(
            route(Method::POST, "Patient/1")
                .unwrap_err()
                .status
                .as_u16(),
            405
        );
    }

    #[test]
    fn prefer_and_etags_parse() {
        let p = Prefer::parse(["return=minimal; handling=strict", "respond-async"]);
        assert_eq!(p.return_, Some(PreferReturn::Minimal));
        assert_eq!(p.handling, Some(PreferHandling::Strict));
        assert!(p.respond_async);
        assert_eq!(parse_etag("W/\"3\"").as_deref(), Some("3"));
        assert_eq!(parse_etag("\"12\"").as_deref(), Some("12"));
        assert_eq!(parse_etag("W/\"a b\""), None);
    }
}
