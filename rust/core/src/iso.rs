//! ISO-8601 text for dates and datetimes, matching Python: `isoformat()` for output and the
//! forms `datetime.fromisoformat` / `date.fromisoformat` (3.11) accept for input.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

use crate::value::DateTimeValue;

/// `datetime.isoformat()`: microseconds only when non-zero, offset `+HH:MM` (`:SS` when the
/// offset has seconds), nothing for a naive datetime.
pub fn format_datetime(dt: &DateTimeValue) -> String {
    let mut out = String::with_capacity(32);
    push_date(&mut out, dt.naive.date());
    out.push('T');
    let t = dt.naive.time();
    out.push_str(&format!(
        "{:02}:{:02}:{:02}",
        t.hour(),
        t.minute(),
        t.second()
    ));
    // chrono encodes a leap second as nanos >= 1e9; Python has no such thing, so clamp.
    let micros = (t.nanosecond() / 1000).min(999_999);
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    if let Some(off) = dt.offset_seconds {
        out.push_str(&format_offset(off));
    }
    out
}

/// `date.isoformat()`.
pub fn format_date(d: NaiveDate) -> String {
    let mut out = String::with_capacity(10);
    push_date(&mut out, d);
    out
}

fn push_date(out: &mut String, d: NaiveDate) {
    use chrono::Datelike;
    out.push_str(&format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()));
}

fn format_offset(off: i32) -> String {
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let (h, m, s) = (a / 3600, (a / 60) % 60, a % 60);
    if s != 0 {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    } else {
        format!("{sign}{h:02}:{m:02}")
    }
}

/// `date.fromisoformat`: `YYYY-MM-DD` or `YYYYMMDD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let (date, rest) = parse_date_prefix(b)?;
    if rest.is_empty() {
        Some(date)
    } else {
        None
    }
}

/// `datetime.fromisoformat` for the common forms: a date (`YYYY-MM-DD` / `YYYYMMDD`, meaning
/// midnight), optionally followed by any single separator character and a time
/// `HH[:MM[:SS[.f+]]]` (or the basic `HHMM[SS]`), optionally followed by `Z` or an offset
/// `±HH[:MM[:SS[.ffffff]]]`.
pub fn parse_datetime(s: &str) -> Option<DateTimeValue> {
    let b = s.as_bytes();
    let (date, rest) = parse_date_prefix(b)?;
    if rest.is_empty() {
        return Some(DateTimeValue {
            naive: date.and_time(NaiveTime::MIN),
            offset_seconds: None,
        });
    }
    // The separator is one (possibly multi-byte) character.
    let rest_str = std::str::from_utf8(rest).ok()?;
    let sep_len = rest_str.chars().next()?.len_utf8();
    let rest = &rest[sep_len..];
    let (time, rest) = parse_time(rest)?;
    let offset_seconds = if rest.is_empty() {
        None
    } else if rest == b"Z" {
        Some(0)
    } else {
        Some(parse_offset(rest)?)
    };
    Some(DateTimeValue {
        naive: NaiveDateTime::new(date, time),
        offset_seconds,
    })
}

