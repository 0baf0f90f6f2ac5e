//! Parse and validate a client's `Subscription` (R4, Subscriptions R5
//! Backport IG 1.1.0 `backport-subscription`, PAS 2.0.1 `profile-subscription`)
//! into a [`Spec`]: what the server needs to deliver notifications.
//!
//! Pure: no I/O. Every problem found becomes one [`Issue`] with the FHIRPath
//! of the element, so the client gets all of them in one OperationOutcome.
//!
//! What is accepted:
//! - `criteria`: the PAS topic canonical ([`PAS_TOPIC`], optionally with
//!   `|version`); any other topic is refused (422) naming the supported one.
//! - `criteria.extension` `backport-filter-criteria` (PAS 2.0.1 topic
//!   `canFilterBy` `orgIdentifier`, comparator `eq`; PAS 2.2 spells it
//!   `org-identifier`): at least one, each `[ClaimResponse?|Bundle?]orgIdentifier=v[,v…]`
//!   where `v` is `system|value` or a bare `value`.
//! - `channel.type` `rest-hook` only (PAS: "Servers SHALL only support the
//!   rest-hook channel type"); `channel.endpoint` an absolute `https` URL,
//!   or `http` to a loopback host only (for local subscribers and tests).
//! - `channel.payload` absent or `application/fhir+json` (`application/json`
//!   is taken as the same); content from the `backport-payload-content`
//!   extension (`empty`, `id-only`, `full-resource`); without it, `id-only`
//!   when a payload MIME type is given and `empty` when none is.
//! - `channel.header`: `Name: value` strings sent with every notification,
//!   except the headers the server itself sets.

use axum::http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::channel::{check_endpoint, parse_headers, payload};
pub use super::channel::{endpoint, Content, CONTENT_EXT, FHIR_JSON};
use super::filter::filter;
pub use super::filter::{parse_filter, OrgIdentifier, FILTER_EXT};
use super::state::Status;

/// The one topic this server offers (PAS 2.0.1 `PASSubscriptionTopic`).
pub const PAS_TOPIC: &str =
    "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic";

/// What a valid Subscription asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The status the client asked for.
    pub status: Status,
    /// `channel.endpoint`.
    pub endpoint: url::Url,
    /// Payload content.
    pub content: Content,
    /// `channel.header`, parsed.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The organization identifiers of the filter (any one matches).
    pub filter: Vec<OrgIdentifier>,
}

impl Spec {
    /// Whether a PAS request with this provider key passes the filter.
    pub fn matches(&self, provider_key: &str) -> bool {
        self.filter.iter().any(|f| f.matches(provider_key))
    }
}

/// Kind of problem: decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Missing or malformed (400, `required` / `structure`).
    Structure,
    /// Well-formed but not supported or not allowed (422, `not-supported`
    /// / `value`).
    Unsupported,
}

/// One problem with a Subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Its kind.
    pub kind: Kind,
    /// OperationOutcome issue code.
    pub code: &'static str,
    /// FHIRPath of the element.
    pub path: String,
    /// What is wrong, for the client.
    pub message: String,
}

