//! `FhirResponse`: what an upstream answers, before the facade renders it.

use axum::http::StatusCode;
use serde_json::Value;

/// A FHIR answer in typed parts; URLs in it are already the facade's.
#[derive(Debug, Clone)]
pub struct FhirResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body (resource, Bundle or OperationOutcome), if any.
    pub body: Option<Value>,
    /// `Location` (create, and update that created).
    pub location: Option<String>,
    /// `Content-Location`.
    pub content_location: Option<String>,
    /// Version id for `ETag: W/"n"`.
    pub version: Option<String>,
    /// `Last-Modified` as a FHIR instant (rendered as an HTTP date).
    pub last_modified: Option<String>,
}

impl FhirResponse {
    /// A response with a status and body, no headers.
    pub fn new(status: StatusCode, body: Option<Value>) -> Self {
        Self {
            status,
            body,
            location: None,
            content_location: None,
            version: None,
            last_modified: None,
        }
    }

    /// 200 with a body.
    pub fn ok(body: Value) -> Self {
        Self::new(StatusCode::OK, Some(body))
    }

    /// 200 with a stored resource, `ETag` and `Last-Modified` from its `meta`.
    pub fn resource(body: Value) -> Self {
        let meta = &body["meta"];
        let version = meta["versionId"].as_str().map(str::to_owned);
        let last_modified = meta["lastUpdated"].as_str().map(str::to_owned);
        let mut r = Self::ok(body);
        r.version = version;
        r.last_modified = last_modified;
        r
    }

    /// `resource` from stored JSON text (a deleted version has none).
    pub fn stored(text: Option<&str>) -> Result<Self, serde_json::Error> {
        Ok(Self::resource(serde_json::from_str(
            text.unwrap_or("null"),
        )?))
    }
}
