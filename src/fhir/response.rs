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

    /// Sets `ETag` and `Last-Modified` from the resource's `meta`.
    pub fn with_meta_of(mut self, resource: &Value) -> Self {
        let meta = &resource["meta"];
        self.version = meta["versionId"].as_str().map(str::to_owned);
        self.last_modified = meta["lastUpdated"].as_str().map(str::to_owned);
        self
    }
}
