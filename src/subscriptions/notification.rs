//! Notification Bundles (Subscriptions R5 Backport IG 1.1.0, "Notifications"
//! for R4): a Bundle of type `history` whose first entry is a `Parameters`
//! SubscriptionStatus (`backport-subscription-status-r4`), with a `GET
//! …/Subscription/{id}/$status` request; for `full-resource` content the
//! focus follows as a second entry. Pure.

use serde_json::{json, Value};

use super::model::{Content, PAS_TOPIC};
use super::state::Status;

/// Profile of the notification Bundle.
pub const NOTIFICATION_PROFILE: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4";
/// Profile of the SubscriptionStatus Parameters.
pub const STATUS_PROFILE: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4";

/// `SubscriptionStatus.type` (backport notification type codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sent when a subscription is created or re-requested.
    Handshake,
    /// An event on the topic.
    EventNotification,
    /// The answer to `$status`.
    QueryStatus,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::EventNotification => "event-notification",
            Self::QueryStatus => "query-status",
        }
    }
}

/// One event of a notification.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its number (`event-number`).
    pub number: i64,
    /// When it happened (FHIR instant).
    pub timestamp: String,
    /// The focus's full URL (`{base}/ClaimResponse/{id}`).
    pub focus_url: String,
    /// The focus resource (sent for `full-resource`).
    pub focus: Value,
}

/// What the SubscriptionStatus says about the subscription.
#[derive(Debug, Clone)]
pub struct About<'a> {
    /// FHIR base of this server.
    pub base: &'a str,
    /// Subscription id.
    pub id: &'a str,
    /// Its status at sending time.
    pub status: Status,
    /// `events-since-subscription-start`.
    pub events_since_start: i64,
    /// Its payload content.
    pub content: Content,
    /// Why it is in error, if it is.
    pub error: Option<&'a str>,
}

/// The SubscriptionStatus `Parameters` resource.
pub fn status_parameters(about: &About<'_>, kind: Kind, event: Option<&Event>) -> Value {
    let mut p = vec![
        json!({"name": "subscription", "valueReference": {"reference": format!("{}/Subscription/{}", about.base, about.id)}}),
        json!({"name": "topic", "valueCanonical": PAS_TOPIC}),
        json!({"name": "status", "valueCode": about.status.as_str()}),
        json!({"name": "type", "valueCode": kind.as_str()}),
        json!({"name": "events-since-subscription-start", "valueString": about.events_since_start.to_string()}),
    ];
    if let Some(e) = event {
        let mut parts = vec![
            json!({"name": "event-number", "valueString": e.number.to_string()}),
            json!({"name": "timestamp", "valueInstant": e.timestamp}),
        ];
        if about.content != Content::Empty {
            parts.push(json!({"name": "focus", "valueReference": {"reference": e.focus_url}}));
        }
        p.push(json!({"name": "notification-event", "part": parts}));
    }
    if let Some(why) = about.error {
        p.push(json!({"name": "error", "valueCodeableConcept": {"text": why}}));
    }
    json!({
        "resourceType": "Parameters",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": p,
    })
}

/// A notification Bundle (handshake or event) sent at `now` (FHIR instant).
pub fn bundle(about: &About<'_>, kind: Kind, event: Option<&Event>, now: &str) -> Value {
    let status = status_parameters(about, kind, event);
    let mut entries = vec![json!({
        "fullUrl": format!("urn:uuid:{}", status["id"].as_str().unwrap_or_default()),
        "resource": status,
        "request": {"method": "GET", "url": format!("{}/Subscription/{}/$status", about.base, about.id)},
        "response": {"status": "200"},
    })];
    if let (Some(e), Content::FullResource) = (event, about.content) {
        let rtype = e.focus["resourceType"].as_str().unwrap_or("ClaimResponse");
        let id = e.focus["id"].as_str().unwrap_or_default();
        entries.push(json!({
            "fullUrl": e.focus_url,
            "resource": e.focus,
            "request": {"method": "GET", "url": format!("{rtype}/{id}")},
            "response": {"status": "200"},
        }));
    }
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": now,
        "entry": entries,
    })
}

