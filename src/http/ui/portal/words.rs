//! A FHIR R4 `Consent` in plain words, read the way the consent engine
//! reads it (`consent` module docs): the root provision's `type` is the
//! base decision and nested provisions are exceptions to it.
//!
//! - root `permit` (or no type) with nested `deny`s: one sentence per
//!   exception, e.g. "The app “Growth Chart” may not see your mental-health
//!   records until 2027-01-31." or "Nobody may see your HIV records for
//!   research.";
//! - root `deny` with one nested `permit`: "Nobody may see your records
//!   except for treatment.", "Only Dr. Lee may see your records.";
//! - a root with conditions and no exceptions is one sentence of its own;
//! - deeper nesting is summarised ("with further exceptions").
//!
//! The root `period` is the Consent's validity: "until 2027-01-31", "from
//! … until …". Names come from `actor.reference.display`, else from
//! [`Names`] (registered apps, people and organizations the server looked
//! up), else the reference itself.

use std::collections::HashMap;

use serde_json::Value;

use super::vocab::{capitalize, label_words, list, purpose_words, type_words};

/// Display names by reference (`Device/<client_id>` → app name,
/// `Practitioner/7` → `Dr. Ada Lee`, …).
pub type Names = HashMap<String, String>;

/// The sentences of a Consent.
pub fn describe(consent: &Value, names: &Names) -> Vec<String> {
    let root = &consent["provision"];
    if !root.is_object() {
        return vec!["This consent states no rule of its own.".into()];
    }
    let when = period_words(&root["period"]);
    let children: Vec<&Value> = root["provision"]
        .as_array()
        .map(|a| a.iter().filter(|c| c.is_object()).collect())
        .unwrap_or_default();
    let root_type = root["type"].as_str();
    let root_has_conditions = Conditions::of(root, names).any();
    let mut out = Vec::new();
    if children.is_empty() {
        let c = Conditions::of(root, names);
        let s = match (root_type, c.any()) {
            (Some("deny"), _) => deny_sentence(&c, &when),
            (Some("permit"), false) => {
                format!("Your records may be shared as the usual rules allow{when}.")
            }
            (Some("permit"), true) => permit_sentence(&c, &when),
            _ => "This consent states no decision of its own.".to_owned(),
        };
        out.push(s);
        return out;
    }
    if root_has_conditions {
        let c = Conditions::of(root, names);
        out.push(match root_type {
            Some("deny") => deny_sentence(&c, &when),
            _ => permit_sentence(&c, &when),
        });
        for child in &children {
            let c = Conditions::of(child, names);
            let s = match child_type(child, root_type) {
                Some("deny") => deny_sentence(&c, ""),
                _ => permit_sentence(&c, ""),
            };
            out.push(format!("Except: {}", further(child, s)));
        }
        return out;
    }
    if root_type == Some("deny") {
        let permits: Vec<&Value> = children
            .iter()
            .copied()
            .filter(|c| child_type(c, root_type) == Some("permit"))
            .collect();
        if let [only] = permits.as_slice() {
            let c = Conditions::of(only, names);
            out.push(further(only, allow_only_sentence(&c, &when)));
        } else {
            out.push(format!(
                "Nobody may see your records{when}, except as follows."
            ));
            for child in &permits {
                let c = Conditions::of(child, names);
                out.push(further(child, permit_sentence(&c, "")));
            }
        }
        return out;
    }
    for child in &children {
        let c = Conditions::of(child, names);
        let s = match child_type(child, root_type) {
            Some("deny") => deny_sentence(&c, &when),
            _ => permit_sentence(&c, &when),
        };
        out.push(further(child, s));
    }
    out
}

/// A child's effective type: its own, else the opposite of its parent's.
fn child_type<'a>(child: &'a Value, parent: Option<&str>) -> Option<&'a str> {
    child["type"].as_str().or(match parent {
        Some("permit") => Some("deny"),
        Some("deny") => Some("permit"),
        _ => None,
    })
}

/// Marks a sentence whose provision has exceptions of its own.
fn further(p: &Value, sentence: String) -> String {
    let nested = p["provision"].as_array().is_some_and(|a| !a.is_empty());
    if nested {
        format!(
            "{} (with further exceptions)",
            sentence.trim_end_matches('.')
        ) + "."
    } else {
        sentence
    }
}

/// ` until 2027-01-31`, ` from 2026-01-01`, ` from … until …`, or empty.
pub fn period_words(period: &Value) -> String {
    let date = |k: &str| {
        period[k]
            .as_str()
            .map(|s| s.get(..10).unwrap_or(s).to_owned())
    };
    match (date("start"), date("end")) {
        (Some(s), Some(e)) => format!(" from {s} until {e}"),
        (Some(s), None) => format!(" from {s}"),
        (None, Some(e)) => format!(" until {e}"),
        (None, None) => String::new(),
    }
}

