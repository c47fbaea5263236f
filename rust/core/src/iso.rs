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

// The parsers below follow CPython 3.11's C implementation of `date.fromisoformat` and
// `datetime.fromisoformat` step by step, including its reads of the string's terminating NUL
// (modelled by `at`, which reads 0 past the end; a field that ends at the end of the text is
// followed by that NUL): the differential tests compare them with the
// running interpreter on generated strings, and any "cleaner" grammar drifts from it.

/// The byte at `i`, or 0 past the end (C's terminating NUL and beyond).
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// `n` ASCII digits at `pos` as a number (C's `parse_digits`).
fn digits_at(b: &[u8], pos: usize, n: usize) -> Option<u32> {
    let mut v = 0u32;
    for i in 0..n {
        let c = at(b, pos + i);
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// `date.fromisoformat`: `YYYY-MM-DD`, `YYYYMMDD`, and the ISO week forms `YYYY-Www`,
/// `YYYYWww`, `YYYY-Www-D`, `YYYYWwwD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if !matches!(b.len(), 7 | 8 | 10) {
        return None;
    }
    parse_date_part(b, b.len())
}

/// The date at the start of `b`, whose date part is `len` bytes long.
fn parse_date_part(b: &[u8], len: usize) -> Option<NaiveDate> {
    let year = digits_at(b, 0, 4)?;
    let mut p = 4;
    let dashes = at(b, p) == b'-';
    if dashes {
        p += 1;
    }
    if at(b, p) == b'W' {
        p += 1;
        let week = digits_at(b, p, 2)?;
        p += 2;
        let day = if p < len {
            if dashes {
                if at(b, p) != b'-' {
                    return None;
                }
                p += 1;
            }
            digits_at(b, p, 1)?
        } else {
            1
        };
        let weekday = match day {
            1 => chrono::Weekday::Mon,
            2 => chrono::Weekday::Tue,
            3 => chrono::Weekday::Wed,
            4 => chrono::Weekday::Thu,
            5 => chrono::Weekday::Fri,
            6 => chrono::Weekday::Sat,
            7 => chrono::Weekday::Sun,
            _ => return None,
        };
        if year == 0 {
            return None;
        }
        let date = NaiveDate::from_isoywd_opt(i32::try_from(year).ok()?, week, weekday)?;
        return in_python_range(date);
    }
    let month = digits_at(b, p, 2)?;
    p += 2;
    if dashes {
        if at(b, p) != b'-' {
            return None;
        }
        p += 1;
    }
    let day = digits_at(b, p, 2)?;
    if year == 0 {
        return None;
    }
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// Python dates run from year 1 to 9999 (an ISO week date near the ends may leave them).
fn in_python_range(d: NaiveDate) -> Option<NaiveDate> {
    use chrono::Datelike;
    (1..=9999).contains(&d.year()).then_some(d)
}

/// Where the date part of a datetime string ends (C's `_find_isoformat_datetime_separator`).
fn date_part_len(b: &[u8]) -> Option<usize> {
    let len = b.len();
    if len == 7 {
        return Some(7);
    }
    if at(b, 4) == b'-' {
        if at(b, 5) != b'W' {
            return Some(10);
        }
        if len > 8 && at(b, 8) == b'-' {
            if len == 9 {
                return None;
            }
            if len > 10 && at(b, 10).is_ascii_digit() {
                return Some(8);
            }
            return Some(10);
        }
        return Some(8);
    }
    if at(b, 4) == b'W' {
        let mut idx = 7;
        while idx < len && at(b, idx).is_ascii_digit() {
            idx += 1;
        }
        if idx < 9 {
            return Some(idx);
        }
        return Some(if idx % 2 == 0 { 7 } else { 8 });
    }
    Some(8)
}

/// What the reference (`query._parse_datetime`) reads: a trailing `Z` as `+00:00`, then
/// `datetime.fromisoformat`. An offset with a fraction of a second, which `DateTimeValue`
/// cannot hold, is folded into the wall-clock time: the instant (all a comparison or sort
/// uses of an aware datetime) is exact.
pub fn parse_datetime(s: &str) -> Option<DateTimeValue> {
    match s.strip_suffix('Z') {
        Some(head) => from_isoformat(&format!("{head}+00:00")),
        None => from_isoformat(s),
    }
}

fn from_isoformat(s: &str) -> Option<DateTimeValue> {
    if s.chars().count() < 7 {
        return None;
    }
    let b = s.as_bytes();
    let date_len = date_part_len(b)?;
    let date = parse_date_part(b, date_len)?;
    if b.len() <= date_len {
        return Some(DateTimeValue {
            naive: date.and_time(NaiveTime::MIN),
            offset_seconds: None,
        });
    }
    // The separator is any one character: CPython reads the UTF-8 bytes and skips a whole
    // character there.
    let sep_len = s
        .get(date_len..)
        .and_then(|rest| rest.chars().next())
        .map_or(1, char::len_utf8);
    let (time, offset) = parse_time_part(&b[date_len + sep_len..])?;
    let naive = NaiveDateTime::new(date, time);
    let offset_seconds = match offset {
        None => None,
        // CPython makes an offset of zero seconds UTC, whatever its fraction.
        Some((0, _)) => Some(0),
        Some((secs, micros)) => {
            let naive =
                naive.checked_sub_signed(chrono::TimeDelta::microseconds(i64::from(micros)))?;
            return Some(DateTimeValue {
                naive,
                offset_seconds: Some(secs),
            });
        }
    };
    Some(DateTimeValue {
        naive,
        offset_seconds,
    })
}

/// C's `parse_hh_mm_ss_ff` over `t[start..end]`: the fields, and whether a character other
/// than the end was left (C's return value 1).
fn hh_mm_ss_ff(t: &[u8], start: usize, end: usize) -> Option<([u32; 4], bool)> {
    let mut vals = [0u32; 4];
    let mut p = start;
    let mut extended = true;
    for (i, val) in vals.iter_mut().take(3).enumerate() {
        *val = digits_at(t, p, 2)?;
        p += 2;
        let c = at(t, p);
        p += 1;
        if i == 0 {
            extended = c == b':';
        }
        if p >= end {
            return Some((vals, c != 0));
        }
        if extended && c == b':' {
            continue;
        }
        if c == b'.' || c == b',' {
            break;
        }
        if !extended {
            p -= 1;
        } else {
            return None;
        }
    }
    // C reads a fraction here whether or not a '.' marked one.
    let remains = end.saturating_sub(p);
    let n = remains.min(6);
    let mut micros = digits_at(t, p, n)?;
    p += n;
    if n > 0 {
        micros *= 10u32.pow(u32::try_from(6 - n).ok()?);
    }
    while at(t, p).is_ascii_digit() {
        p += 1;
    }
    vals[3] = micros;
    Some((vals, at(t, p) != 0))
}

/// C's `parse_isoformat_time` over the time part (what follows the separator): the time,
/// and the offset as (seconds, microseconds), both signed, when there is one.
fn parse_time_part(t: &[u8]) -> Option<(NaiveTime, Option<(i32, i32)>)> {
    let end = t.len();
    let tz = (0..end)
        .find(|&i| matches!(at(t, i), b'Z' | b'+' | b'-'))
        .unwrap_or(end);
    let ([h, m, s, us], rest) = hh_mm_ss_ff(t, 0, tz)?;
    let time = NaiveTime::from_hms_micro_opt(h, m, s, us)?;
    if tz == end {
        return (!rest).then_some((time, None));
    }
    if at(t, tz) == b'Z' {
        return (at(t, tz + 1) == 0).then_some((time, Some((0, 0))));
    }
    let sign = if at(t, tz) == b'-' { -1 } else { 1 };
    let ([oh, om, os, ous], rest) = hh_mm_ss_ff(t, tz + 1, end)?;
    if rest {
        return None;
    }
    let secs = i64::from(oh) * 3600 + i64::from(om) * 60 + i64::from(os);
    // timezone() takes offsets strictly within a day.
    if secs * 1_000_000 + i64::from(ous) >= 86_400 * 1_000_000 {
        return None;
    }
    let secs = i32::try_from(secs).ok()? * sign;
    let micros = i32::try_from(ous).ok()? * sign;
    Some((time, Some((secs, micros))))
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
