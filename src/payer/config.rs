//! `[payer]`: configuration of the payer APIs (CMS-0057-F Provider Access
//! and Payer-to-Payer).
//!
//! ```toml
//! [payer]
//! member_identifier_system = "https://acmehealthplan.example.org/umb"
//! match_failure_limit = 10          # failed $member-match per client ...
//! match_failure_window_seconds = 600 # ... within this window, then 429
//! provider_clients = { "clinic-backend" = "Organization/org-riverside-clinic" }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `[payer]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerConfig {
    /// `Identifier.system` of the unique member identifier (type UMB) that
    /// `$member-match` answers with; the value is the member's Patient id.
    #[serde(default = "default_member_system")]
    pub member_identifier_system: String,
    /// Failed matches (no match or several) a client may make within
    /// `match_failure_window_seconds` before `$member-match` and
    /// `$bulk-member-match` answer 429 (brute-force protection); 0 turns
    /// the limit off.
    #[serde(default = "default_failure_limit")]
    pub match_failure_limit: u32,
    /// The sliding window of `match_failure_limit`, in seconds.
    #[serde(default = "default_failure_window")]
    pub match_failure_window_seconds: u64,
    /// Backend Services clients of provider organizations (Provider Access
    /// API): client id → `Organization/<id>`. Such a client sees only the
    /// attribution Groups its organization manages.
    #[serde(default)]
    pub provider_clients: BTreeMap<String, String>,
}

impl Default for PayerConfig {
    fn default() -> Self {
        Self {
            member_identifier_system: default_member_system(),
            match_failure_limit: default_failure_limit(),
            match_failure_window_seconds: default_failure_window(),
            provider_clients: BTreeMap::new(),
        }
    }
}

impl PayerConfig {
    /// The organization a provider client acts for, if mapped.
    pub fn provider_org(&self, client_id: &str) -> Option<&str> {
        self.provider_clients.get(client_id).map(String::as_str)
    }
}

fn default_member_system() -> String {
    "https://acmehealthplan.example.org/umb".to_owned()
}
fn default_failure_limit() -> u32 {
    10
}
fn default_failure_window() -> u64 {
    600
}
