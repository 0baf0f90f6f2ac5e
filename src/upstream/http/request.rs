//! `FhirRequest` → outgoing HTTP request (R4 http.html §3.1.0). The URL is
//! always built on the configured upstream base from typed parts (resource
//! type, id, version, operation name, each checked again and percent-encoded
//! as one path segment), so no client input can pick another host or climb
//! out of the base. Headers are an allowlist: only what is set here is sent.

use reqwest::{
    header::{
        HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, IF_MATCH, IF_MODIFIED_SINCE,
        IF_NONE_MATCH,
    },
    Method,
};
use url::Url;

use crate::{
    error::{FhirError, FhirResult},
    fhir::{
        is_resource_type, is_valid_id, request::parse_etag, FhirRequest, Interaction,
        PreferHandling,
    },
};

/// FHIR JSON media type (R4 http.html §3.1.0.1.6).
pub const FHIR_JSON: &str = "application/fhir+json";

/// Searches whose encoded query is longer than this go as `POST _search` forms.
pub const MAX_GET_QUERY: usize = 2048;

/// `If-None-Exist` (conditional create).
static IF_NONE_EXIST: HeaderName = HeaderName::from_static("if-none-exist");
/// `Prefer` (RFC 7240).
static PREFER: HeaderName = HeaderName::from_static("prefer");
/// `X-Request-Id`, so the upstream's logs can be joined with ours.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Body of an outgoing request.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// `application/fhir+json`.
    Json(Vec<u8>),
    /// `application/x-www-form-urlencoded` (`POST _search`).
    Form(String),
}

/// An HTTP request ready for the client.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL below the upstream base.
    pub url: Url,
    /// The allowlisted headers (no `Authorization`; added by the caller).
    pub headers: HeaderMap,
    /// Optional body.
    pub body: Option<Body>,
}

/// Builds the upstream request for `req`; `request_id` is forwarded for log correlation.
pub fn build(base: &Url, req: &FhirRequest, request_id: &str) -> FhirResult<Outgoing> {
    let rt = || {
        checked(
            req.resource_type.as_deref(),
            "resource type",
            is_resource_type,
        )
    };
    let id = || checked(req.id.as_deref(), "id", is_valid_id);
    let vid = || checked(req.version.as_deref(), "version", is_valid_id);
    let query = req.params.iter().filter(|(k, _)| k != "_format");
    let mut path: Vec<String> = Vec::new();
    let mut with_query = false;
    let method = match req.interaction {
        Interaction::Capabilities => {
            path.push("metadata".into());
            Method::GET
        }
        Interaction::Read | Interaction::Update | Interaction::Delete => {
            path.extend([rt()?, id()?]);
            match req.interaction {
                Interaction::Read => Method::GET,
                Interaction::Update => Method::PUT,
                _ => Method::DELETE,
            }
        }
        Interaction::Vread => {
            path.extend([rt()?, id()?, "_history".into(), vid()?]);
            Method::GET
        }
        Interaction::ConditionalUpdate | Interaction::ConditionalDelete => {
            path.push(rt()?);
            with_query = true;
            if req.interaction == Interaction::ConditionalUpdate {
                Method::PUT
            } else {
                Method::DELETE
            }
        }
        Interaction::Create => {
            path.push(rt()?);
            Method::POST
        }
        Interaction::SearchType | Interaction::SearchSystem => {
            if req.interaction == Interaction::SearchType {
                path.push(rt()?);
            }
            with_query = true;
            Method::GET
        }
        Interaction::SearchCompartment => {
            let (c, cid) = req
                .compartment
                .as_ref()
                .ok_or_else(|| FhirError::internal("compartment search without a compartment"))?;
            path.extend([
                checked(Some(c), "compartment type", is_resource_type)?,
                checked(Some(cid), "compartment id", is_valid_id)?,
            ]);
            if req.resource_type.is_some() {
                path.push(rt()?);
            }
            with_query = true;
            Method::GET
        }
        Interaction::HistoryInstance | Interaction::HistoryType | Interaction::HistorySystem => {
            if req.interaction != Interaction::HistorySystem {
                path.push(rt()?);
            }
            if req.interaction == Interaction::HistoryInstance {
                path.push(id()?);
            }
            path.push("_history".into());
            with_query = true;
            Method::GET
        }
        Interaction::BatchOrTransaction => Method::POST,
        Interaction::Operation => {
            if req.resource_type.is_some() {
                path.push(rt()?);
            }
            if req.id.is_some() {
                path.push(id()?);
            }
            let op = checked(req.operation.as_deref(), "operation", is_operation_name)?;
            path.push(format!("${op}"));
            with_query = req.body.is_none();
            if req.body.is_some() {
                Method::POST
            } else {
                Method::GET
            }
        }
    };

    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| FhirError::internal("upstream base URL cannot have a path"))?
        .pop_if_empty()
        .extend(&path);
    let mut method = method;
    let mut body = match &req.body {
        Some(v) if method != Method::GET => Some(Body::Json(serde_json::to_vec(v)?)),
        _ => None,
    };
    if with_query {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let is_search = matches!(
            req.interaction,
            Interaction::SearchType | Interaction::SearchSystem
        );
        if is_search && encoded.len() > MAX_GET_QUERY {
            url.path_segments_mut()
                .map_err(|()| FhirError::internal("upstream base URL cannot have a path"))?
                .push("_search");
            method = Method::POST;
            body = Some(Body::Form(encoded));
        } else if !encoded.is_empty() {
            url.set_query(Some(&encoded));
        }
    }
    Ok(Outgoing {
        method,
        url,
        headers: headers(req, request_id, body.as_ref())?,
        body,
    })
}

