//! FHIR date, dateTime and instant strings: recognising their shape,
//! shifting them by whole days keeping precision and time/zone, reducing
//! them to the year, and the Safe Harbor age test (90 or over).

use time::{Date, Duration, Month};

/// The precision of a FHIR date-like string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateShape {
    /// `YYYY`
    Year,
    /// `YYYY-MM`
    YearMonth,
    /// `YYYY-MM-DD`
    Date,
    /// `YYYY-MM-DDThh:mm[:ss]` with an optional zone, not instant-shaped.
    DateTime,
    /// `YYYY-MM-DDThh:mm:ss[.f]` with a zone (`Z` or `±hh:mm`).
    Instant,
}

/// A parsed date-like string: its first day, precision and the text after
/// the date part (`Thh:mm:ss...`, kept verbatim by a shift).
struct Parsed<'a> {
    first_day: Date,
    shape: DateShape,
    rest: &'a str,
}

fn digits(s: &str, from: usize, len: usize) -> Option<u32> {
    let part = s.get(from..from + len)?;
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn parse(s: &str) -> Option<Parsed<'_>> {
    let year = digits(s, 0, 4)?;
    if year == 0 {
        return None;
    }
    let year = i32::try_from(year).ok()?;
    let at = |i: usize| s.as_bytes().get(i).copied();
    let (month, day, shape, end) = if s.len() == 4 {
        (1, 1, DateShape::Year, 4)
    } else if at(4) != Some(b'-') {
        return None;
    } else if s.len() == 7 {
        (digits(s, 5, 2)?, 1, DateShape::YearMonth, 7)
    } else if at(7) != Some(b'-') {
        return None;
    } else {
        let shape = if s.len() == 10 {
            DateShape::Date
        } else {
            time_shape(s.get(10..)?)?
        };
        (digits(s, 5, 2)?, digits(s, 8, 2)?, shape, 10)
    };
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let first_day = Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    Some(Parsed {
        first_day,
        shape,
        rest: s.get(end..)?,
    })
}

/// `Thh:mm[:ss[.fff]][Z|±hh:mm]`: DateTime, or Instant with seconds and zone.
fn time_shape(t: &str) -> Option<DateShape> {
    let t = t.strip_prefix('T')?;
    let hm_ok =
        digits(t, 0, 2)? < 24 && t.as_bytes().get(2) == Some(&b':') && digits(t, 3, 2)? < 60;
    if !hm_ok {
        return None;
    }
    let mut rest = t.get(5..)?;
    let mut seconds = false;
    if let Some(sec) = rest.strip_prefix(':') {
        if digits(sec, 0, 2)? > 60 {
            return None;
        }
        seconds = true;
        rest = sec.get(2..)?;
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            rest = frac.get(n..)?;
        }
    }
    let zoned = match rest {
        "" => false,
        "Z" => true,
        zone => {
            let sign_ok = zone.starts_with(['+', '-']);
            let ok = sign_ok
                && zone.len() == 6
                && digits(zone, 1, 2)? <= 14
                && zone.as_bytes().get(3) == Some(&b':')
                && digits(zone, 4, 2)? < 60;
            if !ok {
                return None;
            }
            true
        }
    };
    Some(if seconds && zoned {
        DateShape::Instant
    } else {
        DateShape::DateTime
    })
}

/// The shape of `s` if it is a FHIR date, dateTime or instant.
pub(crate) fn shape(s: &str) -> Option<DateShape> {
    parse(s).map(|p| p.shape)
}

fn format_day(d: Date) -> Option<String> {
    let y = d.year();
    (1..=9999)
        .contains(&y)
        .then(|| format!("{y:04}-{:02}-{:02}", u8::from(d.month()), d.day()))
}

/// `s` shifted by `days`, keeping its precision and time/zone. A partial
/// date shifts its first day (`2019-03` by -10 days is `2019-02`).
pub(crate) fn shift(s: &str, days: i64) -> Option<String> {
    let p = parse(s)?;
    let day = p.first_day.checked_add(Duration::days(days))?;
    let full = format_day(day)?;
    Some(match p.shape {
        DateShape::Year => full.get(..4)?.to_owned(),
        DateShape::YearMonth => full.get(..7)?.to_owned(),
        DateShape::Date | DateShape::DateTime | DateShape::Instant => format!("{full}{}", p.rest),
    })
}

/// The year of a date-like string (`2019-03-04T10:00:00Z` → `2019`).
pub(crate) fn year(s: &str) -> Option<String> {
    parse(s).map(|p| format!("{:04}", p.first_day.year()))
}

/// Whether someone born at `birth` is 90 or older at `today`. A partial
/// date counts from its first day (the oldest the person can be).
pub(crate) fn is_90_or_over(birth: &str, today: Date) -> Option<bool> {
    let b = parse(birth)?.first_day;
    let mut age = today.year() - b.year();
    if (u8::from(today.month()), today.day()) < (u8::from(b.month()), b.day()) {
        age -= 1;
    }
    Some(age >= 90)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use time::macros::date;

    #[test]
    fn shapes() {
        assert_eq!(shape("2019"), Some(DateShape::Year));
        assert_eq!(shape("2019-02"), Some(DateShape::YearMonth));
        assert_eq!(shape("2019-02-28"), Some(DateShape::Date));
        assert_eq!(shape("2019-02-28T10:00"), Some(DateShape::DateTime));
        assert_eq!(shape("2019-02-28T10:00:00"), Some(DateShape::DateTime));
        assert_eq!(shape("2019-02-28T10:00:00.123Z"), Some(DateShape::Instant));
        assert_eq!(shape("2019-02-28T10:00:00+05:30"), Some(DateShape::Instant));
        for bad in [
            "2019-02-30",
            "20190",
            "2019-13",
            "abcd",
            "2019-02-28T25:00",
            "0000",
            "12345",
        ] {
            assert_eq!(shape(bad), None, "{bad}");
        }
    }

    #[test]
    fn shifts_keep_precision_and_zone() {
        assert_eq!(shift("2019-03-01", -1).unwrap(), "2019-02-28");
        assert_eq!(
            shift("2019-03-01T10:11:12.5-05:00", 31).unwrap(),
            "2019-04-01T10:11:12.5-05:00"
        );
        assert_eq!(shift("2019-03", -10).unwrap(), "2019-02");
        assert_eq!(shift("2019", -1).unwrap(), "2018");
        assert_eq!(year("2019-03-01T10:11:12Z").unwrap(), "2019");
    }

    #[test]
    fn ages() {
        let today = date!(2026 - 06 - 15);
        assert_eq!(is_90_or_over("1936-06-15", today), Some(true));
        assert_eq!(is_90_or_over("1936-06-16", today), Some(false));
        assert_eq!(is_90_or_over("1936", today), Some(true));
        assert_eq!(is_90_or_over("1937", today), Some(false));
    }
}
