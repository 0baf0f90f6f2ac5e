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
    /// Whether the signed-in user is a patient (the consent portal link).
    pub patient: bool,
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
    /// The "Sign in with …" button, when federated sign-in is configured.
    pub federation: Option<FederatedSignIn>,
}

/// The federated sign-in button of the sign-in page.
#[derive(Debug, Clone)]
pub struct FederatedSignIn {
    /// Button text, e.g. `Sign in with Microsoft Entra ID`.
    pub label: String,
    /// `/login/federated?next=…` (query already encoded).
    pub href: String,
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

/// A page the signed-in user may not see yet: their sign-in lacks the
/// identity assurance it needs (issue 11), with the way to get it, if any.
#[derive(Template)]
#[template(path = "assurance.html")]
pub struct AssurancePage {
    /// Header.
    pub chrome: Chrome,
    /// Short heading.
    pub title: String,
    /// What is missing, for a person.
    pub message: String,
    /// Where to go to get it (sign in again, step up), if anywhere.
    pub action_href: Option<String>,
    /// The link's text.
    pub action_label: String,
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

/// One registered OAuth client in the admin list.
#[derive(Debug, Clone, Default)]
pub struct ClientRow {
    /// `client_id`.
    pub client_id: String,
    /// `client_name`.
    pub name: String,
    /// `public`, `confidential-symmetric` or `confidential-asymmetric`.
    pub client_type: String,
    /// `token_endpoint_auth_method`.
    pub auth_method: String,
    /// Registered grant types, comma-separated.
    pub grant_types: String,
    /// Registered scope.
    pub scope: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// `launch_url` (empty: none).
    pub launch_url: String,
}

/// One radio button or checkbox of a form.
#[derive(Debug, Clone)]
pub struct Choice {
    /// Form value (also the element id's suffix).
    pub value: String,
    /// What it means, in words.
    pub label: String,
    /// Whether it is selected.
    pub checked: bool,
}

/// The client registration form's values: blank, or as entered.
#[derive(Debug, Clone, Default)]
pub struct ClientForm {
    /// App name.
    pub name: String,
    /// Client types (radio buttons, value = `token_endpoint_auth_method`).
    pub types: Vec<Choice>,
    /// Redirect URIs, one per line.
    pub redirect_uris: String,
    /// Launch URL.
    pub launch_url: String,
    /// Scope.
    pub scope: String,
    /// Grant types (checkboxes).
    pub grants: Vec<Choice>,
    /// JWKS (JSON text).
    pub jwks: String,
    /// JWKS URI.
    pub jwks_uri: String,
}

/// `/admin`: the registered OAuth clients and the registration form.
#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    /// Header.
    pub chrome: Chrome,
    /// Registered clients, by name.
    pub clients: Vec<ClientRow>,
    /// The registration form.
    pub form: ClientForm,
    /// Why the last registration was refused.
    pub error: Option<String>,
    /// Form token.
    pub csrf: String,
}

/// `POST /admin/clients` succeeded: the new client's id and, for
/// confidential-symmetric clients, its secret (shown this once).
#[derive(Template)]
#[template(path = "admin_registered.html")]
pub struct ClientRegisteredPage {
    /// Header.
    pub chrome: Chrome,
    /// The client as registered.
    pub client: ClientRow,
    /// The client secret (symmetric clients only; never stored in clear).
    pub client_secret: Option<String>,
}

/// An authenticator being enrolled: the QR code and the secret to type.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// The `otpauth://` URI as an inline SVG QR code (generated here).
    pub qr_svg: String,
    /// The secret in base32, grouped by four, for typing by hand.
    pub secret: String,
}

/// `/account/security`: the user's second factor.
#[derive(Template)]
#[template(path = "security.html")]
pub struct SecurityPage {
    /// Header.
    pub chrome: Chrome,
    /// The session's form token.
    pub csrf: String,
    /// An authenticator is enrolled and confirmed.
    pub enrolled: bool,
    /// Unspent recovery codes.
    pub recovery_left: i64,
    /// Enrollment under way: scan, then confirm with a code.
    pub enrolling: Option<Enrollment>,
    /// Recovery codes, shown once right after enrollment.
    pub recovery_codes: Vec<String>,
    /// SMS and voice codes are offered (`[mfa.twilio]` is configured).
    pub phone_available: bool,
    /// The confirmed phone number, masked.
    pub phone: Option<String>,
    /// A number being added, masked: a code was sent to it.
    pub phone_enrolling: Option<String>,
    /// What went well (a phone confirmed).
    pub notice: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// `/stepup`: a fresh second factor before a sensitive operation.
#[derive(Template)]
#[template(path = "stepup.html")]
pub struct StepUpPage {
    /// Header.
    pub chrome: Chrome,
    /// The session's form token.
    pub csrf: String,
    /// Where to go back to (a local path).
    pub next: String,
    /// The user has a second factor (else: enroll first).
    pub enrolled: bool,
    /// The user has an authenticator app (the code form is offered).
    pub totp: bool,
    /// The confirmed phone number, masked, when SMS and voice codes are
    /// offered (the send buttons are shown).
    pub phone: Option<String>,
    /// A code was sent to the phone (`text message` or `voice call`): the
    /// form for it is shown.
    pub phone_sent: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}
