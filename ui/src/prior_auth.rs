//! The prior-authorization review queue (`/admin/prior-auth`): the page
//! struct and its rows (pended requests with decision and extension forms,
//! denied ones with an appeal form). The server decides the words
//! (`http::ui::prior_auth`); the template only lays them out.

use askama::Template;

use crate::pages::Chrome;

/// One item of a pended request.
#[derive(Debug, Clone, Default)]
pub struct PaItemRow {
    /// `Claim.item.sequence` (the forms post it).
    pub sequence: u32,
    /// `system|code` of the service.
    pub service: String,
    /// Its state in words (`pended`, `approved`, …).
    pub state: String,
    /// Whether it awaits a decision (the Approve / Deny forms are shown).
    pub pended: bool,
    /// Whether it was denied (an appeal can be recorded).
    pub denied: bool,
}

/// One pended request.
#[derive(Debug, Clone, Default)]
pub struct PaRequestRow {
    /// Our id (the ClaimResponse id).
    pub id: String,
    /// The member identifier.
    pub patient: String,
    /// The requesting organization, or `none recorded`.
    pub organization: String,
    /// The submitting OAuth client.
    pub client_id: String,
    /// `expedited` or `standard`.
    pub urgency: String,
    /// When it was received (RFC 3339).
    pub received: String,
    /// Its decision deadline (RFC 3339).
    pub deadline: String,
    /// Whether it is past its deadline.
    pub overdue: bool,
    /// Whether its timeframe was extended (once is the most).
    pub extended: bool,
    /// Its items.
    pub items: Vec<PaItemRow>,
}

/// `/admin/prior-auth`: pended requests, oldest deadline first.
#[derive(Template)]
#[template(path = "prior_auth.html")]
pub struct PriorAuthQueuePage {
    /// Header.
    pub chrome: Chrome,
    /// Pended requests.
    pub requests: Vec<PaRequestRow>,
    /// Recently decided requests with a denied item (an appeal can be
    /// recorded on them), newest decision first.
    pub appealable: Vec<PaRequestRow>,
    /// The longest extension a reviewer may give, days.
    pub max_extension_days: i64,
    /// What the last decision did, if the page follows one.
    pub notice: Option<String>,
    /// Why the last decision was refused (the page is shown with 4xx).
    pub error: Option<String>,
    /// Form token.
    pub csrf: String,
}