/// The conditions one provision states, in words.
#[derive(Debug, Default)]
struct Conditions {
    /// Actors (`the app “X”`, `Dr. Lee`).
    who: Vec<String>,
    /// Label words (`mental-health`).
    labels: Vec<String>,
    /// Resource types in words.
    classes: Vec<String>,
    /// Specific codes named.
    codes: bool,
    /// Specific records named.
    data: Vec<String>,
    /// Clinical time range, in words.
    data_period: String,
    /// Purposes (`for treatment`).
    purposes: Vec<String>,
    /// Only writes (`collect`/`correct`) are governed.
    writes_only: bool,
}

impl Conditions {
    fn of(p: &Value, names: &Names) -> Self {
        let arr = |k: &str| p[k].as_array().cloned().unwrap_or_default();
        let who = arr("actor")
            .iter()
            .filter_map(|a| actor_words(&a["reference"], names))
            .collect();
        let labels = arr("securityLabel")
            .iter()
            .filter_map(|c| c["code"].as_str().map(label_words))
            .collect();
        let classes = arr("class")
            .iter()
            .filter_map(|c| c["code"].as_str().map(type_words))
            .collect();
        let purposes = arr("purpose")
            .iter()
            .filter_map(|c| c["code"].as_str().map(purpose_words))
            .collect();
        let data = arr("data")
            .iter()
            .filter_map(|d| d["reference"]["reference"].as_str().map(str::to_owned))
            .collect();
        let actions: Vec<String> = arr("action")
            .iter()
            .flat_map(|a| a["coding"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["code"].as_str().map(str::to_owned))
            .collect();
        let writes_only = !actions.is_empty()
            && actions
                .iter()
                .all(|a| a.as_str() == "collect" || a.as_str() == "correct");
        let dp = period_words(&p["dataPeriod"]);
        Self {
            who,
            labels,
            classes,
            codes: !arr("code").is_empty(),
            data,
            data_period: if dp.is_empty() {
                String::new()
            } else {
                format!(" dated{dp}")
            },
            purposes,
            writes_only,
        }
    }

    /// Whether any condition besides the period is stated.
    fn any(&self) -> bool {
        !self.who.is_empty() || self.restricts_data() || !self.purposes.is_empty()
    }

    /// Whether the records are narrowed (labels, types, codes, items, dates).
    fn restricts_data(&self) -> bool {
        !self.labels.is_empty()
            || !self.classes.is_empty()
            || self.codes
            || !self.data.is_empty()
            || !self.data_period.is_empty()
    }

    /// `your mental-health records`, `your HIV test results and measurements`, ….
    fn what(&self) -> String {
        let mut s = if !self.data.is_empty() {
            format!("the records {}", list(&self.data, "and"))
        } else {
            let kinds = if self.classes.is_empty() {
                "records".to_owned()
            } else {
                list(&self.classes, "and")
            };
            if self.labels.is_empty() {
                format!("your {kinds}")
            } else {
                format!("your {} {kinds}", list(&self.labels, "and"))
            }
        };
        if self.codes {
            s.push_str(" with the specific codes this consent lists");
        }
        s.push_str(&self.data_period);
        s
    }

    /// ` for treatment or payment`, or empty.
    fn why(&self) -> String {
        if self.purposes.is_empty() {
            String::new()
        } else {
            format!(" {}", list(&self.purposes, "or"))
        }
    }

    /// `see` or `add to or change`.
    fn verb(&self) -> &'static str {
        if self.writes_only {
            "add to or change"
        } else {
            "see"
        }
    }

    /// `the app “X” or Dr. Lee`.
    fn who(&self) -> Option<String> {
        (!self.who.is_empty()).then(|| list(&self.who, "or"))
    }
}

/// `The app “X”`, `Dr. Lee`, `Organization/3` for an actor reference.
fn actor_words(r: &Value, names: &Names) -> Option<String> {
    let reference = r["reference"].as_str()?;
    let display = r["display"]
        .as_str()
        .filter(|d| !d.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| names.get(reference).cloned());
    Some(match (reference.strip_prefix("Device/"), display) {
        (Some(_), Some(d)) => format!("the app “{d}”"),
        (Some(id), None) => format!("the app {id}"),
        (None, Some(d)) => d,
        (None, None) => reference.to_owned(),
    })
}