/// The allowlisted request headers.
fn headers(req: &FhirRequest, request_id: &str, body: Option<&Body>) -> FhirResult<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static(FHIR_JSON));
    match body {
        Some(Body::Json(_)) => {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/fhir+json; charset=utf-8"),
            );
        }
        Some(Body::Form(_)) => {
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        None => {}
    }
    // The facade renders `return=minimal|OperationOutcome` itself, so it always
    // asks for the resource; `handling` is the client's choice, passed on.
    let prefer = match req.prefer.handling {
        Some(PreferHandling::Strict) => "return=representation, handling=strict",
        Some(PreferHandling::Lenient) => "return=representation, handling=lenient",
        None => "return=representation",
    };
    h.insert(PREFER.clone(), HeaderValue::from_static(prefer));
    if let Some(raw) = &req.if_match {
        // Accept the version in any of its spellings (`3`, `"3"`, `W/"3"`); send it weak.
        let v = parse_etag(raw)
            .ok_or_else(|| FhirError::bad_request(format!("invalid If-Match '{raw}'")))?;
        h.insert(IF_MATCH, value(&format!("W/\"{v}\""), "If-Match")?);
    }
    if let Some(v) = &req.if_none_exist {
        h.insert(IF_NONE_EXIST.clone(), value(v, "If-None-Exist")?);
    }
    if let Some(v) = &req.if_none_match {
        h.insert(IF_NONE_MATCH, value(v, "If-None-Match")?);
    }
    if let Some(v) = &req.if_modified_since {
        h.insert(IF_MODIFIED_SINCE, value(v, "If-Modified-Since")?);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    Ok(h)
}

/// A header value from client input; control characters are a client error.
fn value(v: &str, name: &str) -> FhirResult<HeaderValue> {
    HeaderValue::from_str(v)
        .map_err(|_| FhirError::bad_request(format!("invalid {name} header value")))
}

/// A path part that must be present and pass `valid`; `.` and `..` never pass.
fn checked(v: Option<&str>, what: &str, valid: fn(&str) -> bool) -> FhirResult<String> {
    match v {
        Some(s) if valid(s) && s != "." && s != ".." => Ok(s.to_owned()),
        Some(s) => Err(FhirError::bad_request(format!("invalid {what} '{s}'"))),
        None => Err(FhirError::internal(format!(
            "{what} missing for this interaction"
        ))),
    }
}

