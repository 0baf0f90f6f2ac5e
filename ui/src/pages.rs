//! One askama template struct per page, and the rows they list. Every page
//! carries a [`Chrome`] (the header: who is signed in, and the sign-out
//! form's token). Templates escape every value (askama's HTML escaping).

use askama::Template;

/// The header every page shows.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// Display name of the signed-in user, if any.
    pub signed_in_as: Option<String>,
    /// Form token for the sign-out button (signed in only).
    pub csrf: String,
}

/// `/`: what this server is and where to go.
#[derive(Template)]
#[template(path = "landing.html")]
pub struct LandingPage {
    /// Header.
    pub chrome: Chrome,
    /// The FHIR base URL as published.
    pub fhir_base: String,
}

/// `/login`: the sign-in form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// Header.
    pub chrome: Chrome,
    /// Where to go after signing in (a local path; re-checked on POST).
    pub next: String,
    /// The form token (keyed with the pre-session cookie).
    pub csrf: String,
    /// The name typed last time (kept after a failed attempt).
    pub username: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// Any failure: a readable page with the status and what to do.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Header.
    pub chrome: Chrome,
    /// HTTP status code shown.
    pub status: u16,
    /// Short heading.
    pub title: String,
    /// What happened, for a person.
    pub message: String,
}

/// One patient in a picker.
#[derive(Debug, Clone, Default)]
pub struct PatientRow {
    /// Logical id.
    pub id: String,
    /// Display name ("Family, Given").
    pub name: String,
    /// `birthDate`, as recorded.
    pub birth_date: String,
    /// `gender`.
    pub gender: String,
}

/// A hidden form field.
#[derive(Debug, Clone)]
pub struct Hidden {
    /// Field name.
    pub name: String,
    /// Field value.
    pub value: String,
}

/// A patient picker (for a standalone launch and for the EHR launcher):
/// one row per patient, each with a `Select` button.
#[derive(Template)]
#[template(path = "picker.html")]
pub struct PickerPage {
    /// Header.
    pub chrome: Chrome,
    /// Page heading.
    pub heading: String,
    /// One sentence on why a patient is needed.
    pub intro: String,
    /// Where the `Select` and search forms go (GET).
    pub action: String,
    /// Fields every form repeats (e.g. the pending request id).
    pub hidden: Vec<Hidden>,
    /// The name filter typed.
    pub query: String,
    /// The patients found.
    pub patients: Vec<PatientRow>,
    /// Why the list could not be loaded, if it could not.
    pub search_error: Option<String>,
}

/// One way to narrow a resource scope (a radio button).
#[derive(Debug, Clone)]
pub struct Narrowing {
    /// Form value (`all`, `laboratory`, …).
    pub key: String,
    /// What it means, in words.
    pub label: String,
    /// The scope this choice grants.
    pub scope: String,
}

/// One line of the authorization page: a checkbox for one or more
/// requested scopes explained in words.
#[derive(Debug, Clone)]
pub struct ScopeItem {
    /// Form value of the checkbox (the item's position).
    pub index: usize,
    /// The explanation.
    pub words: String,
    /// The scopes as requested, for the curious.
    pub scopes: String,
    /// Narrowing choices (empty: none offered); the first is "all".
    pub narrowings: Vec<Narrowing>,
}

/// `/auth/continue`: the app authorization page.
#[derive(Template)]
#[template(path = "approve.html")]
pub struct ApprovalPage {
    /// Header.
    pub chrome: Chrome,
    /// The app asking.
    pub app_name: String,
    /// The patient the grant is about, if any.
    pub patient: Option<PatientRow>,
    /// Whether the signed-in user is that patient (wording).
    pub patient_is_self: bool,
    /// The requested scopes, explained.
    pub items: Vec<ScopeItem>,
    /// Pending request id.
    pub req: String,
    /// Picked patient id carried to the POST (empty: none).
    pub patient_id: String,
    /// Form token.
    pub csrf: String,
}

/// One encounter of the launcher's patient.
#[derive(Debug, Clone, Default)]
pub struct EncounterRow {
    /// Logical id.
    pub id: String,
    /// Start date.
    pub date: String,
    /// Type or class, in words.
    pub kind: String,
    /// `status`.
    pub status: String,
}

/// An app the launcher can start (a client with a `launch_url`).
#[derive(Debug, Clone, Default)]
pub struct AppOption {
    /// `client_id`.
    pub client_id: String,
    /// `client_name`.
    pub name: String,
}

/// `/launcher` once a patient is picked: encounter and app, then `Launch`.
#[derive(Template)]
#[template(path = "launcher.html")]
pub struct LauncherPage {
    /// Header.
    pub chrome: Chrome,
    /// The patient picked.
    pub patient: PatientRow,
    /// That patient's encounters (newest first).
    pub encounters: Vec<EncounterRow>,
    /// Why the encounters could not be listed, if they could not.
    pub encounter_error: Option<String>,
    /// Registered apps with a launch URL.
    pub apps: Vec<AppOption>,
    /// Form token.
    pub csrf: String,
}
