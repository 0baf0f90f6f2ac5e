//! RFC 6749 §5.2 error responses (and the RFC 7591 / UDAP / RFC 9470 codes we use).

use serde_json::{json, Value};

/// The `error` codes fhirgate answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// RFC 6749 §5.2: malformed request.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (401).
    InvalidClient,
    /// RFC 6749 §5.2: bad code, refresh token or assertion.
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1.
    UnsupportedResponseType,
    /// RFC 6749 §5.2: scope invalid or beyond registration.
    InvalidScope,
    /// RFC 6749 §4.1.2.1: the user or server refused.
    AccessDenied,
    /// RFC 6749 §4.1.2.1.
    ServerError,
    /// RFC 6749 §4.1.2.1.
    TemporarilyUnavailable,
    /// RFC 7591 §3.2.2.
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2 (UDAP DCR §5.2): the software statement is invalid.
    InvalidSoftwareStatement,
    /// RFC 7591 §3.2.2 (UDAP DCR §5.2): the software statement is not
    /// approved (its certificate leads to no trusted anchor).
    UnapprovedSoftwareStatement,
    /// UDAP Tiered OAuth §3.4 (HL7 FAST Security "Tiered OAuth"): the
    /// identity provider the client named (`idp`) cannot be used.
    InvalidIdp,
    /// RFC 6750 §3.1 (resource server).
    InvalidToken,
    /// RFC 6750 §3.1.
    InsufficientScope,
}

impl OAuthErrorCode {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidSoftwareStatement => "invalid_software_statement",
            Self::UnapprovedSoftwareStatement => "unapproved_software_statement",
            Self::InvalidIdp => "invalid_idp",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    /// HTTP status for token-endpoint style answers.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An OAuth error: code plus a description safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The `error` code.
    pub code: OAuthErrorCode,
    /// The `error_description`.
    pub description: String,
}

impl OAuthError {
    /// Builds an error.
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }
    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, d)
    }
    /// `invalid_client`.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, d)
    }
    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidScope, d)
    }
    /// The JSON body (RFC 6749 §5.2).
    pub fn body(&self) -> Value {
        json!({"error": self.code.as_str(), "error_description": self.description})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_per_rfc_6749() {
        let e = OAuthError::invalid_client("unknown client");
        assert_eq!(e.code.status(), 401);
        assert_eq!(e.body()["error"], "invalid_client");
        assert_eq!(OAuthError::invalid_grant("x").code.status(), 400);
        assert_eq!(OAuthErrorCode::InvalidIdp.as_str(), "invalid_idp");
    }
}
