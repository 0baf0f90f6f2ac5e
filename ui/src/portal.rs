//! The patient consent portal (`/portal`): the page struct and its rows.
//! Everything here is already in plain words; the server decides the words
//! (`http::ui::portal`), the template only lays them out.

use askama::Template;

use crate::pages::{Choice, Chrome};

/// One of the patient's Consents, in words.
#[derive(Debug, Clone, Default)]
pub struct ConsentRow {
    /// `Consent.id` (the Revoke form posts to it).
    pub id: String,
    /// What it says, one sentence per rule.
    pub sentences: Vec<String>,
    /// `Active`, `Revoked`, `Expired`, `Starts on …`, ….
    pub status: String,
    /// Whether it is in force now (the row is highlighted).
    pub in_force: bool,
    /// Whether it can be revoked (status `active`).
    pub revocable: bool,
    /// When it was given (date), if recorded.
    pub given: String,
}

/// One entry of a drop-down list.
#[derive(Debug, Clone, Default)]
pub struct OptionItem {
    /// Form value.
    pub value: String,
    /// What the user sees.
    pub label: String,
    /// Whether it is selected.
    pub selected: bool,
}

/// The grant form's values: blank, or as entered.
#[derive(Debug, Clone, Default)]
pub struct ConsentForm {
    /// `deny` or `allow` (radio buttons).
    pub decisions: Vec<Choice>,
    /// Registered apps (`Device/<client_id>`), by name; the first is "any app".
    pub apps: Vec<OptionItem>,
    /// Organizations known to the server (`Organization/<id>`).
    pub organizations: Vec<OptionItem>,
    /// Practitioners known to the server (`Practitioner/<id>`).
    pub practitioners: Vec<OptionItem>,
    /// Whether the organization/practitioner list could be loaded.
    pub parties_loaded: bool,
    /// A typed reference (`Organization/x`, `Practitioner/y`).
    pub reference: String,
    /// Sensitive categories (checkboxes).
    pub categories: Vec<Choice>,
    /// Purposes of use (checkboxes).
    pub purposes: Vec<Choice>,
    /// End date (`YYYY-MM-DD`, empty: no end).
    pub end: String,
    /// Today (`YYYY-MM-DD`), the earliest end date offered.
    pub today: String,
}

/// One line of "Who looked at my record".
#[derive(Debug, Clone, Default)]
pub struct AccessLine {
    /// When, e.g. `2025-11-22 19:57 UTC`.
    pub when: String,
    /// Who: a person's name, `You`, or `An app (no user)`.
    pub who: String,
    /// Through which app.
    pub app: String,
    /// What was done, e.g. `Looked at test results and measurements`.
    pub what: String,
    /// Why (purpose of use, in words; empty: none stated).
    pub purpose: String,
    /// `Allowed`, `Refused`, `Failed`.
    pub outcome: String,
    /// Emergency access (break-the-glass).
    pub emergency: bool,
}

/// `/portal`: the signed-in patient's privacy choices, the grant form and
/// the access history.
#[derive(Template)]
#[template(path = "portal.html")]
pub struct PortalPage {
    /// Header.
    pub chrome: Chrome,
    /// The patient's name as the record has it.
    pub patient_name: String,
    /// What was just done, in words (after a grant or revoke).
    pub notice: Option<String>,
    /// The sentences of the Consent just saved or revoked.
    pub notice_detail: Vec<String>,
    /// Why the last form was refused.
    pub error: Option<String>,
    /// The patient's Consents: in force first, then the rest.
    pub consents: Vec<ConsentRow>,
    /// What applies without any choice (the deployment's base policy), in words.
    pub default_policy: String,
    /// The grant form.
    pub form: ConsentForm,
    /// Who accessed the record, newest first.
    pub history: Vec<AccessLine>,
    /// Why the history is empty or incomplete, if it is.
    pub history_note: Option<String>,
    /// Form token.
    pub csrf: String,
    /// The receipt of the change just made.
    pub receipt: Option<ConsentReceipt>,
    /// Whether the patient's data enters de-identified research exports.
    pub research: ResearchChoice,
}

/// The research section: where the patient stands and the button to change it.
#[derive(Debug, Clone)]
pub struct ResearchChoice {
    /// Included now (the button offers to leave).
    pub included: bool,
    /// Where the patient stands, in words.
    pub status: String,
    /// Why, and what de-identified means.
    pub explained: String,
}

/// A consent receipt as the portal shows it.
#[derive(Debug, Clone)]
pub struct ConsentReceipt {
    /// Receipt id (the download link).
    pub id: String,
    /// `Consent/<id>/_history/<vid>`.
    pub consent: String,
    /// Ledger sequence number of the write.
    pub seq: u64,
    /// Merkle root the proof leads to (hex).
    pub root: String,
    /// What the proof is against, in words.
    pub against: String,
}
