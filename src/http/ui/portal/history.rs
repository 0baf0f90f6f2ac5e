//! "Who looked at my record": the audit ledger's rows about the patient
//! (`audit::read::history_for_patient`, newest first) in plain words.

use crate::audit::AccessRow;

use super::{
    vocab::{any_purpose, list, type_words},
    words::Names,
    PORTAL_CLIENT,
};

/// One ledger row in words. `me` is the patient's own `Patient/<id>`.
pub fn line(row: &AccessRow, me: &str, names: &Names) -> ui::AccessLine {
    let who = match row.who.as_deref() {
        Some(w) if w == me => "You".to_owned(),
        Some(w) => {
            let name = names.get(w).cloned().unwrap_or_else(|| w.to_owned());
            match row.role.as_deref() {
                Some(role) if !role.is_empty() && role != "patient" => format!("{name} ({role})"),
                _ => name,
            }
        }
        None => "An app acting on its own (no person signed in)".to_owned(),
    };
    let app = match row.client.as_deref() {
        Some(PORTAL_CLIENT) => "This privacy portal".to_owned(),
        Some(c) => names
            .get(&format!("Device/{c}"))
            .cloned()
            .unwrap_or_else(|| c.to_owned()),
        None => "—".to_owned(),
    };
    let types: Vec<String> = row.resource_types.iter().map(|t| type_words(t)).collect();
    let things = if types.is_empty() {
        "your record".to_owned()
    } else {
        list(&types, "and")
    };
    let verb = match row.interaction.as_deref() {
        Some("read" | "vread") => "Looked at",
        Some(s) if s.starts_with("search") => "Searched",
        Some(s) if s.starts_with("history") => "Looked at the history of",
        Some("create") => "Added",
        Some("update" | "patch") => "Changed",
        Some("delete") => "Deleted",
        Some("batch" | "transaction") => "Sent a batch of requests about",
        Some("operation") => "Ran an operation on",
        _ => "Used",
    };
    let purposes: Vec<String> = row
        .purpose
        .iter()
        .map(|p| match any_purpose(p) {
            Some(t) => t.label.to_owned(),
            None => p.clone(),
        })
        .collect();
    let outcome = match row.outcome.as_str() {
        "0" => "Allowed",
        "4" => "Refused",
        _ => "Failed",
    };
    ui::AccessLine {
        when: when(&row.when),
        who,
        app,
        what: format!("{verb} {things}"),
        purpose: list(&purposes, "and"),
        outcome: outcome.to_owned(),
        emergency: row.break_glass,
    }
}

/// `2025-11-22 19:57 UTC` from a FHIR instant (as given when it is not one).
pub fn when(instant: &str) -> String {
    match (instant.get(..10), instant.get(11..16)) {
        (Some(d), Some(t)) if instant.ends_with('Z') || instant.ends_with("+00:00") => {
            format!("{d} {t} UTC")
        }
        _ => instant.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AccessRow {
        AccessRow {
            seq: 7,
            when: "2025-11-22T19:57:03.120Z".into(),
            who: Some("Practitioner/7".into()),
            role: Some("clinician".into()),
            client: Some("ehr".into()),
            interaction: Some("search-type".into()),
            resource_types: vec!["Condition".into(), "Observation".into()],
            purpose: vec!["TREAT".into()],
            outcome: "0".into(),
            break_glass: false,
        }
    }

    #[test]
    fn rows_read_as_words() {
        let mut names = Names::new();
        names.insert("Practitioner/7".into(), "Dr. Ada Lee".into());
        names.insert("Device/ehr".into(), "Clinic EHR".into());
        let l = line(&row(), "Patient/p1", &names);
        assert_eq!(l.when, "2025-11-22 19:57 UTC");
        assert_eq!(l.who, "Dr. Ada Lee (clinician)");
        assert_eq!(l.app, "Clinic EHR");
        assert_eq!(
            l.what,
            "Searched conditions and diagnoses and test results and measurements"
        );
        assert_eq!(l.purpose, "Treatment: your care");
        assert_eq!(l.outcome, "Allowed");

        let mut own = row();
        own.who = Some("Patient/p1".into());
        own.client = Some(PORTAL_CLIENT.into());
        own.interaction = Some("create".into());
        own.resource_types = vec!["Consent".into()];
        own.outcome = "4".into();
        let l = line(&own, "Patient/p1", &Names::new());
        assert_eq!(
            (l.who.as_str(), l.app.as_str()),
            ("You", "This privacy portal")
        );
        assert_eq!(l.what, "Added privacy choices");
        assert_eq!(l.outcome, "Refused");

        let mut system = row();
        system.who = None;
        system.client = None;
        system.resource_types.clear();
        let l = line(&system, "Patient/p1", &Names::new());
        assert!(l.who.starts_with("An app acting on its own"));
        assert_eq!(l.what, "Searched your record");
        assert_eq!(when("yesterday"), "yesterday");
    }
}
