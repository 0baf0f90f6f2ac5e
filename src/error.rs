//! The server's one error type and its wire faces.
//!
//! A `FhirError` carries an HTTP status, a FHIR `IssueType` code, a message
//! that is safe to show the client and, separately, an internal detail that
//! only goes to the log. On FHIR routes it renders as an `OperationOutcome`
//! (FHIR R4 §3.1.0.4 "Errors"); internal and upstream failures never reveal
//! their detail to the client, only the request id to quote.

use axum::http::StatusCode;
use serde_json::{json, Value};

/// FHIR `IssueType` codes we use (http://hl7.org/fhir/R4/valueset-issue-type.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueType {
    /// Content invalid against the specification or a profile.
    Invalid,
    /// A structural problem in the content.
    Structure,
    /// A required element is missing.
    Required,
    /// A value is not valid.
    Value,
    /// Processing problem (e.g. a search parameter that cannot be used).
    Processing,
    /// The resource or operation is not supported.
    NotSupported,
    /// The reference resource was not found.
    NotFound,
    /// The resource was deleted.
    Deleted,
    /// A version or identity conflict.
    Conflict,
    /// Duplicate (e.g. conditional create matched several).
    Duplicate,
    /// Too much content or too costly.
    TooCostly,
    /// Throttled / limited.
    Throttled,
    /// Informational note.
    Informational,
    /// An unexpected internal error.
    Exception,
    /// Timed out.
    Timeout,
    /// A transient failure (upstream).
    Transient,
    /// Security problem (authentication / authorization).
    Security,
    /// Forbidden.
    Forbidden,
}

impl IssueType {
    /// The code as written on the wire.
    pub fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Structure => "structure",
            Self::Required => "required",
            Self::Value => "value",
            Self::Processing => "processing",
            Self::NotSupported => "not-supported",
            Self::NotFound => "not-found",
            Self::Deleted => "deleted",
            Self::Conflict => "conflict",
            Self::Duplicate => "duplicate",
            Self::TooCostly => "too-costly",
            Self::Throttled => "throttled",
            Self::Informational => "informational",
            Self::Exception => "exception",
            Self::Timeout => "timeout",
            Self::Transient => "transient",
            Self::Security => "security",
            Self::Forbidden => "forbidden",
        }
    }
}

/// An error answered on a FHIR route.
#[derive(Debug, Clone)]
pub struct FhirError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// Issue code of the single OperationOutcome issue.
    pub code: IssueType,
    /// Text the client may see.
    pub message: String,
    /// Detail for the log only (never sent).
    pub internal: Option<String>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
    /// For a 401: the `WWW-Authenticate` parameters after `realm`, when
    /// the error is not `invalid_token` (e.g. RFC 9470's
    /// `insufficient_user_authentication` with `acr_values`).
    pub challenge: Option<String>,
}

impl std::fmt::Display for FhirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code.code(),
            self.message
        )
    }
}

impl std::error::Error for FhirError {}

/// Result alias for FHIR handling.
pub type FhirResult<T> = Result<T, FhirError>;

impl FhirError {
    /// Builds an error from its parts.
    pub fn new(status: StatusCode, code: IssueType, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            internal: None,
            retry_after: None,
            challenge: None,
        }
    }
    /// The same error with a `Retry-After` header of `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    /// 400 with `invalid`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueType::Invalid, message)
    }
    /// 400 with `processing` (search parameters and the like).
    pub fn processing(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueType::Processing, message)
    }
    /// 404 `not-found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, IssueType::NotFound, message)
    }
    /// 410 `deleted`.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, IssueType::Deleted, message)
    }
    /// 405 `not-supported`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            IssueType::NotSupported,
            message,
        )
    }
    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, IssueType::Conflict, message)
    }
    /// 412 `conflict` (version mismatch or multiple conditional matches).
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            IssueType::Conflict,
            message,
        )
    }
    /// 413 `too-costly`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, IssueType::TooCostly, message)
    }
    /// 415 for a body that is not FHIR JSON.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::NotSupported,
            message,
        )
    }
    /// 406 for an `Accept`/`_format` we cannot produce.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, IssueType::NotSupported, message)
    }
    /// 422 `processing` (content that fails business rules).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            IssueType::Processing,
            message,
        )
    }
    /// 500 with a generic text; `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueType::Exception,
            "internal server error",
        );
        e.internal = Some(detail.to_string());
        e
    }
    /// 502: the upstream failed or answered something unusable.
    pub fn bad_gateway(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_GATEWAY,
            IssueType::Transient,
            "the upstream FHIR server failed or sent an invalid response",
        );
        e.internal = Some(detail.to_string());
        e
    }
    /// 504: the upstream did not answer in time.
    pub fn gateway_timeout(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            IssueType::Timeout,
            "the upstream FHIR server did not answer in time",
        );
        e.internal = Some(detail.to_string());
        e
    }
    /// 503: a required internal service is unavailable.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueType::Transient,
            "service temporarily unavailable",
        );
        e.internal = Some(detail.to_string());
        e
    }

    /// The OperationOutcome sent to the client; `request_id` is quoted for
    /// server-side failures so support can find the log line.
    pub fn outcome(&self, request_id: Option<&str>) -> Value {
        let mut diagnostics = self.message.clone();
        if self.status.is_server_error() {
            if let Some(id) = request_id {
                diagnostics = format!("{diagnostics} (request id {id})");
            }
        }
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": self.code.code(),
                "diagnostics": diagnostics,
            }]
        })
    }
}

impl From<sqlx::Error> for FhirError {
    fn from(e: sqlx::Error) -> Self {
        FhirError::internal(format!("database: {e}"))
    }
}

impl From<serde_json::Error> for FhirError {
    fn from(e: serde_json::Error) -> Self {
        FhirError::internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_detail_and_quote_the_request_id() {
        let e = FhirError::internal("secret table name t_x");
        let o = e.outcome(Some("req-1")).to_string();
        assert!(!o.contains("secret"), "{o}");
        assert!(o.contains("req-1"));
        assert!(o.contains("\"exception\""));
        let e = FhirError::bad_gateway("connection refused to 10.0.0.5");
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert!(!e.outcome(None).to_string().contains("10.0.0.5"));
    }

    #[test]
    fn client_errors_keep_their_message_and_code() {
        let e = FhirError::precondition_failed("version mismatch");
        assert_eq!(e.status.as_u16(), 412);
        let o = e.outcome(Some("r"));
        assert_eq!(o["issue"][0]["code"], "conflict");
        assert_eq!(o["issue"][0]["diagnostics"], "version mismatch");
        assert_eq!(FhirError::gone("x").status.as_u16(), 410);
        assert_eq!(FhirError::too_large("x").status.as_u16(), 413);
        assert_eq!(FhirError::gateway_timeout("x").status.as_u16(), 504);
    }
}
