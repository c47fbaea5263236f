//! Exact numeric comparison across bool, int, float and Decimal, as Python does it:
//! `Decimal("0.5") == 0.5` but `Decimal("1.1") != 1.1`, and `2**53 + 1 != float(2**53)`.

use std::cmp::Ordering;

use crate::value::Value;

/// A finite decimal `0.d1d2d3... × 10^exp`, normalised: no leading or trailing zero digits
/// (so zero has no digits), which makes comparison a matter of sign, exponent, then digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BigDec {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

/// What a Decimal's text denotes.
#[derive(Debug, Clone, PartialEq)]
pub enum DecimalText {
    Finite(BigDec),
    Infinite { neg: bool },
    NaN,
}

/// Parses Python `Decimal` text: `[sign] digits [. digits] [e [sign] digits]`, `Infinity`,
/// `Inf`, `NaN[digits]`, `sNaN[digits]` (case-insensitive). None when it is not a Decimal.
pub fn parse_decimal(s: &str) -> Option<DecimalText> {
    let s = s.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(DecimalText::Infinite { neg });
    }
    for prefix in ["nan", "snan"] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return rest
                .bytes()
                .all(|c| c.is_ascii_digit())
                .then_some(DecimalText::NaN);
        }
    }
    let b = body.as_bytes();
    let mut i = 0;
    let mut mantissa: Vec<u8> = Vec::with_capacity(b.len());
    let mut frac_len: i64 = 0;
    let mut seen_digit = false;
    while i < b.len() && b[i].is_ascii_digit() {
        mantissa.push(b[i]);
        seen_digit = true;
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            mantissa.push(b[i]);
            frac_len += 1;
            seen_digit = true;
            i += 1;
        }
    }
    if !seen_digit {
        return None;
    }
    let mut e: i64 = 0;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let eneg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            // Saturate: an exponent this large only matters for its sign.
            e = e.saturating_mul(10).saturating_add(i64::from(b[i] - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        if eneg {
            e = -e;
        }
    }
    if i != b.len() {
        return None;
    }
    Some(DecimalText::Finite(BigDec::from_parts(
        neg,
        mantissa,
        e.saturating_sub(frac_len),
    )))
}

impl BigDec {
    /// `mantissa` (ASCII digits) `× 10^e`.
    fn from_parts(neg: bool, mut mantissa: Vec<u8>, e: i64) -> BigDec {
        let lead = mantissa.iter().take_while(|&&c| c == b'0').count();
        mantissa.drain(..lead);
        let trail = mantissa.iter().rev().take_while(|&&c| c == b'0').count();
        mantissa.truncate(mantissa.len() - trail);
        let len = i64::try_from(mantissa.len()).unwrap_or(i64::MAX);
        let exp = e
            .saturating_add(i64::try_from(trail).unwrap_or(i64::MAX))
            .saturating_add(len);
        BigDec {
            neg: neg && !mantissa.is_empty(),
            digits: mantissa,
            exp,
        }
    }

    fn from_i64(i: i64) -> BigDec {
        let text = i.unsigned_abs().to_string().into_bytes();
        BigDec::from_parts(i < 0, text, 0)
    }

    /// Exact: every finite f64 is a finite decimal of at most 767 significant digits, and
    /// Rust's fixed-precision float formatting is exact.
    fn from_f64(f: f64) -> Option<BigDec> {
        if !f.is_finite() {
            return None;
        }
        match parse_decimal(&format!("{f:.800e}"))? {
            DecimalText::Finite(d) => Some(d),
            _ => None,
        }
    }

    fn sign(&self) -> i8 {
        if self.digits.is_empty() {
            0
        } else if self.neg {
            -1
        } else {
            1
        }
    }

    fn cmp(&self, other: &BigDec) -> Ordering {
        let (sa, sb) = (self.sign(), other.sign());
        if sa != sb || sa == 0 {
            return sa.cmp(&sb);
        }
        let mag = self
            .exp
            .cmp(&other.exp)
            .then_with(|| self.digits.cmp(&other.digits));
        if sa < 0 {
            mag.reverse()
        } else {
            mag
        }
    }
}

/// A numeric value ready for comparison.
#[derive(Debug, Clone)]
pub enum Num {
    Int(i64),
    Float(f64),
    Dec(BigDec),
    NaN,
}

impl Num {
    /// The numeric view of a value (bool, int, float, Decimal); None for anything else.
    pub fn of(v: &Value) -> Option<Num> {
        Some(match v {
            Value::Bool(b) => Num::Int(i64::from(*b)),
            Value::Int(i) => Num::Int(*i),
            Value::Float(f) if f.is_nan() => Num::NaN,
            Value::Float(f) => Num::Float(*f),
            Value::Decimal(s) => match parse_decimal(s) {
                Some(DecimalText::Finite(d)) => Num::Dec(d),
                Some(DecimalText::Infinite { neg }) => Num::Float(if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }),
                Some(DecimalText::NaN) | None => Num::NaN,
            },
            _ => return None,
        })
    }

    pub fn is_nan(&self) -> bool {
        matches!(self, Num::NaN)
    }
}