/// Operation names: `[A-Za-z0-9_-]{1,64}` (without the `$`).
fn is_operation_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fhir::Prefer;

    fn base() -> Url {
        Url::parse("http://up:8103/fhir/R4/").unwrap()
    }

    fn req(i: Interaction, rt: Option<&str>, id: Option<&str>) -> FhirRequest {
        let mut r = FhirRequest::new(i);
        r.resource_type = rt.map(str::to_owned);
        r.id = id.map(str::to_owned);
        r
    }

    #[test]
    fn paths_follow_the_interaction() {
        let b = base();
        let mut vread = req(Interaction::Vread, Some("Patient"), Some("1"));
        vread.version = Some("2".into());
        let mut op = req(Interaction::Operation, Some("Patient"), Some("1"));
        op.operation = Some("everything".into());
        let mut comp = req(Interaction::SearchCompartment, Some("Observation"), None);
        comp.compartment = Some(("Patient".into(), "1".into()));
        let cases = [
            (
                req(Interaction::Capabilities, None, None),
                "GET",
                "http://up:8103/fhir/R4/metadata",
            ),
            (
                req(Interaction::Read, Some("Patient"), Some("1")),
                "GET",
                "http://up:8103/fhir/R4/Patient/1",
            ),
            (vread, "GET", "http://up:8103/fhir/R4/Patient/1/_history/2"),
            (
                req(Interaction::Delete, Some("Patient"), Some("1")),
                "DELETE",
                "http://up:8103/fhir/R4/Patient/1",
            ),
            (
                req(Interaction::HistoryType, Some("Patient"), None),
                "GET",
                "http://up:8103/fhir/R4/Patient/_history",
            ),
            (
                req(Interaction::HistorySystem, None, None),
                "GET",
                "http://up:8103/fhir/R4/_history",
            ),
            (
                req(Interaction::BatchOrTransaction, None, None),
                "POST",
                "http://up:8103/fhir/R4",
            ),
            (op, "GET", "http://up:8103/fhir/R4/Patient/1/$everything"),
            (comp, "GET", "http://up:8103/fhir/R4/Patient/1/Observation"),
        ];
        for (r, m, u) in cases {
            let o = build(&b, &r, "rid").unwrap();
            assert_eq!(
                (o.method.as_str(), o.url.as_str()),
                (m, u),
                "{:?}",
                r.interaction
            );
        }
    }

    #[test]
    fn params_are_percent_encoded_and_format_is_dropped() {
        let mut r = req(Interaction::SearchType, Some("Patient"), None);
        r.params = vec![
            ("identifier".into(), "urn:oid:1|a b&c=d".into()),
            ("_format".into(), "xml".into()),
            ("name:contains".into(), "Zoë".into()),
        ];
        let o = build(&base(), &r, "rid").unwrap();
        assert_eq!(o.url.path(), "/fhir/R4/Patient");
        let pairs: Vec<(String, String)> = o
            .url
            .query_pairs()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("identifier".to_owned(), "urn:oid:1|a b&c=d".to_owned()),
                ("name:contains".to_owned(), "Zoë".to_owned())
            ]
        );
        assert!(o.url.query().unwrap().contains("a+b%26c%3Dd"), "{}", o.url);
        let no_params = build(
            &base(),
            &req(Interaction::SearchType, Some("Patient"), None),
            "r",
        )
        .unwrap();
        assert_eq!(no_params.url.query(), None);
    }

    #[test]
    fn long_searches_become_post_search_forms() {
        let mut r = req(Interaction::SearchType, Some("Observation"), None);
        r.params = vec![("code".into(), "x".repeat(MAX_GET_QUERY + 1))];
        let o = build(&base(), &r, "rid").unwrap();
        assert_eq!(o.method, Method::POST);
        assert_eq!(o.url.as_str(), "http://up:8103/fhir/R4/Observation/_search");
        assert!(matches!(o.body, Some(Body::Form(ref f)) if f.starts_with("code=xxx")));
        assert_eq!(o.headers[CONTENT_TYPE], "application/x-www-form-urlencoded");
    }

    #[test]
    fn headers_are_an_allowlist() {
        let mut r = req(Interaction::Update, Some("Patient"), Some("1"));
        r.body = Some(json!({"resourceType": "Patient", "id": "1"}));
        r.if_match = Some("W/\"3\"".into());
        r.prefer = Prefer::parse(["return=minimal; handling=strict"]);
        let o = build(&base(), &r, "req-9").unwrap();
        assert_eq!(o.method, Method::PUT);
        assert_eq!(o.headers[IF_MATCH], "W/\"3\"");
        assert_eq!(o.headers[ACCEPT], FHIR_JSON);
        assert_eq!(
            o.headers["prefer"],
            "return=representation, handling=strict"
        );
        assert_eq!(o.headers["x-request-id"], "req-9");
        assert!(o.headers.get("authorization").is_none());
        assert_eq!(o.headers.len(), 5, "{:?}", o.headers);
        let mut c = req(Interaction::Create, Some("Patient"), None);
        c.if_none_exist = Some("identifier=a\r\nX-Evil: 1".into());
        assert_eq!(build(&base(), &c, "r").unwrap_err().status.as_u16(), 400);
    }

    #[test]
    fn path_parts_cannot_escape_the_base() {
        let r = req(Interaction::Read, Some("Patient"), Some(".."));
        assert_eq!(build(&base(), &r, "r").unwrap_err().status.as_u16(), 400);
        let r = req(Interaction::Read, Some("../admin"), Some("1"));
        assert_eq!(build(&base(), &r, "r").unwrap_err().status.as_u16(), 400);
        let mut op = req(Interaction::Operation, None, None);
        op.operation = Some("x/../../y".into());
        assert_eq!(build(&base(), &op, "r").unwrap_err().status.as_u16(), 400);
    }
}
