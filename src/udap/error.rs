//! The one error type of the UDAP trust core (HL7 FAST Security IG, UDAP
//! "Trust Community" checks): every way an `x5c` chain, a CRL or a signed JWT
//! can fail. Callers (discovery, registration, client authentication) map it
//! to their protocol errors (`invalid_software_statement`, `invalid_client`, …)
//! and may show [`TrustError::description`] to the client: it never echoes
//! more than [`MAX_ECHO`] characters of client input.

/// How many characters of client-supplied text a description may repeat.
pub const MAX_ECHO: usize = 80;

/// Why a certificate chain or an `x5c` JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustError {
    /// Not parseable: bad base64, DER, PEM, JSON or JWS framing, or a
    /// structure we refuse (unsupported critical extension, path too long).
    Malformed(String),
    /// No path from the leaf to a configured trust anchor.
    UntrustedAnchor,
    /// A certificate in the path is past its notAfter.
    Expired,
    /// A certificate in the path is before its notBefore.
    NotYetValid,
    /// A certificate or JWS signature does not verify.
    BadSignature,
    /// A key usage forbids the role the certificate plays in the path.
    KeyUsage(String),
    /// An issuing certificate is not a CA, or its path length forbids it.
    NotCa(String),
    /// A certificate in the path is listed on its issuer's CRL.
    Revoked,
    /// A CRL named by a distribution point could not be fetched or trusted
    /// (fail closed).
    CrlUnavailable(String),
    /// The JWT `iss` is not one of the leaf certificate's SAN URIs.
    SanMismatch {
        /// The `iss` the client sent (truncated to [`MAX_ECHO`] characters).
        iss: String,
    },
    /// A signature algorithm we do not accept (JWS `alg`, SHA-1, key/alg mismatch).
    Alg(String),
    /// The JWS header has no `x5c`.
    MissingX5c,
}

impl TrustError {
    /// A clear sentence for the client and the log.
    pub fn description(&self) -> String {
        match self {
            Self::Malformed(why) => format!("Malformed certificate or JWT: {}.", echo(why)),
            Self::UntrustedAnchor => {
                "The certificate chain does not lead to a trusted anchor of this community."
                    .to_owned()
            }
            Self::Expired => "A certificate in the chain has expired.".to_owned(),
            Self::NotYetValid => "A certificate in the chain is not yet valid.".to_owned(),
            Self::BadSignature => "A signature does not verify.".to_owned(),
            Self::KeyUsage(why) => format!("Certificate key usage not allowed: {}.", echo(why)),
            Self::NotCa(why) => format!(
                "An issuing certificate may not issue certificates: {}.",
                echo(why)
            ),
            Self::Revoked => "A certificate in the chain has been revoked.".to_owned(),
            Self::CrlUnavailable(why) => format!(
                "The certificate revocation list could not be checked: {}.",
                echo(why)
            ),
            Self::SanMismatch { iss } => format!(
                "The JWT iss \"{}\" is not a URI subject alternative name of the signing certificate.",
                echo(iss)
            ),
            Self::Alg(why) => format!("Signature algorithm not accepted: {}.", echo(why)),
            Self::MissingX5c => "The JWT header carries no x5c certificate chain.".to_owned(),
        }
    }

    /// A [`TrustError::SanMismatch`] holding at most [`MAX_ECHO`] characters of `iss`.
    pub fn san_mismatch(iss: &str) -> Self {
        Self::SanMismatch { iss: echo(iss) }
    }
}

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

impl std::error::Error for TrustError {}

/// At most [`MAX_ECHO`] characters of `s`, control characters replaced, with
/// an ellipsis when cut.
pub(crate) fn echo(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_ECHO)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(MAX_ECHO).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_never_echoes_more_than_80_chars() {
        let long = "x".repeat(500);
        for e in [
            TrustError::Malformed(long.clone()),
            TrustError::KeyUsage(long.clone()),
            TrustError::NotCa(long.clone()),
            TrustError::CrlUnavailable(long.clone()),
            TrustError::Alg(long.clone()),
            TrustError::SanMismatch { iss: long.clone() },
        ] {
            let d = e.description();
            assert!(d.matches('x').count() <= MAX_ECHO, "{d}");
        }
        match TrustError::san_mismatch(&long) {
            TrustError::SanMismatch { iss } => assert_eq!(iss.chars().count(), MAX_ECHO + 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn description_replaces_control_characters() {
        let d = TrustError::san_mismatch("https://a\r\nSet-Cookie: x").description();
        assert!(!d.contains('\n') && !d.contains('\r'), "{d}");
    }
}