fn digits(b: &[u8], n: usize) -> Option<u32> {
    if b.len() < n {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[..n] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn parse_date_prefix(b: &[u8]) -> Option<(NaiveDate, &[u8])> {
    let year = digits(b, 4)?;
    let (month, day, rest) = if b.get(4) == Some(&b'-') {
        let month = digits(&b[5..], 2)?;
        if b.get(7) != Some(&b'-') {
            return None;
        }
        let day = digits(&b[8..], 2)?;
        (month, day, &b[10..])
    } else {
        let month = digits(&b[4..], 2)?;
        let day = digits(&b[6..], 2)?;
        (month, day, &b[8..])
    };
    if year == 0 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some((date, rest))
}

/// `HH[:MM[:SS[.f+]]]` or `HH[MM[SS[.f+]]]`; returns the time and what follows it.
fn parse_time(b: &[u8]) -> Option<(NaiveTime, &[u8])> {
    let hour = digits(b, 2)?;
    let mut rest = &b[2..];
    let mut minute = 0;
    let mut second = 0;
    let mut micros = 0;
    let extended = rest.first() == Some(&b':');
    let next_component = |r: &[u8]| -> Option<usize> {
        if extended {
            if r.first() == Some(&b':') && digits(&r[1..], 2).is_some() {
                Some(1)
            } else {
                None
            }
        } else if digits(r, 2).is_some() {
            Some(0)
        } else {
            None
        }
    };
    if let Some(skip) = next_component(rest) {
        minute = digits(&rest[skip..], 2)?;
        rest = &rest[skip + 2..];
        if let Some(skip) = next_component(rest) {
            second = digits(&rest[skip..], 2)?;
            rest = &rest[skip + 2..];
            if matches!(rest.first(), Some(b'.') | Some(b',')) {
                let frac = &rest[1..];
                let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                // Python keeps the first six digits and drops the rest.
                let mut m = 0u32;
                for i in 0..6 {
                    m = m * 10
                        + frac
                            .get(i)
                            .filter(|_| i < n)
                            .map_or(0, |c| u32::from(c - b'0'));
                }
                micros = m;
                rest = &frac[n..];
            }
        }
    } else if extended {
        // "HH:" followed by something that is not two digits.
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    Some((time, rest))
}

/// `±HH[:MM[:SS[.ffffff]]]` or `±HHMM[SS]`, strictly within a day. A fractional-second offset
/// cannot be held by `DateTimeValue`, so it is refused unless the fraction is zero.
fn parse_offset(b: &[u8]) -> Option<i32> {
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (t, rest) = parse_time(&b[1..])?;
    if !rest.is_empty() || t.nanosecond() != 0 {
        return None;
    }
    let secs = i32::try_from(t.num_seconds_from_midnight()).ok()?;
    Some(sign * secs)
}

impl DateTimeValue {
    /// The UTC instant for an aware datetime; a naive one is read as UTC (used for sorting).
    pub fn utc_naive(&self) -> NaiveDateTime {
        match self.offset_seconds {
            Some(off) => self
                .naive
                .checked_sub_signed(chrono::TimeDelta::seconds(i64::from(off)))
                .unwrap_or(self.naive),
            None => self.naive,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> String {
        format_datetime(&parse_datetime(s).unwrap_or_else(|| panic!("parse {s}")))
    }

    #[test]
    fn parses_python_forms() {
        assert_eq!(dt("2024-05-01"), "2024-05-01T00:00:00");
        assert_eq!(dt("20240501"), "2024-05-01T00:00:00");
        assert_eq!(dt("2024-05-01T10"), "2024-05-01T10:00:00");
        assert_eq!(dt("2024-05-01T10:00"), "2024-05-01T10:00:00");
        assert_eq!(dt("2024-05-01 10:00:00.5"), "2024-05-01T10:00:00.500000");
        assert_eq!(
            dt("2024-05-01T10:00:00.1234567"),
            "2024-05-01T10:00:00.123456"
        );
        assert_eq!(dt("2024-05-01T10:00:00,5"), "2024-05-01T10:00:00.500000");
        assert_eq!(dt("2024-05-01x10:00"), "2024-05-01T10:00:00");
        assert_eq!(dt("2024-05-01T1000"), "2024-05-01T10:00:00");
        assert_eq!(dt("2024-05-01T10:00Z"), "2024-05-01T10:00:00+00:00");
        assert_eq!(dt("2024-05-01T10:00+0530"), "2024-05-01T10:00:00+05:30");
        assert_eq!(dt("2024-05-01T10:00+05"), "2024-05-01T10:00:00+05:00");
        assert_eq!(dt("2024-05-01T10:00-00:00"), "2024-05-01T10:00:00+00:00");
        assert_eq!(
            dt("2024-05-01T10:00:00-05:30:15"),
            "2024-05-01T10:00:00-05:30:15"
        );
        assert_eq!(dt("2024-05-01T10:00:00.12"), "2024-05-01T10:00:00.120000");
    }

    #[test]
    fn rejects_what_python_rejects() {
        for s in [
            "",
            "2024",
            "2024-5-01",
            "2024-05-01T",
            "2024-05-01T10:00z",
            "2024-05-01T24:00",
            "2024-02-30",
            "0000-01-01",
            "2024-05-01T10:",
            "2024-05-01T10:00:00.",
            "2024-05-01T10:00+",
            "2024-05-01T10:00 junk",
        ] {
            assert!(parse_datetime(s).is_none(), "{s:?}");
        }
        assert!(parse_date("2024-05-01T00:00").is_none());
        assert_eq!(parse_date("20240501"), NaiveDate::from_ymd_opt(2024, 5, 1));
    }

    #[test]
    fn formats_offsets() {
        let naive = NaiveDate::from_ymd_opt(2024, 5, 1)
            .and_then(|d| d.and_hms_micro_opt(10, 0, 0, 7))
            .unwrap();
        let v = |o| DateTimeValue {
            naive,
            offset_seconds: o,
        };
        assert_eq!(format_datetime(&v(None)), "2024-05-01T10:00:00.000007");
        assert_eq!(
            format_datetime(&v(Some(-3600 * 5 - 1800))),
            "2024-05-01T10:00:00.000007-05:30"
        );
        assert_eq!(
            format_datetime(&v(Some(-1))),
            "2024-05-01T10:00:00.000007-00:00:01"
        );
        assert_eq!(format_date(naive.date()), "2024-05-01");
    }
}