/// Exact i64 vs finite-or-infinite (non-NaN) f64.
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    // 2^63 is exactly representable; every f64 at or above it exceeds every i64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    // In range, so the truncation converts exactly.
    let ti = t as i64;
    match i.cmp(&ti) {
        Ordering::Equal => {
            let frac = f - t;
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        o => o,
    }
}

fn cmp_dec_float(d: &BigDec, f: f64) -> Ordering {
    if f == f64::INFINITY {
        return Ordering::Less;
    }
    if f == f64::NEG_INFINITY {
        return Ordering::Greater;
    }
    match BigDec::from_f64(f) {
        Some(fd) => d.cmp(&fd),
        // Unreachable for finite floats; a stable answer beats a panic.
        None => Ordering::Equal,
    }
}

/// Numeric order; None when either side is NaN.
pub fn cmp_num(a: &Num, b: &Num) -> Option<Ordering> {
    Some(match (a, b) {
        (Num::NaN, _) | (_, Num::NaN) => return None,
        (Num::Int(x), Num::Int(y)) => x.cmp(y),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(y)?,
        (Num::Int(x), Num::Float(y)) => cmp_int_float(*x, *y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(*y, *x).reverse(),
        (Num::Dec(x), Num::Dec(y)) => x.cmp(y),
        (Num::Dec(x), Num::Int(y)) => x.cmp(&BigDec::from_i64(*y)),
        (Num::Int(x), Num::Dec(y)) => BigDec::from_i64(*x).cmp(y),
        (Num::Dec(x), Num::Float(y)) => cmp_dec_float(x, *y),
        (Num::Float(x), Num::Dec(y)) => cmp_dec_float(y, *x).reverse(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: Value) -> Num {
        Num::of(&v).unwrap()
    }
    fn d(s: &str) -> Num {
        n(Value::Decimal(s.into()))
    }

    #[test]
    fn int_float_exact() {
        let big = 1i64 << 53;
        assert_eq!(
            cmp_num(&Num::Int(big + 1), &Num::Float(big as f64)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_num(&Num::Int(1), &Num::Float(1.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_num(&Num::Int(1), &Num::Float(1.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_num(&Num::Int(-1), &Num::Float(-1.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_num(&Num::Int(i64::MAX), &Num::Float(9.3e18)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_num(&Num::Int(i64::MIN), &Num::Float(-9.3e18)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_num(
                &Num::Int(i64::MIN),
                &Num::Float(-9_223_372_036_854_775_808.0)
            ),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_num(&Num::Int(5), &Num::Float(f64::INFINITY)),
            Some(Ordering::Less)
        );
        assert_eq!(cmp_num(&Num::Int(5), &n(Value::Float(f64::NAN))), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(cmp_num(&d("0.5"), &Num::Float(0.5)), Some(Ordering::Equal));
        assert_ne!(cmp_num(&d("1.1"), &Num::Float(1.1)), Some(Ordering::Equal));
        assert_eq!(cmp_num(&d("1.10"), &d("1.1")), Some(Ordering::Equal));
        assert_eq!(cmp_num(&d("1E+2"), &Num::Int(100)), Some(Ordering::Equal));
        assert_eq!(cmp_num(&d("-0"), &Num::Int(0)), Some(Ordering::Equal));
        assert_eq!(cmp_num(&d("-2.5"), &Num::Int(-2)), Some(Ordering::Less));
        assert_eq!(cmp_num(&d("-2.5"), &d("-2.50001")), Some(Ordering::Greater));
        assert_eq!(cmp_num(&d("0.001"), &d("0.01")), Some(Ordering::Less));
        assert_eq!(cmp_num(&d("12"), &d("123")), Some(Ordering::Less));
        assert_eq!(
            cmp_num(&d("Infinity"), &Num::Float(f64::INFINITY)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_num(&d("1e999"), &Num::Float(f64::INFINITY)),
            Some(Ordering::Less)
        );
        assert_eq!(cmp_num(&d("NaN"), &Num::Int(1)), None);
        assert_eq!(
            cmp_num(&d("5e-324"), &Num::Float(5e-324)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_num(&n(Value::Bool(true)), &d("1.0")),
            Some(Ordering::Equal)
        );
        assert!(parse_decimal("1.2.3").is_none());
        assert!(parse_decimal("e5").is_none());
        assert!(parse_decimal("1e").is_none());
        assert!(parse_decimal(".5").is_some());
        assert!(parse_decimal("5.").is_some());
        assert!(parse_decimal("sNaN12").is_some());
    }
}
