//! FHIR date / dateTime / instant values as inclusive epoch-millisecond ranges
//! (R4 search.html §3.1.1.4.2 "date": a value stands for the whole period of
//! its precision, so `2020` is all of 2020 and `2020-03-04T10:00` one minute).
//! Values without a time zone are read as UTC. Shared by the indexer (target
//! ranges) and the query parser (search ranges).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Lower bound for open-ended periods (0001-01-01T00:00:00Z).
pub const MIN_MS: i64 = -62_135_596_800_000;
/// Upper bound for open-ended periods (9999-12-31T23:59:59.999Z).
pub const MAX_MS: i64 = 253_402_300_799_999;

/// An inclusive `[low, high]` range in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// First millisecond covered.
    pub low: i64,
    /// Last millisecond covered.
    pub high: i64,
}

/// Parses a FHIR date, dateTime or instant (any precision) into its range.
pub fn parse_range(s: &str) -> Option<DateRange> {
    let s = s.trim();
    let (date_part, time_part) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut it = date_part.split('-');
    let year: i32 = num(it.next()?, 4)?;
    let month: Option<u8> = match it.next() {
        Some(m) => Some(num(m, 2)?),
        None => None,
    };
    let day: Option<u8> = match it.next() {
        Some(d) => Some(num(d, 2)?),
        None => None,
    };
    if it.next().is_some() || (day.is_some() && month.is_none()) || year < 1 {
        return None;
    }
    let first = Date::from_calendar_date(
        year,
        Month::try_from(month.unwrap_or(1)).ok()?,
        day.unwrap_or(1),
    )
    .ok()?;
    let Some(t) = time_part else {
        let next = match (month, day) {
            (_, Some(_)) => first.next_day()?,
            (Some(m), None) => {
                let (y, m) = if m == 12 {
                    (year + 1, 1)
                } else {
                    (year, m + 1)
                };
                Date::from_calendar_date(y, Month::try_from(m).ok()?, 1).ok()?
            }
            (None, None) => Date::from_calendar_date(year + 1, Month::January, 1).ok()?,
        };
        let low = ms(
            PrimitiveDateTime::new(first, Time::MIDNIGHT),
            UtcOffset::UTC,
        );
        let high = ms(PrimitiveDateTime::new(next, Time::MIDNIGHT), UtcOffset::UTC) - 1;
        return Some(DateRange { low, high });
    };
    day?;
    let (clock, offset) = split_offset(t)?;
    let mut parts = clock.split(':');
    let hour: u8 = num(parts.next()?, 2)?;
    let minute: u8 = num(parts.next()?, 2)?;
    let sec_part = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let (second, millis, width) = match sec_part {
        None => (0u8, 0u16, 60_000i64),
        Some(sp) => match sp.split_once('.') {
            None => (num(sp, 2)?, 0, 1_000),
            Some((whole, frac)) => {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let padded = format!("{frac:0<3}");
                (num(whole, 2)?, padded.get(..3)?.parse().ok()?, 1)
            }
        },
    };
    let time = Time::from_hms_milli(hour, minute, second, millis).ok()?;
    let low = ms(PrimitiveDateTime::new(first, time), offset);
    Some(DateRange {
        low,
        high: low + width - 1,
    })
}

fn split_offset(t: &str) -> Option<(&str, UtcOffset)> {
    if let Some(c) = t.strip_suffix('Z') {
        return Some((c, UtcOffset::UTC));
    }
    match t.rfind(['+', '-']) {
        Some(i) => {
            let (c, off) = t.split_at(i);
            let sign: i8 = if off.starts_with('-') { -1 } else { 1 };
            let (h, m) = off.get(1..)?.split_once(':')?;
            let h: i8 = num(h, 2)?;
            let m: i8 = num(m, 2)?;
            Some((c, UtcOffset::from_hms(sign * h, sign * m, 0).ok()?))
        }
        None => Some((t, UtcOffset::UTC)),
    }
}

fn num<T: std::str::FromStr>(s: &str, width: usize) -> Option<T> {
    if s.len() == width && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn ms(dt: PrimitiveDateTime, offset: UtcOffset) -> i64 {
    let nanos = dt.assume_offset(offset).unix_timestamp_nanos();
    i64::try_from(nanos.div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// Formats epoch milliseconds as a FHIR instant (`2020-01-02T03:04:05.678Z`),
/// the form `resource.last_updated` is stored in. Clamped to years 1..=9999.
pub fn instant_of(ms: i64) -> String {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn r(s: &str) -> (String, String) {
        let x = parse_range(s).unwrap();
        (instant_of(x.low), instant_of(x.high))
    }

    #[test]
    fn precision_sets_the_range() {
        assert_eq!(
            r("2020"),
            (
                "2020-01-01T00:00:00.000Z".into(),
                "2020-12-31T23:59:59.999Z".into()
            )
        );
        assert_eq!(
            r("2020-02"),
            (
                "2020-02-01T00:00:00.000Z".into(),
                "2020-02-29T23:59:59.999Z".into()
            )
        );
        assert_eq!(
            r("2020-12"),
            (
                "2020-12-01T00:00:00.000Z".into(),
                "2020-12-31T23:59:59.999Z".into()
            )
        );
        assert_eq!(
            r("2020-03-04"),
            (
                "2020-03-04T00:00:00.000Z".into(),
                "2020-03-04T23:59:59.999Z".into()
            )
        );
        assert_eq!(
            r("2020-03-04T10:00"),
            (
                "2020-03-04T10:00:00.000Z".into(),
                "2020-03-04T10:00:59.999Z".into()
            )
        );
        assert_eq!(
            r("2020-03-04T10:00:05Z"),
            (
                "2020-03-04T10:00:05.000Z".into(),
                "2020-03-04T10:00:05.999Z".into()
            )
        );
        assert_eq!(
            r("2020-03-04T10:00:05.5+02:00"),
            (
                "2020-03-04T08:00:05.500Z".into(),
                "2020-03-04T08:00:05.500Z".into()
            )
        );
        assert_eq!(r("2020-03-04T01:00:00-05:30").0, "2020-03-04T06:30:00.000Z");
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "20",
            "2020-13",
            "2020-02-30",
            "2020-1-1",
            "abcd",
            "2020-01-01T",
            "2020-01-01T25:00",
            "2020T10:00",
            "2020-01-01T10:00:00+5",
        ] {
            assert!(parse_range(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bounds_format() {
        assert_eq!(instant_of(MIN_MS), "0001-01-01T00:00:00.000Z");
        assert_eq!(instant_of(MAX_MS), "9999-12-31T23:59:59.999Z");
    }
}
