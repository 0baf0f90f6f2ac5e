//! Calendar arithmetic for the seed generator, relative to a fixed anchor
//! (2026-01-01T00:00:00Z), never the clock.
//!
//! Days are counted from 1970-01-01 (proleptic Gregorian, Howard Hinnant's
//! algorithms); instants are seconds since the epoch, always written in UTC.

/// Days from 1970-01-01 to `y-m-d`.
pub(crate) const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day number.
pub(crate) const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// The anchor day: 2026-01-01. Every generated date is relative to it.
pub(crate) const ANCHOR_DAY: i64 = days_from_civil(2026, 1, 1);

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;

/// `YYYY-MM-DD` of a day number.
pub(crate) fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A point in time, seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(pub(crate) i64);

impl Instant {
    /// `day` at `minutes` past midnight UTC.
    pub(crate) fn at(day: i64, minutes: i64) -> Self {
        Self(day * DAY + minutes * 60)
    }

    /// This instant plus `minutes`.
    pub(crate) fn plus_minutes(self, minutes: i64) -> Self {
        Self(self.0 + minutes * 60)
    }

    /// The day number.
    pub(crate) fn day(self) -> i64 {
        self.0.div_euclid(DAY)
    }

    /// `YYYY-MM-DD`.
    pub(crate) fn date(self) -> String {
        date(self.day())
    }

    /// FHIR `dateTime`/`instant`: `YYYY-MM-DDThh:mm:ssZ`.
    pub(crate) fn datetime(self) -> String {
        let secs = self.0.rem_euclid(DAY);
        format!(
            "{}T{:02}:{:02}:{:02}Z",
            self.date(),
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(date(ANCHOR_DAY), "2026-01-01");
        assert_eq!(date(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(date(days_from_civil(1925, 12, 31)), "1925-12-31");
        for d in -40_000..30_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(
            Instant::at(ANCHOR_DAY - 1, 9 * 60 + 30).datetime(),
            "2025-12-31T09:30:00Z"
        );
    }
}
