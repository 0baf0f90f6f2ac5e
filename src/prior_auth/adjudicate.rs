//! Automatic adjudication of a validated PAS request: the facts of each
//! Claim item (service codings, quantity, the Claim's diagnoses, attached
//! QuestionnaireResponses) judged by the payer [`Rules`], into per-item
//! [`Item`]s. Also the approval stamping shared with reviewer decisions.

use serde_json::Value;

use super::{
    rules::{codings, ItemFacts, Rules, Verdict},
    state::ItemState,
    store::Item,
};

/// What reviewer name automatic decisions carry.
pub const RULES_REVIEWER: &str = "rules";

/// The items of `claim`, adjudicated at `now_ms`; `answered`: the
/// Questionnaire canonicals the request documents (`documentation`).
pub fn adjudicate(
    rules: &Rules,
    request: &Value,
    answered: &[String],
    now_ms: i64,
    auth_prefix: &str,
    record_id: &str,
) -> Vec<Item> {
    let claim = &request["entry"][0]["resource"];
    let diagnoses: Vec<String> = claim["diagnosis"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| codings(&d["diagnosisCodeableConcept"]))
        .map(|(s, c)| format!("{s}|{c}"))
        .collect();
    claim["item"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, it)| {
            let services = codings(&it["productOrService"]);
            let facts = ItemFacts {
                services: services.clone(),
                quantity: it["quantity"]["value"].as_f64(),
                diagnoses: diagnoses.clone(),
                answered: answered.to_vec(),
            };
            let sequence = it["sequence"]
                .as_u64()
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or(i as u32 + 1);
            let mut item = Item {
                sequence,
                service: services
                    .first()
                    .map(|(s, c)| format!("{s}|{c}"))
                    .unwrap_or_default(),
                state: ItemState::Pended,
                decided_ms: None,
                reviewer: None,
                reason: None,
                questionnaire: None,
                auth_number: None,
                auth_start: None,
                auth_end: None,
            };
            match rules.judge(&facts) {
                Verdict::NotRequired => {
                    item.state = ItemState::NotRequired;
                    decided(&mut item, RULES_REVIEWER, now_ms);
                }
                Verdict::Approve => approve(
                    &mut item,
                    RULES_REVIEWER,
                    now_ms,
                    rules.approval_days,
                    auth_prefix,
                    record_id,
                ),
                Verdict::Deny(reason) => {
                    item.state = ItemState::Denied;
                    item.reason = Some(reason);
                    decided(&mut item, RULES_REVIEWER, now_ms);
                }
                Verdict::NeedsDoc(q) => item.questionnaire = Some(q),
                Verdict::Pend => {}
            }
            item
        })
        .collect()
}

fn decided(item: &mut Item, reviewer: &str, now_ms: i64) {
    item.decided_ms = Some(now_ms);
    item.reviewer = Some(reviewer.to_owned());
}

/// Marks an item approved at `now_ms`, with an authorization number and a
/// validity period of `days`.
pub fn approve(
    item: &mut Item,
    reviewer: &str,
    now_ms: i64,
    days: i64,
    prefix: &str,
    record_id: &str,
) {
    item.state = ItemState::Approved;
    item.reason = None;
    decided(item, reviewer, now_ms);
    let short: String = record_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect::<String>()
        .to_uppercase();
    item.auth_number = Some(format!("{prefix}-{short}-{}", item.sequence));
    item.auth_start = Some(date(now_ms));
    item.auth_end = Some(date(now_ms + days * 86_400_000));
}

/// `YYYY-MM-DD` of a millisecond timestamp (UTC).
pub fn date(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

/// FHIR instant of a millisecond timestamp (UTC).
pub fn instant(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
