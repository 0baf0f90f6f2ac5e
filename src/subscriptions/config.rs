//! `[subscriptions]`: delivery of PAS subscription notifications.
//!
//! ```toml
//! [subscriptions]
//! timeout_seconds = 10     # per POST to a subscriber's endpoint
//! attempts = 3             # tries per event notification before `error`
//! retry_delay_ms = 1000    # first retry delay, doubled each time
//! allow_private_endpoints = false  # true: endpoints may be internal addresses
//! ```

use std::time::Duration;

use serde::Deserialize;

/// The `[subscriptions]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// How long one POST (handshake or event) may take, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Tries per event notification; when all fail the subscription goes to
    /// `error`. The handshake is tried once (the creating client waits).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Delay before the first retry, milliseconds; doubled for each next.
    #[serde(default = "default_delay")]
    pub retry_delay_ms: u64,
    /// Whether endpoints may reach private, link-local or reserved
    /// addresses (internal subscribers); off, only public addresses and
    /// loopback (see `subscriptions::guard`).
    #[serde(default)]
    pub allow_private_endpoints: bool,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        Self {
            timeout_seconds: default_timeout(),
            attempts: default_attempts(),
            retry_delay_ms: default_delay(),
            allow_private_endpoints: false,
        }
    }
}

impl SubscriptionsConfig {
    /// The per-POST timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1))
    }
}

fn default_timeout() -> u64 {
    10
}
fn default_attempts() -> u32 {
    3
}
fn default_delay() -> u64 {
    1000
}
