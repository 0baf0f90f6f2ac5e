//! CMS-0057-F decision timeframes: urgency from `Claim.priority`, the
//! deadline it gives (72 hours expedited, 7 calendar days standard) and
//! whether a pended request is overdue.

use serde_json::Value;

/// Hours to decide an expedited request.
pub const EXPEDITED_HOURS: i64 = 72;
/// Calendar days to decide a standard request.
pub const STANDARD_DAYS: i64 = 7;

/// How fast a request must be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// `Claim.priority` = `stat`: 72 hours.
    Expedited,
    /// Anything else: 7 calendar days.
    Standard,
}

impl Urgency {
    /// From the Claim's `priority` coding.
    pub fn of_claim(claim: &Value) -> Self {
        let stat = claim["priority"]["coding"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["code"] == "stat"));
        if stat {
            Self::Expedited
        } else {
            Self::Standard
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expedited => "expedited",
            Self::Standard => "standard",
        }
    }

    /// Parses a stored name (unknown: standard).
    pub fn parse(s: &str) -> Self {
        if s == "expedited" {
            Self::Expedited
        } else {
            Self::Standard
        }
    }

    /// The deadline for a request received at `received_ms`.
    pub fn deadline_ms(self, received_ms: i64) -> i64 {
        let hours = match self {
            Self::Expedited => EXPEDITED_HOURS,
            Self::Standard => STANDARD_DAYS * 24,
        };
        received_ms + hours * 3_600_000
    }
}

/// Whether a request still pended at `now_ms` is past its deadline.
pub fn overdue(pended: bool, deadline_ms: i64, now_ms: i64) -> bool {
    pended && now_ms > deadline_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stat_is_expedited_with_72_hours_else_7_days() {
        let stat = json!({"priority": {"coding": [{"code": "stat"}]}});
        let normal = json!({"priority": {"coding": [{"code": "normal"}]}});
        assert_eq!(Urgency::of_claim(&stat), Urgency::Expedited);
        assert_eq!(Urgency::of_claim(&normal), Urgency::Standard);
        assert_eq!(Urgency::Expedited.deadline_ms(0), 72 * 3_600_000);
        assert_eq!(Urgency::Standard.deadline_ms(0), 7 * 24 * 3_600_000);
        assert!(overdue(true, 10, 11));
        assert!(!overdue(false, 10, 11));
        assert!(!overdue(true, 10, 10));
    }
}