/// The `$status` answer: a searchset Bundle with one SubscriptionStatus.
pub fn status_bundle(about: &About<'_>, now: &str) -> Value {
    let status = status_parameters(about, Kind::QueryStatus, None);
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "timestamp": now,
        "total": 1,
        "entry": [{
            "fullUrl": format!("urn:uuid:{}", status["id"].as_str().unwrap_or_default()),
            "resource": status,
            "search": {"mode": "match"},
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(content: Content) -> About<'static> {
        About {
            base: "https://gw.example/fhir",
            id: "s1",
            status: Status::Active,
            events_since_start: 2,
            content,
            error: None,
        }
    }

    fn event() -> Event {
        Event {
            number: 2,
            timestamp: "2026-11-23T00:00:00.000Z".into(),
            focus_url: "https://gw.example/fhir/ClaimResponse/cr1".into(),
            focus: json!({"resourceType": "ClaimResponse", "id": "cr1"}),
        }
    }

    fn param<'a>(p: &'a Value, name: &str) -> &'a Value {
        p["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn handshake_has_no_event_and_zero_events() {
        let mut a = about(Content::IdOnly);
        a.status = Status::Requested;
        a.events_since_start = 0;
        let b = bundle(&a, Kind::Handshake, None, "2026-11-23T00:00:00.000Z");
        assert_eq!(b["type"], "history");
        assert_eq!(b["entry"].as_array().unwrap().len(), 1);
        let p = &b["entry"][0]["resource"];
        assert_eq!(p["resourceType"], "Parameters");
        assert_eq!(param(p, "type")["valueCode"], "handshake");
        assert_eq!(param(p, "status")["valueCode"], "requested");
        assert_eq!(param(p, "topic")["valueCanonical"], PAS_TOPIC);
        assert_eq!(
            param(p, "events-since-subscription-start")["valueString"],
            "0"
        );
        assert!(param(p, "notification-event").is_null());
        assert_eq!(
            b["entry"][0]["request"]["url"],
            "https://gw.example/fhir/Subscription/s1/$status"
        );
    }

    #[test]
    fn id_only_event_references_the_focus() {
        let b = bundle(
            &about(Content::IdOnly),
            Kind::EventNotification,
            Some(&event()),
            "t",
        );
        assert_eq!(b["entry"].as_array().unwrap().len(), 1);
        let ev = param(&b["entry"][0]["resource"], "notification-event");
        assert_eq!(ev["part"][0]["valueString"], "2");
        assert_eq!(
            ev["part"][2]["valueReference"]["reference"],
            "https://gw.example/fhir/ClaimResponse/cr1"
        );
    }

    #[test]
    fn full_resource_event_carries_the_focus() {
        let b = bundle(
            &about(Content::FullResource),
            Kind::EventNotification,
            Some(&event()),
            "t",
        );
        assert_eq!(b["entry"][1]["resource"]["id"], "cr1");
        assert_eq!(
            b["entry"][1]["fullUrl"],
            "https://gw.example/fhir/ClaimResponse/cr1"
        );
        assert_eq!(b["entry"][1]["request"]["url"], "ClaimResponse/cr1");
    }

    #[test]
    fn empty_event_has_neither_focus_nor_resource() {
        let b = bundle(
            &about(Content::Empty),
            Kind::EventNotification,
            Some(&event()),
            "t",
        );
        assert_eq!(b["entry"].as_array().unwrap().len(), 1);
        let ev = param(&b["entry"][0]["resource"], "notification-event");
        assert_eq!(ev["part"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn status_query_is_a_searchset() {
        let b = status_bundle(&about(Content::IdOnly), "t");
        assert_eq!(b["type"], "searchset");
        let p = &b["entry"][0]["resource"];
        assert_eq!(param(p, "type")["valueCode"], "query-status");
    }
}