/// "X may not see Y for Z until D." / "Nobody may see Y …".
fn deny_sentence(c: &Conditions, when: &str) -> String {
    let (what, why, verb) = (c.what(), c.why(), c.verb());
    match c.who() {
        Some(who) => capitalize(&format!("{who} may not {verb} {what}{why}{when}.")),
        None => format!("Nobody may {verb} {what}{why}{when}."),
    }
}

/// "X may see Y for Z." / "Anyone may see Y for Z."
fn permit_sentence(c: &Conditions, when: &str) -> String {
    let (what, why, verb) = (c.what(), c.why(), c.verb());
    match c.who() {
        Some(who) => capitalize(&format!("{who} may {verb} {what}{why}{when}.")),
        None => format!("Anyone may {verb} {what}{why}{when}."),
    }
}

/// The one exception of a root deny.
fn allow_only_sentence(c: &Conditions, when: &str) -> String {
    let (why, verb) = (c.why(), c.verb());
    match c.who() {
        Some(who) if !c.restricts_data() && why.is_empty() => {
            format!("Only {who} may {verb} your records{when}.")
        }
        Some(who) => format!(
            "Nobody may {verb} your records{when}, except that {who} may {verb} {}{why}.",
            c.what()
        ),
        None if !c.any() => format!("Anyone may {verb} your records{when}."),
        None => {
            let mut parts = Vec::new();
            if c.restricts_data() {
                parts.push(c.what());
            }
            if !why.is_empty() {
                parts.push(why.trim_start().to_owned());
            }
            format!(
                "Nobody may {verb} your records except {}{when}.",
                parts.join(" ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Names {
        let mut n = Names::new();
        n.insert("Device/gc".into(), "Growth Chart".into());
        n.insert("Practitioner/7".into(), "Dr. Ada Lee".into());
        n
    }

    fn actor(r: &str) -> Value {
        json!({"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": r}})
    }

    #[test]
    fn deny_an_app_a_category_until_a_date() {
        let c = json!({"provision": {"type": "permit", "period": {"end": "2027-01-31"},
            "provision": [{"type": "deny", "actor": [actor("Device/gc")],
                "securityLabel": [{"code": "MH"}]}]}});
        assert_eq!(
            describe(&c, &names()),
            ["The app “Growth Chart” may not see your mental-health records until 2027-01-31."]
        );
    }

    #[test]
    fn deny_a_category_for_everyone_and_a_purpose() {
        let c = json!({"provision": {"type": "permit",
            "provision": [{"type": "deny", "securityLabel": [{"code": "HIV"}, {"code": "SUD"}],
                "purpose": [{"code": "HRESCH"}, {"code": "HPAYMT"}]}]}});
        assert_eq!(
            describe(&c, &names()),
            ["Nobody may see your HIV and substance-use records for research or for payment."]
        );
    }

    #[test]
    fn allow_only_a_purpose_or_a_person() {
        let c = json!({"provision": {"type": "deny",
            "provision": [{"type": "permit", "purpose": [{"code": "TREAT"}]}]}});
        assert_eq!(
            describe(&c, &names()),
            ["Nobody may see your records except for treatment."]
        );
        let c = json!({"provision": {"type": "deny", "period": {"end": "2026-05-01"},
            "provision": [{"type": "permit", "actor": [actor("Practitioner/7")]}]}});
        assert_eq!(
            describe(&c, &names()),
            ["Only Dr. Ada Lee may see your records until 2026-05-01."]
        );
        let c = json!({"provision": {"type": "deny",
            "provision": [{"type": "permit", "actor": [{"reference":
                {"reference": "Organization/o1", "display": "Riverside Clinic"}}],
                "securityLabel": [{"code": "HIV"}], "purpose": [{"code": "TREAT"}]}]}});
        assert_eq!(
            describe(&c, &names()),
            ["Nobody may see your records, except that Riverside Clinic may see your HIV records for treatment."]
        );
    }

    #[test]
    fn whole_record_decisions_and_oddities() {
        assert_eq!(
            describe(&json!({"provision": {"type": "deny"}}), &names()),
            ["Nobody may see your records."]
        );
        assert_eq!(
            describe(&json!({"status": "active"}), &names()),
            ["This consent states no rule of its own."]
        );
        let c = json!({"provision": {"type": "permit",
            "provision": [{"actor": [actor("Organization/unknown")], "class": [{"code": "Observation"}],
                "provision": [{"type": "permit"}]}]}});
        assert_eq!(
            describe(&c, &names()),
            ["Organization/unknown may not see your test results and measurements (with further exceptions)."]
        );
        let c = json!({"provision": {"type": "deny", "period": {"start": "2025-01-01T00:00:00Z", "end": "2025-12-31"}}});
        assert_eq!(
            describe(&c, &names()),
            ["Nobody may see your records from 2025-01-01 until 2025-12-31."]
        );
    }
}
