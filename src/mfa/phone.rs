//! Phone numbers for SMS and voice codes: typed numbers normalized to
//! E.164 (what Twilio Verify takes), and the masked form pages show. A
//! number is personal data: it is stored sealed (`store::phone_aad`) and
//! never logged or put on the audit ledger.

/// The E.164 form (`+` and 8 to 15 digits, the first not 0) of a typed
/// number, spaces, dots, dashes and parentheses dropped; `None` otherwise.
pub fn normalize(typed: &str) -> Option<String> {
    let t = typed.trim();
    let rest = t.strip_prefix('+')?;
    let digits: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then(|| format!("+{digits}"))
}

/// The number as pages show it: its last two digits only (`•••• 00`).
pub fn mask(number: &str) -> String {
    let n = number.len();
    let tail = number.get(n.saturating_sub(2)..).unwrap_or("");
    format!("•••• {tail}")
}

/// Whether `typed` looks like a code Verify sends (4 to 10 digits), before
/// the provider is asked.
pub fn plausible_code(typed: &str) -> bool {
    let t = typed.trim();
    (4..=10).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalize_to_e164_and_show_masked() {
        assert_eq!(
            normalize(" +1 (555) 555-0100 ").as_deref(),
            Some("+15555550100")
        );
        assert_eq!(
            normalize("+44.20.7946.0000").as_deref(),
            Some("+442079460000")
        );
        for bad in [
            "",
            "5555550100",
            "+",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1555x550100",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
        assert_eq!(mask("+15555550100"), "•••• 00");
        assert!(plausible_code(" 123456 "));
        assert!(!plausible_code("12a456") && !plausible_code("123"));
    }
}
