//! Subscriptions R5 Backport 1.1.0: the R4 Subscription profile.

use super::*;

const SUB: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription";

fn subscription() -> Value {
    json!({"resourceType": "Subscription", "status": "requested", "reason": "PAS updates",
        "criteria": "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic",
        "channel": {"type": "rest-hook", "endpoint": "https://provider.example.org/notify",
            "payload": "application/fhir+json"}})
}

/// One valid instance per Backport profile.
pub(super) fn valid() -> Vec<(String, Value)> {
    vec![(SUB.to_owned(), subscription())]
}

#[test]
fn the_topic_reason_and_channel_are_required() {
    let p = profile(SUB);
    for (field, path) in [
        ("criteria", "Subscription.criteria"),
        ("reason", "Subscription.reason"),
        ("channel", "Subscription.channel"),
    ] {
        let v = edit(subscription(), |v| {
            v.as_object_mut().unwrap().remove(field);
        });
        assert_one(p, &v, "required", path);
    }
}

#[test]
fn status_and_channel_type_are_bound() {
    let p = profile(SUB);
    let v = edit(subscription(), |v| v["status"] = json!("paused"));
    assert_one(p, &v, "code-invalid", "Subscription.status");
    let v = edit(subscription(), |v| {
        v["channel"]["type"] = json!("carrier-pigeon")
    });
    assert_one(p, &v, "code-invalid", "Subscription.channel.type");
}
