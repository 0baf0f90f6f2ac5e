//! The channel of a Subscription: `rest-hook` only (PAS: "Servers SHALL
//! only support the rest-hook channel type"), its endpoint (an absolute
//! `https` URL, or `http` to a loopback address only, for local
//! subscribers and tests), payload MIME type and content, and headers.

use axum::http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::model::{issue, Issue, Kind};

/// `Subscription.channel.payload` content extension (backport).
pub const CONTENT_EXT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
/// The MIME type notifications are sent as.
pub const FHIR_JSON: &str = "application/fhir+json";

/// How much of the focus a notification carries (backport content codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// No focus at all.
    Empty,
    /// The focus as a reference.
    IdOnly,
    /// The reference and the resource itself.
    FullResource,
}

impl Content {
    /// The code (`backport-content-code-system`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::IdOnly => "id-only",
            Self::FullResource => "full-resource",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Empty, Self::IdOnly, Self::FullResource]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// `channel.endpoint`, checked by [`endpoint`].
pub(crate) fn check_endpoint(channel: &Value, issues: &mut Vec<Issue>) -> Option<url::Url> {
    let path = "Subscription.channel.endpoint";
    let Some(raw) = channel["endpoint"].as_str() else {
        issues.push(issue(
            Kind::Structure,
            "required",
            path,
            "a rest-hook channel needs an endpoint URL",
        ));
        return None;
    };
    match endpoint(raw) {
        Ok(u) => Some(u),
        Err(why) => {
            issues.push(issue(Kind::Unsupported, "value", path, why));
            None
        }
    }
}

/// Accepts an absolute `https` URL, or `http` to a loopback host.
pub fn endpoint(raw: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(raw).map_err(|e| format!("'{raw}' is not an absolute URL: {e}"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the endpoint must not carry credentials; use channel.header".into());
    }
    match u.scheme() {
        "https" if u.host().is_some() => Ok(u),
        "http" if crate::net::is_loopback(&u) => Ok(u),
        "http" => Err(format!(
            "'{raw}' is not allowed: notifications go over https (plain http only to a loopback address)"
        )),
        s => Err(format!("scheme '{s}' is not allowed; use https")),
    }
}

/// The payload content asked for (see `model` for the defaults).
pub(crate) fn payload(channel: &Value, issues: &mut Vec<Issue>) -> Content {
    let path = "Subscription.channel.payload";
    let mime = channel["payload"].as_str();
    if let Some(m) = mime {
        let base = m.split(';').next().unwrap_or_default().trim();
        if base != FHIR_JSON && base != "application/json" {
            issues.push(issue(
                Kind::Unsupported,
                "not-supported",
                path,
                format!("payload '{m}' is not supported; notifications are sent as {FHIR_JSON}"),
            ));
        }
    }
    let ext = channel["_payload"]["extension"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["url"] == CONTENT_EXT));
    match ext {
        Some(e) => match e["valueCode"].as_str().and_then(Content::parse) {
            Some(c) => c,
            None => {
                issues.push(issue(
                    Kind::Unsupported,
                    "value",
                    "Subscription.channel.payload.extension('backport-payload-content')",
                    "payload content must be empty, id-only or full-resource",
                ));
                Content::Empty
            }
        },
        None if mime.is_some() => Content::IdOnly,
        None => Content::Empty,
    }
}

/// Headers fhirgate sets itself; a subscription may not override them.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// `channel.header` as header pairs; reserved or malformed ones are issues.
pub(crate) fn parse_headers(
    channel: &Value,
    issues: &mut Vec<Issue>,
) -> Vec<(HeaderName, HeaderValue)> {
    let path = "Subscription.channel.header";
    let raw: Vec<&Value> = match &channel["header"] {
        Value::Null => return Vec::new(),
        Value::Array(a) => a.iter().collect(),
        _ => {
            issues.push(issue(
                Kind::Structure,
                "structure",
                path,
                "header must be an array of strings",
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for h in raw {
        let parsed = h
            .as_str()
            .and_then(|h| h.split_once(':'))
            .and_then(|(n, v)| {
                let name = HeaderName::from_bytes(n.trim().as_bytes()).ok()?;
                let value = HeaderValue::from_str(v.trim()).ok()?;
                Some((name, value))
            });
        match parsed {
            Some((n, _)) if RESERVED.contains(&n.as_str()) => issues.push(issue(
                Kind::Unsupported,
                "value",
                path,
                format!("header '{n}' is set by the server and cannot be configured"),
            )),
            Some(pair) => out.push(pair),
            None => issues.push(issue(
                Kind::Structure,
                "structure",
                path,
                "each header must be a string 'Name: value'",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        assert!(endpoint("https://ehr.example.org/hook").is_ok());
        assert!(endpoint("http://127.0.0.1:9999/hook").is_ok());
        assert!(endpoint("http://[::1]:9999/hook").is_ok());
        assert!(endpoint("http://localhost/hook").is_ok());
        assert!(endpoint("http://ehr.example.org/hook").is_err());
        assert!(endpoint("http://10.0.0.1/hook").is_err());
        assert!(endpoint("ftp://ehr.example.org/hook").is_err());
        assert!(endpoint("/relative").is_err());
        assert!(endpoint("https://user:pw@ehr.example.org/").is_err());
    }
}