pub(crate) fn issue(
    kind: Kind,
    code: &'static str,
    path: &str,
    message: impl Into<String>,
) -> Issue {
    Issue {
        kind,
        code,
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Parses and validates `body`; every problem is reported.
pub fn parse(body: &Value) -> Result<Spec, Vec<Issue>> {
    let mut issues = Vec::new();
    if body["resourceType"] != "Subscription" {
        issues.push(issue(
            Kind::Structure,
            "structure",
            "resourceType",
            "the body must be a Subscription resource",
        ));
        return Err(issues);
    }
    let status = status(body, &mut issues);
    if body["reason"].as_str().is_none_or(|r| r.trim().is_empty()) {
        issues.push(issue(
            Kind::Structure,
            "required",
            "Subscription.reason",
            "reason is required (1..1)",
        ));
    }
    topic(body, &mut issues);
    let filter = filter(body, &mut issues);
    let channel = &body["channel"];
    let mut endpoint = None;
    let mut content = Content::Empty;
    let mut headers = Vec::new();
    if !channel.is_object() {
        issues.push(issue(
            Kind::Structure,
            "required",
            "Subscription.channel",
            "channel is required: a rest-hook channel with an endpoint",
        ));
    } else {
        match channel["type"].as_str() {
            Some("rest-hook") => {}
            None => issues.push(issue(
                Kind::Structure,
                "required",
                "Subscription.channel.type",
                "channel.type is required; this server supports only rest-hook",
            )),
            Some(other) => issues.push(issue(
                Kind::Unsupported,
                "not-supported",
                "Subscription.channel.type",
                format!(
                    "channel type '{other}' is not supported; this server supports only rest-hook"
                ),
            )),
        }
        endpoint = check_endpoint(channel, &mut issues);
        content = payload(channel, &mut issues);
        headers = parse_headers(channel, &mut issues);
    }
    match (issues.is_empty(), status, endpoint) {
        (true, Some(status), Some(endpoint)) => Ok(Spec {
            status,
            endpoint,
            content,
            headers,
            filter,
        }),
        _ => Err(issues),
    }
}

fn status(body: &Value, issues: &mut Vec<Issue>) -> Option<Status> {
    let path = "Subscription.status";
    match body["status"].as_str() {
        None => {
            issues.push(issue(
                Kind::Structure,
                "required",
                path,
                "status is required (requested, active or off)",
            ));
            None
        }
        Some(s) => match Status::parse(s) {
            Some(Status::Error) => {
                issues.push(issue(
                    Kind::Unsupported,
                    "value",
                    path,
                    "status 'error' is set by the server only; ask for requested, active or off",
                ));
                None
            }
            Some(st) => Some(st),
            None => {
                issues.push(issue(
                    Kind::Structure,
                    "value",
                    path,
                    format!(
                        "'{s}' is not a Subscription status (requested | active | error | off)"
                    ),
                ));
                None
            }
        },
    }
}

fn topic(body: &Value, issues: &mut Vec<Issue>) {
    let path = "Subscription.criteria";
    match body["criteria"].as_str() {
        None => issues.push(issue(
            Kind::Structure,
            "required",
            path,
            format!("criteria is required: the topic canonical {PAS_TOPIC}"),
        )),
        Some(c) if c.split('|').next() == Some(PAS_TOPIC) => {}
        Some(c) => issues.push(issue(
            Kind::Unsupported,
            "not-supported",
            path,
            format!("topic '{c}' is not supported; the only topic here is {PAS_TOPIC}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn valid() -> Value {
        json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "PAS updates for my organization",
            "criteria": PAS_TOPIC,
            "_criteria": {"extension": [{"url": FILTER_EXT, "valueString": "orgIdentifier=http://hl7.org/fhir/sid/us-npi|8189991234"}]},
            "channel": {
                "type": "rest-hook",
                "endpoint": "https://ehr.example.org/pas-notify",
                "payload": "application/fhir+json",
                "_payload": {"extension": [{"url": CONTENT_EXT, "valueCode": "full-resource"}]},
                "header": ["Authorization: Bearer abc"]
            }
        })
    }

    fn paths(body: &Value) -> Vec<String> {
        parse(body)
            .unwrap_err()
            .into_iter()
            .map(|i| i.path)
            .collect()
    }

    #[test]
    fn a_pas_subscription_parses() {
        let s = parse(&valid()).unwrap();
        assert_eq!(s.status, Status::Requested);
        assert_eq!(s.content, Content::FullResource);
        assert_eq!(s.endpoint.as_str(), "https://ehr.example.org/pas-notify");
        assert_eq!(s.headers.len(), 1);
        assert_eq!(s.headers[0].0.as_str(), "authorization");
        assert!(s.matches("http://hl7.org/fhir/sid/us-npi|8189991234"));
        assert!(!s.matches("http://hl7.org/fhir/sid/us-npi|81899912345"));
        assert!(!s.matches("urn:other|8189991234"));
    }

    #[test]
    fn other_topics_are_refused_naming_the_supported_one() {
        let mut b = valid();
        b["criteria"] = json!("http://example.org/SubscriptionTopic/admission");
        let issues = parse(&b).unwrap_err();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].kind, Kind::Unsupported);
        assert!(issues[0].message.contains(PAS_TOPIC), "{issues:?}");
        // A versioned canonical of the PAS topic is the PAS topic.
        b["criteria"] = json!(format!("{PAS_TOPIC}|2.0.1"));
        assert!(parse(&b).is_ok());
    }

    #[test]
    fn missing_parts_are_each_named() {
        let b = json!({"resourceType": "Subscription"});
        let p = paths(&b);
        for want in [
            "Subscription.status",
            "Subscription.reason",
            "Subscription.criteria",
            "Subscription.channel",
        ] {
            assert!(p.iter().any(|x| x == want), "{want} missing from {p:?}");
        }
        assert_eq!(
            parse(&json!({"resourceType": "Patient"})).unwrap_err()[0].path,
            "resourceType"
        );
    }

    #[test]
    fn channel_rules() {
        let mut b = valid();
        b["channel"]["type"] = json!("websocket");
        assert_eq!(paths(&b), ["Subscription.channel.type"]);
        let mut b = valid();
        b["channel"].as_object_mut().unwrap().remove("endpoint");
        assert_eq!(paths(&b), ["Subscription.channel.endpoint"]);
        let mut b = valid();
        b["channel"]["payload"] = json!("application/fhir+xml");
        assert_eq!(paths(&b), ["Subscription.channel.payload"]);
        let mut b = valid();
        b["channel"]["header"] = json!(["no colon here"]);
        assert_eq!(paths(&b), ["Subscription.channel.header"]);
        b["channel"]["header"] = json!(["Content-Type: text/plain"]);
        assert_eq!(paths(&b), ["Subscription.channel.header"]);
        let mut b = valid();
        b["channel"]["_payload"]["extension"][0]["valueCode"] = json!("everything");
        assert_eq!(parse(&b).unwrap_err().len(), 1);
    }

    #[test]
    fn content_defaults() {
        let mut b = valid();
        b["channel"].as_object_mut().unwrap().remove("_payload");
        assert_eq!(parse(&b).unwrap().content, Content::IdOnly);
        b["channel"].as_object_mut().unwrap().remove("payload");
        assert_eq!(parse(&b).unwrap().content, Content::Empty);
    }

    #[test]
    fn the_organization_filter_is_required() {
        let mut b = valid();
        b.as_object_mut().unwrap().remove("_criteria");
        assert_eq!(
            paths(&b),
            ["Subscription.criteria.extension('backport-filter-criteria')"]
        );
    }

    #[test]
    fn status_rules() {
        let mut b = valid();
        b["status"] = json!("error");
        assert_eq!(paths(&b), ["Subscription.status"]);
        b["status"] = json!("bogus");
        assert_eq!(paths(&b), ["Subscription.status"]);
        b["status"] = json!("off");
        assert_eq!(parse(&b).unwrap().status, Status::Off);
    }
}
