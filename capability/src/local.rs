//! The resource types fhirgate serves itself, never from the store, as the
//! server implements them:
//!
//! - `AuditEvent`: read and search from the hash-chained ledger (server
//!   `audit::read`): `_id`, `patient`, `date`, `agent`, `entity-type`,
//!   `action`, `outcome`; writes are refused (405).
//! - `Subscription` (Subscriptions R5 Backport 1.1.0 on the PAS topic,
//!   server `subscriptions`): create, read, search by `_id` and `status`,
//!   update, delete, and `$status` (declared by [`crate::operations`]).

use crate::{
    embedded::definition,
    model::{Resource, SearchParam},
    operations::Features,
};

/// The one SubscriptionTopic the server offers (server
/// `subscriptions::model`).
pub const PAS_TOPIC: &str =
    "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic";

/// The R4 Backport Subscription profile every Subscription here follows.
pub const BACKPORT_SUBSCRIPTION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription";

/// Local types whose every request (operations included) the route stage
/// sends to their own module before any operation routing (server
/// `pipeline::handle_as` answers `AuditEvent` first), so operations
/// declared on every type (`$validate`) are not declared on them.
/// `Subscription` is not one: `$validate` is routed before it.
pub const CLOSED_TYPES: &[&str] = &["AuditEvent"];

/// Type names fhirgate answers itself under `features`.
pub fn types(features: &Features) -> Vec<&'static str> {
    let mut out = Vec::new();
    if features.audit_read {
        out.push("AuditEvent");
    }
    if features.subscriptions {
        out.push("Subscription");
    }
    out
}

fn params(rtype: &str, list: &[(&str, &str)]) -> Vec<SearchParam> {
    list.iter()
        .map(|(name, kind)| SearchParam {
            name: (*name).to_owned(),
            definition: definition(rtype, name),
            kind: (*kind).to_owned(),
        })
        .collect()
}

fn codes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The resource entries for the types of [`types`].
pub fn resources(features: &Features) -> Vec<Resource> {
    let mut out = Vec::new();
    if features.audit_read {
        let mut r = Resource::new("AuditEvent");
        r.interactions = codes(&["read", "search-type"]);
        r.search = params(
            "AuditEvent",
            &[
                ("_id", "token"),
                ("patient", "reference"),
                ("date", "date"),
                ("agent", "reference"),
                ("entity-type", "token"),
                ("action", "token"),
                ("outcome", "token"),
            ],
        );
        out.push(r);
    }
    if features.subscriptions {
        let mut r = Resource::new("Subscription");
        r.interactions = codes(&["read", "update", "delete", "create", "search-type"]);
        r.search = params("Subscription", &[("_id", "token"), ("status", "token")]);
        r.add_profile(BACKPORT_SUBSCRIPTION);
        r.topics.push(PAS_TOPIC.to_owned());
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_names_the_pas_topic_by_the_backport_extension() {
        let f = Features {
            subscriptions: true,
            ..Features::default()
        };
        let sub = resources(&f)
            .into_iter()
            .find(|r| r.rtype == "Subscription")
            .map(|r| r.to_json());
        let Some(sub) = sub else {
            panic!("Subscription not declared")
        };
        assert_eq!(
            sub["extension"],
            serde_json::json!([{
                "url": crate::model::TOPIC_CANONICAL_EXT,
                "valueCanonical": PAS_TOPIC
            }])
        );
        for c in ["create", "update", "delete"] {
            assert!(sub["interaction"]
                .as_array()
                .is_some_and(|a| a.iter().any(|i| i["code"] == c)));
        }
        assert!(resources(&Features::default()).is_empty());
    }
}
