//! FHIR date/dateTime values and Periods as half-open ranges of Unix seconds.
//!
//! A partial date covers its whole unit: `2024` is all of 2024, so a period
//! ending `2024-03-31` includes that whole day (the end is exclusive at the
//! start of the next unit). Dates without an offset are read as UTC.

use serde_json::Value;
use time::{format_description::well_known::Rfc3339, Date, Month, OffsetDateTime};

/// `[start, end)` in Unix seconds; `None` = unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    /// Inclusive start.
    pub start: Option<i64>,
    /// Exclusive end.
    pub end: Option<i64>,
}

impl Period {
    /// True when `t` falls within the period.
    pub fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }
}

/// Parse a FHIR `Period` object.
pub fn parse_period(v: &Value) -> Result<Period, String> {
    if !v.is_object() {
        return Err("expected a Period object".into());
    }
    let start = match v.get("start").and_then(Value::as_str) {
        Some(s) => Some(parse_instant(s)?.0),
        None => None,
    };
    let end = match v.get("end").and_then(Value::as_str) {
        Some(s) => Some(parse_instant(s)?.1),
        None => None,
    };
    Ok(Period { start, end })
}

/// Parse a FHIR date or dateTime into `(first second, first second after)`.
pub fn parse_instant(s: &str) -> Result<(i64, i64), String> {
    if s.len() > 10 {
        let t =
            OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("bad dateTime {s:?}: {e}"))?;
        return Ok((t.unix_timestamp(), t.unix_timestamp() + 1));
    }
    let bad = || format!("bad date {s:?}");
    let mut parts = s.split('-');
    let year: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let month: Option<u8> = parts
        .next()
        .map(|p| p.parse().map_err(|_| bad()))
        .transpose()?;
    let day: Option<u8> = parts
        .next()
        .map(|p| p.parse().map_err(|_| bad()))
        .transpose()?;
    let day_start = |y: i32, m: u8, d: u8| -> Result<i64, String> {
        let month = Month::try_from(m).map_err(|_| bad())?;
        let date = Date::from_calendar_date(y, month, d).map_err(|_| bad())?;
        Ok(date.midnight().assume_utc().unix_timestamp())
    };
    match (month, day) {
        (None, _) => Ok((day_start(year, 1, 1)?, day_start(year + 1, 1, 1)?)),
        (Some(m), None) => {
            let next = if m == 12 {
                day_start(year + 1, 1, 1)?
            } else {
                day_start(year, m + 1, 1)?
            };
            Ok((day_start(year, m, 1)?, next))
        }
        (Some(m), Some(d)) => {
            let s0 = day_start(year, m, d)?;
            Ok((s0, s0 + 86_400))
        }
    }
}
